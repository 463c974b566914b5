"""Prices from genai-prices, Pydantic's price database, read only from the snapshot shipped in the package.

genai-prices can also fetch newer prices in a background thread (``genai_prices.UpdatePrices``) and then
answers ``calc_price`` from that download. crewtrace never starts it and never calls ``calc_price``: it reads
``genai_prices.data.providers``, the offline snapshot of the installed release, so prices change only when
the pinned genai-prices release changes, and looking one up never touches the network. Lookups run once per
(model, provider) (PriceTable remembers them): here only matching and converting, never per call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from genai_prices.types import ConditionalPrice, ModelInfo, ModelPrice, Provider

    from crewtrace.usage.pricing import Price

# CrewAI's, litellm's and the GenAI conventions' provider names -> genai-prices provider ids. A name not here is
# left to the database's own provider matching (which knows e.g. "together_ai" and "xai").
PROVIDER_IDS = {
    "openai": "openai",
    "azure": "azure",
    "azure_openai": "azure",
    "azure_ai": "azure",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "google": "google",
    "gemini": "google",
    "google_genai": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "aws": "aws",
    "aws.bedrock": "aws",
    "mistral": "mistral",
    "mistralai": "mistral",
    "mistral_ai": "mistral",
    "deepseek": "deepseek",
    "groq": "groq",
    "xai": "x-ai",
    "x_ai": "x-ai",
    "fireworks_ai": "fireworks",
    "together_ai": "together",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "moonshot": "moonshotai",
}
# Price fields crewtrace's Usage can count, and the database's names for them (USD per million tokens). Others
# (audio, image and video tokens, web searches, per-request fees, 1-hour cache writes) are not counted.
_FIELDS = (
    ("input", "input_mtok"),
    ("output", "output_mtok"),
    ("cached_input", "cache_read_mtok"),
    ("cache_write", "cache_write_mtok"),
)


class Found(NamedTuple):
    """A model's price from the database, and until when (a POSIX time) it holds; None: until the data changes."""

    price: Price | None
    until: float | None = None


@cache
def providers() -> list[Provider]:
    """The snapshot shipped in the installed genai-prices (imported once: about 0.15 s). Read, never changed."""
    from genai_prices import data

    return data.providers


def provider(name: str) -> Provider | None:
    """The database's provider for a provider name, or None when it has none by that name."""
    from genai_prices.data_snapshot import find_provider_by_id

    all_providers = providers()
    wanted = PROVIDER_IDS.get(name, name)
    return next((p for p in all_providers if p.id == wanted), None) or find_provider_by_id(all_providers, name)


def provider_of_model(model: str) -> Provider | None:
    """The provider a bare model name belongs to by the database's model patterns (gpt-*, claude-*, gemini-*)."""
    return next((p for p in providers() if p.model_match is not None and p.model_match.is_match(model)), None)


def lookup(found_provider: Provider, model: str, now: datetime | None = None) -> Found | None:
    """The price of ``model`` at ``found_provider`` (or a provider it resells), None when the database lacks it."""
    from genai_prices.types import ModelPrice

    info: ModelInfo | None = found_provider.find_model(model, all_providers=providers())
    if info is None:
        return None
    if isinstance(info.prices, ModelPrice):
        return Found(to_price(info.prices))
    now = now or datetime.now(UTC)
    return Found(to_price(info.get_prices(now)), _next_change(info.prices, now))


def to_price(model_price: ModelPrice) -> Price | None:
    """Our Price of a database price; None for a model not priced by input and output tokens."""
    from genai_prices.types import TieredPrices

    from crewtrace.usage.pricing import Price

    values = {field: getattr(model_price, key, None) for field, key in _FIELDS}
    if values["input"] is None or values["output"] is None:
        return None
    # Tiered prices (by the call's input tokens): every token of a call past a tier's start costs the tier's
    # price. Each field has its own tiers; one Price per distinct start holds every field's price there.
    starts = sorted({t.start for v in values.values() if isinstance(v, TieredPrices) for t in v.tiers}, reverse=True)

    def at(value: Decimal | TieredPrices | None, start: int) -> float | None:
        if value is None:
            return None
        if not isinstance(value, TieredPrices):
            return float(value)
        return float(next((t.price for t in reversed(value.tiers) if t.start <= start), value.base))

    tiers = tuple((start, Price(**{f: at(v, start) for f, v in values.items()})) for start in starts)  # type: ignore[arg-type]
    return Price(**{f: at(v, -1) for f, v in values.items()}, tiers=tiers)  # type: ignore[arg-type]


def _next_change(prices: list[ConditionalPrice], now: datetime) -> float | None:
    """When a model's dated or time-of-day prices (DeepSeek's off-peak hours) next change, as a POSIX time."""
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    changes: list[datetime] = []
    for conditional in prices:
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            changes.append(_midnight(constraint.start_date))
        elif isinstance(constraint, TimeOfDateConstraint):
            changes.extend(_next_at(edge, now) for edge in (constraint.start_time, constraint.end_time))
    later = [change.timestamp() for change in changes if change > now]
    return min(later) if later else None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time_of_day(), UTC)


def _next_at(edge: time_of_day, now: datetime) -> datetime:
    """The first moment after ``now`` at a daily time (naive times are UTC, as genai-prices reads them)."""
    at = datetime.combine(now.astimezone(UTC).date(), edge if edge.tzinfo else edge.replace(tzinfo=UTC))
    at -= timedelta(days=1)
    while at <= now:
        at += timedelta(days=1)
    return at
