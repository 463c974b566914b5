"""Cost estimates: USD for an LLM call's tokens, from the genai-prices database with the user's prices on top.

A model is found by its provider (the ``provider/`` prefix of the model name, else gen_ai.provider.name, mapped
to the database's providers: gemini and vertex_ai are google, bedrock is aws) and its name, exactly or as a dated
or versioned release (``claude-3-5-sonnet-20241022``). Prices set with ``prices=`` or ``CREWTRACE_PRICES`` win
over the database. A model neither knows gets no cost (never a made-up 0) and one logged notice. Local providers
cost 0. The database is the snapshot shipped in the installed genai-prices: see price_db.py.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crewtrace.usage import price_db
from crewtrace.usage.tokens import Usage

logger = logging.getLogger(__name__)

PRICES_ENV = "CREWTRACE_PRICES"
_PER = 1_000_000
_MAX_REMEMBERED = 4096  # distinct (model, provider) lookups a table remembers
# Providers that run on the user's machine (and crewtrace's OfflineLLM): their calls cost 0.
FREE_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "lmstudio", "llamafile", "crewtrace"})
# A dated or versioned release of a model in the user's prices: gpt-4o-2024-08-06, claude-3-5-haiku-20241022, -001.
_SUFFIX = re.compile(r"^-(\d{4}-?\d{2}-?\d{2}|\d{3,4}|latest|v\d+(:\d+)?)$")
# Where the user's prices were looked for before the database: prices under "openai" still price Azure calls,
# under "anthropic" Bedrock's Claude, under "google" Gemini's and Vertex AI's.
_OVERRIDE_ALIASES = {
    "gemini": "google",
    "vertex_ai": "google",
    "google_genai": "google",
    "azure": "openai",
    "azure_openai": "openai",
    "mistralai": "mistral",
    "bedrock": "anthropic",
}
_META_KEYS = frozenset({"date", "source", "currency", "unit", "note", "free_providers"})


@dataclass(frozen=True)
class Price:
    """USD per million tokens; ``tiers`` (highest start first) replace all of it for calls with more input tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    tiers: tuple[tuple[int, Price], ...] = ()

    def cost(self, usage: Usage) -> float:
        """The cost of one call; ``usage.input_tokens`` (cached input included, as GenAI defines it) picks the tier."""
        price = self
        if self.tiers:
            tokens = usage.input_tokens or 0
            for start, tier in self.tiers:
                if tokens > start:
                    price = tier
                    break
        cache_read = usage.cache_read_input_tokens or 0
        cache_write = usage.cache_write_input_tokens or 0
        fresh = max((usage.input_tokens or 0) - cache_read - cache_write, 0)
        total = (
            fresh * price.input
            + cache_read * (price.input if price.cached_input is None else price.cached_input)
            + cache_write * (price.input if price.cache_write is None else price.cache_write)
            + (usage.output_tokens or 0) * price.output
        )
        return total / _PER


def _price(name: str, entry: Any) -> Price:
    if not isinstance(entry, Mapping) or "input" not in entry or "output" not in entry:
        raise ValueError(f"price of {name!r} needs numeric 'input' and 'output' (USD per million tokens)")
    values = {k: entry.get(k) for k in ("input", "output", "cached_input", "cache_write")}
    for key, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"price of {name!r}: {key} must be a number >= 0, got {value!r}")
    return Price(**{k: (float(v) if v is not None else None) for k, v in values.items()})  # type: ignore[arg-type]


