"""Cost estimates: USD for an LLM call's tokens, from the price table shipped in data/prices.json.

A model is found by its provider (the ``provider/`` prefix of the model name, else gen_ai.provider.name)
and its name, exactly or with a date or version suffix (``claude-3-5-sonnet-20241022``). A model the
table does not know gets no cost (never a made-up 0) and one logged notice. Local providers cost 0.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from crewtrace.usage.tokens import Usage

logger = logging.getLogger(__name__)

PRICES_ENV = "CREWTRACE_PRICES"
_PER = 1_000_000
_MAX_REMEMBERED = 4096  # distinct (model, provider) lookups a table remembers
# A dated or versioned release of a model in the table: gpt-4o-2024-08-06, claude-3-5-haiku-20241022, -001.
_SUFFIX = re.compile(r"^-(\d{4}-?\d{2}-?\d{2}|\d{3,4}|latest|v\d+(:\d+)?)$")
_PROVIDER_ALIASES = {
    "gemini": "google",
    "vertex_ai": "google",
    "google_genai": "google",
    "azure": "openai",
    "azure_openai": "openai",
    "mistralai": "mistral",
    "bedrock": "anthropic",  # only Claude models are in the table under Bedrock's names' tails
}


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        """The cost of one call. ``usage.input_tokens`` includes cached input (GenAI conventions)."""
        cache_read = usage.cache_read_input_tokens or 0
        cache_write = usage.cache_write_input_tokens or 0
        fresh = max((usage.input_tokens or 0) - cache_read - cache_write, 0)
        total = (
            fresh * self.input
            + cache_read * (self.input if self.cached_input is None else self.cached_input)
            + cache_write * (self.input if self.cache_write is None else self.cache_write)
            + (usage.output_tokens or 0) * self.output
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
    """Model prices by provider; user entries override the shipped table."""

    def __init__(self, by_provider: dict[str, dict[str, Price]], anywhere: dict[str, Price], free: frozenset[str]):
        self._by_provider = by_provider
        self._anywhere = anywhere  # user entries given without a provider: match any provider
        self._free = free
        self._noticed: set[str] = set()
        self._lock = threading.Lock()
        self._found: dict[tuple[str | None, str | None], Price | None] = {}  # find()'s answers, misses too

    @classmethod
    def load(cls, override: str | Path | Mapping[str, Any] | None = None) -> PriceTable:
        """The shipped table, with ``override`` (a JSON file path or a dict in the same shape) on top."""
        shipped = json.loads(
            resources.files("crewtrace.usage").joinpath("data/prices.json").read_text(encoding="utf-8")
        )
        by_provider: dict[str, dict[str, Price]] = {}
        anywhere: dict[str, Price] = {}
        free = set(shipped.get("free_providers", []))
        for data in (shipped, _read(override)):
            for key, value in dict(data.get("models", data) if "models" in data else data).items():
                if key in ("date", "source", "currency", "unit", "note", "free_providers"):
                    continue
                if isinstance(value, Mapping) and "input" in value:
                    anywhere[key.lower()] = _price(key, value)
                elif isinstance(value, Mapping):
                    models = by_provider.setdefault(key.lower(), {})
                    models.update({m.lower(): _price(f"{key}/{m}", p) for m, p in value.items()})
                else:
                    raise ValueError(f"price entry {key!r} must be an object")
            free.update(data.get("free_providers", []))
        return cls(by_provider, anywhere, frozenset(free))

    def find(self, model: str | None, provider: str | None) -> Price | None:
        """The price of a model, or None when the table does not know it (answers are remembered: a miss or
        a dated name scans the table, and the same few models are asked for on every call)."""
        key = (model, provider)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = self._lookup(model, provider)
        if len(self._found) < _MAX_REMEMBERED:
            self._found[key] = found
        return found

    def _lookup(self, model: str | None, provider: str | None) -> Price | None:
        if not model:
            return None
        name = model.lower()
        prefix, _, rest = name.partition("/")
        if rest and (prefix in self._by_provider or prefix in self._free or prefix in _PROVIDER_ALIASES):
            provider, name = prefix, rest
        provider = _PROVIDER_ALIASES.get((provider or "").lower(), (provider or "").lower())
        if provider in self._free:
            return Price(0.0, 0.0)
        found = _match(self._anywhere, name)
        if found is None and provider:
            found = _match(self._by_provider.get(provider, {}), name)
        if found is None and not provider:  # a bare model name: look in every provider's list
            for models in self._by_provider.values():
                found = found or _match(models, name)
        return found

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
