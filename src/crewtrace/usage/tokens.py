"""Token usage: one shape for whatever usage dict a provider (or CrewAI) reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from crewtrace import attributes, crewai_releases

# The gen_ai.usage.* attribute of each Usage field, in field order.

_ATTRIBUTE_KEYS = (
    attributes.GEN_AI_USAGE_INPUT_TOKENS,
    attributes.GEN_AI_USAGE_OUTPUT_TOKENS,
    attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    attributes.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)

# The names each provider gives each count, in order of preference.
_CACHE_READ = ("cache_read_input_tokens", "cacheReadInputTokens", "cached_content_token_count")
_CACHED_PROMPT = ("cached_prompt_tokens", "cached_tokens")
_CACHE_WRITE = ("cache_creation_input_tokens", "cacheWriteInputTokens", "cache_creation_tokens", "cache_write_tokens")
_REASONING = ("reasoning_tokens",)
_OUTPUT = ("completion_tokens", "output_tokens", "outputTokens", "candidates_token_count")
_THOUGHTS = ("thoughts_token_count",)
_PROMPT = ("prompt_tokens", "prompt_token_count")
_UNCACHED_INPUT = ("input_tokens", "inputTokens")
# The names CrewAI's own usage readers give the cache counts; no vendor's API sends them.
_CREWAI_CACHE_NAMES = frozenset({"cached_prompt_tokens", "cache_creation_tokens"})


class Usage(NamedTuple):
    """Token counts of one LLM call. ``input_tokens`` includes cached input, as the GenAI conventions define it.

    A named tuple: made for every LLM call, and a tuple is built and compared far more cheaply than a frozen
    dataclass."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None
    reasoning_output_tokens: int | None = None

    @classmethod
    def of_span(cls, attributes: Mapping[str, Any]) -> Usage | None:
        """The usage that gen_ai.usage.* attributes made by :meth:`attributes` hold, or None when they hold none."""
        usage = cls(*map(attributes.get, _ATTRIBUTE_KEYS))
        return None if usage == _NO_USAGE else usage

    @staticmethod
    def drop_from(attributes: dict[str, Any]) -> None:
        """Remove the gen_ai.usage.* attributes from ``attributes`` (a better count is already on the span)."""
        for key in _ATTRIBUTE_KEYS:
            attributes.pop(key, None)

    def attributes(self) -> dict[str, int]:
        """The gen_ai.usage.* attributes for an LLM span, leaving out counts the provider did not report."""
        return {key: value for key, value in zip(_ATTRIBUTE_KEYS, self, strict=True) if value is not None}