class PriceTable:
    """Model prices by provider: the user's entries, then the genai-prices database."""

    def __init__(self, by_provider: dict[str, dict[str, Price]], anywhere: dict[str, Price], free: frozenset[str]):
        self._by_provider = by_provider  # the user's prices by provider
        self._anywhere = anywhere  # the user's prices given without a provider: match any provider
        self._free = free
        self._noticed: set[str] = set()
        self._lock = threading.Lock()
        # find()'s answers, misses too, each with the time it holds until (None: for good).
        self._found: dict[tuple[str | None, str | None], tuple[Price | None, float | None]] = {}

    @classmethod
    def load(cls, override: str | Path | Mapping[str, Any] | None = None) -> PriceTable:
        """The database, with ``override`` (a JSON file path or a dict of USD-per-million-token prices) on top."""
        by_provider: dict[str, dict[str, Price]] = {}
        anywhere: dict[str, Price] = {}
        data = _read(override)
        for key, value in dict(data.get("models", data) if "models" in data else data).items():
            if key in _META_KEYS:
                continue
            if isinstance(value, Mapping) and "input" in value:
                anywhere[key.lower()] = _price(key, value)
            elif isinstance(value, Mapping):
                models = by_provider.setdefault(key.lower(), {})
                models.update({m.lower(): _price(f"{key}/{m}", p) for m, p in value.items()})
            else:
                raise ValueError(f"price entry {key!r} must be an object")
        free_names = data.get("free_providers", [])
        if not isinstance(free_names, list) or not all(isinstance(name, str) for name in free_names):
            raise ValueError("free_providers must be a list of provider names")
        free = FREE_PROVIDERS | {name.lower() for name in free_names}
        price_db.providers()  # read the database now, at setup, not in the first LLM call
        return cls(by_provider, anywhere, frozenset(free))

    def find(self, model: str | None, provider: str | None) -> Price | None:
        """The price of a model, or None when neither the user's prices nor the database know it (answers are
        remembered: matching runs once per model, and the same few models are asked for on every call)."""
        key = (model, provider)
        hit = self._found.get(key)
        if hit is not None and (hit[1] is None or time.time() < hit[1]):
            return hit[0]
        found = self._lookup(model, provider)
        if hit is not None or len(self._found) < _MAX_REMEMBERED:
            self._found[key] = found
        return found[0]

    def _lookup(self, model: str | None, provider: str | None) -> tuple[Price | None, float | None]:
        if not model:
            return None, None
        name = model.lower()
        given = (provider or "").lower()
        prefix, _, rest = name.partition("/")
        candidates: list[tuple[str, str]] = []
        if given and given != prefix:  # groq's "openai/gpt-oss-120b", openrouter's "anthropic/claude-sonnet-4"
            candidates.append((given, name))
        if rest and self._knows(prefix):
            candidates.append((prefix, rest))
        elif given == prefix or not given:
            candidates.append((given, name))
        for candidate_provider, candidate_name in candidates:
            found = self._lookup_in(candidate_provider, candidate_name)
            if found is not None:
                return found
        return None, None

    def _lookup_in(self, provider: str, name: str) -> tuple[Price | None, float | None] | None:
        if provider in self._free:
            return Price(0.0, 0.0), None
        found = _match(self._anywhere, name)
        if provider:
            for key in dict.fromkeys((provider, _OVERRIDE_ALIASES.get(provider), price_db.PROVIDER_IDS.get(provider))):
                found = found or (_match(self._by_provider[key], name) if key in self._by_provider else None)
        else:  # a bare model name: look in every provider's list
            for models in self._by_provider.values():
                found = found or _match(models, name)
        if found is not None:
            return found, None
        db_provider = price_db.provider(provider) if provider else price_db.provider_of_model(name)
        from_db = price_db.lookup(db_provider, name) if db_provider is not None else None
        return (from_db.price, from_db.until) if from_db is not None and from_db.price is not None else None

    def _knows(self, provider: str) -> bool:
        """Whether a ``provider/`` prefix names a provider (else the slash is part of the model's name)."""
        return (
            provider in self._by_provider
            or provider in self._free
            or provider in _OVERRIDE_ALIASES
            or price_db.provider(provider) is not None
        )

    def cost(self, model: str | None, provider: str | None, usage: Usage) -> float | None:
        """USD for one call, or None (with one notice per model) when its price is unknown."""
        if usage.input_tokens is None and usage.output_tokens is None:
            return None
        price = self.find(model, provider)
        if price is None:
            key = f"{provider}/{model}"
            with self._lock:
                first = key not in self._noticed
                self._noticed.add(key)
            if first:
                logger.warning(
                    "crewtrace: no price for model %r (provider %r): its calls get no cost; add it with "
                    "instrument(prices=...) or %s",
                    model,
                    provider,
                    PRICES_ENV,
                )
            return None
        return price.cost(usage)


def _match(models: Mapping[str, Price], name: str) -> Price | None:
    """The user's price for a model name, exactly or for a dated or versioned release of it."""
    if not models:
        return None
    if name in models:
        return models[name]
    tail = name.rsplit("/", 1)[-1]  # bedrock: anthropic.claude-3-5-sonnet-20241022-v2:0
    tail = tail.split(".", 1)[-1] if "." in tail and tail.split(".", 1)[0].isalpha() else tail
    best: str | None = None
    for key in models:
        for candidate in (name, tail):
            versioned = candidate.startswith(key) and _SUFFIX.match(_strip_versions(candidate[len(key) :]))
            if versioned and (best is None or len(key) > len(best)):
                best = key
    return models[best] if best is not None else None


def _strip_versions(rest: str) -> str:
    """'-20241022-v2:0' -> '-20241022' (Bedrock appends a model version to the date)."""
    return re.sub(r"(-\d{8})-v\d+(:\d+)?$", r"\1", rest)


def _read(source: str | Path | Mapping[str, Any] | None) -> Mapping[str, Any]:
    if source is None or source == "":
        return {}
    if isinstance(source, Mapping):
        return source
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read price file {str(source)!r}: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"price file {str(source)!r} must hold a JSON object")
    return data