_NO_USAGE = Usage()


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is int:  # the usual case, first
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first of ``keys`` that ``data`` holds as a count. Most providers report few of the names looked
    for: a group none of whose names is there is skipped in one step."""
    if data.keys().isdisjoint(keys):
        return None
    for key in keys:
        value = data.get(key)
        if value is not None:
            found = _int(value)
            if found is not None:
                return found
    return None


def _nested(data: Mapping[str, Any], outer: str, inner: str) -> int | None:
    sub = data.get(outer)
    if isinstance(sub, Mapping):
        return _int(sub.get(inner))
    return _int(getattr(sub, inner, None)) if sub is not None else None


def _as_mapping(usage: Any) -> Mapping[str, Any] | None:
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        return usage
    dump = getattr(usage, "model_dump", None)
    if callable(dump):
        dumped = dump()
        return dumped if isinstance(dumped, Mapping) else None
    return vars(usage) if hasattr(usage, "__dict__") else None


# The plain OpenAI shape, with nothing more: what CrewAI's own LLM classes report on most calls.
_PLAIN_COUNTS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})


def normalize_usage(usage: Any) -> Usage:
    """Map OpenAI, Anthropic, Gemini, Bedrock, litellm or CrewAI UsageMetrics usage onto :class:`Usage`."""
    data = usage if type(usage) is dict else _as_mapping(usage)
    if not data:
        return _NO_USAGE
    if data.keys() <= _PLAIN_COUNTS:
        return Usage(_int(data.get("prompt_tokens")), _int(data.get("completion_tokens")))
    cache_read = _first(data, _CACHE_READ)
    if cache_read is None:
        cache_read = _nested(data, "prompt_tokens_details", "cached_tokens")
    if cache_read is None:
        cache_read = _first(data, _CACHED_PROMPT)
    cache_write = _first(data, _CACHE_WRITE)
    reasoning = _nested(data, "completion_tokens_details", "reasoning_tokens")
    if reasoning is None:
        reasoning = _first(data, _REASONING)
    output = _first(data, _OUTPUT)
    thoughts = _first(data, _THOUGHTS)
    if thoughts is not None:  # Gemini counts thinking apart from the answer; both are output, as OpenAI counts
        reasoning = thoughts if reasoning is None else reasoning
        output = (output or 0) + thoughts

    prompt = _first(data, _PROMPT)
    if prompt is not None:  # OpenAI, Gemini, CrewAI: the prompt count already includes cached input
        input_tokens: int | None = prompt
    else:
        # Anthropic and Bedrock: the input count is only the uncached input; cache reads and writes come on top.
        input_tokens = _first(data, _UNCACHED_INPUT)
        if input_tokens is not None and not _input_includes_cache(data):
            input_tokens += (cache_read or 0) + (cache_write or 0)
    return Usage(input_tokens, output, cache_read, cache_write, reasoning)


def _input_includes_cache(data: Mapping[str, Any]) -> bool:
    """Whether an ``input_tokens`` count already includes the cache. Anthropic's and Bedrock's own counts
    leave it out; CrewAI's Anthropic provider reports its count beside CrewAI's cache names and, since
    1.15.13, with the cache folded in (crewai_releases.anthropic_input_includes_cache)."""
    return not data.keys().isdisjoint(_CREWAI_CACHE_NAMES) and crewai_releases.anthropic_input_includes_cache()


@dataclass
class Totals:
    """What the LLM calls beneath one span used: the ``crewai.usage.*`` roll-up of a crew, task or agent.

    Under crewai.* names, not gen_ai.usage.*: backends sum gen_ai.usage.* over a trace, and repeating the
    totals there would count every token again on each level.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_output_tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0

    def add(self, usage: Usage | None, cost_usd: float | None) -> None:
        """Count one LLM call (with the usage it reported, if any, and its cost, if known)."""
        self.requests += 1
        if usage is None:
            return
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cache_read_input_tokens += usage.cache_read_input_tokens or 0
        self.cache_write_input_tokens += usage.cache_write_input_tokens or 0
        self.reasoning_output_tokens += usage.reasoning_output_tokens or 0
        if cost_usd is None:
            self.unpriced_requests += 1
        else:
            self.cost_usd += cost_usd

    def merged_into(self, other: Totals | None) -> Totals:
        """``other`` with these totals added (these, when there is no other yet)."""
        if other is None:
            return Totals(**vars(self))
        other.input_tokens += self.input_tokens
        other.output_tokens += self.output_tokens
        other.cache_read_input_tokens += self.cache_read_input_tokens
        other.cache_write_input_tokens += self.cache_write_input_tokens
        other.reasoning_output_tokens += self.reasoning_output_tokens
        other.requests += self.requests
        other.cost_usd += self.cost_usd
        other.unpriced_requests += self.unpriced_requests
        return other

    def attributes(self) -> dict[str, int | float]:
        """The crewai.usage.* attributes; no cost when no call beneath had a known price, no cache or reasoning
        counts when they are 0."""
        attrs: dict[str, int | float] = {
            attributes.USAGE_INPUT_TOKENS: self.input_tokens,
            attributes.USAGE_OUTPUT_TOKENS: self.output_tokens,
            attributes.USAGE_TOTAL_TOKENS: self.input_tokens + self.output_tokens,
            attributes.USAGE_REQUESTS: self.requests,
        }
        # Absent when 0, as on the LLM spans: most models report none, and each attribute costs every span.
        if self.cache_read_input_tokens:
            attrs[attributes.USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read_input_tokens
        if self.cache_write_input_tokens:
            attrs[attributes.USAGE_CACHE_CREATION_INPUT_TOKENS] = self.cache_write_input_tokens
        if self.reasoning_output_tokens:
            attrs[attributes.USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_output_tokens
        if self.unpriced_requests:
            attrs[attributes.USAGE_UNPRICED_REQUESTS] = self.unpriced_requests
        if self.requests > self.unpriced_requests:
            attrs[attributes.USAGE_COST_USD] = self.cost_usd
        return attrs
