"""Usage normalisation: each provider's usage shape (as its API or SDK reports it) onto the GenAI counts."""

from __future__ import annotations

import pytest
from crewai.types.usage_metrics import UsageMetrics

from crewtrace import attributes
from crewtrace.usage.tokens import Totals, Usage, normalize_usage

# (provider shape, usage as reported, expected Usage(input incl. cached, output, cache read, cache write, reasoning))
CASES = [
    (
        "openai",
        {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 128},
        },
        Usage(1200, 300, 1024, None, 128),
    ),
    (
        "anthropic",
        {
            "input_tokens": 50,
            "output_tokens": 80,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
        },
        Usage(1250, 80, 1000, 200, None),
    ),
    ("anthropic without cache", {"input_tokens": 50, "output_tokens": 80}, Usage(50, 80, None, None, None)),
    (
        "gemini",
        {
            "prompt_token_count": 900,
            "candidates_token_count": 100,
            "thoughts_token_count": 40,
            "cached_content_token_count": 512,
            "total_token_count": 1040,
        },
        Usage(900, 140, 512, None, 40),
    ),
    (
        "bedrock converse",
        {
            "inputTokens": 30,
            "outputTokens": 20,
            "totalTokens": 650,
            "cacheReadInputTokens": 500,
            "cacheWriteInputTokens": 100,
        },
        Usage(630, 20, 500, 100, None),
    ),
    ("litellm string counts", {"prompt_tokens": "12", "completion_tokens": "3"}, Usage(12, 3, None, None, None)),
    ("empty", {}, Usage()),
    ("none", None, Usage()),
    ("garbage", {"prompt_tokens": "many", "completion_tokens": -0.5}, Usage()),
]


@pytest.mark.parametrize(("usage", "expected"), [(u, e) for _, u, e in CASES], ids=[c[0] for c in CASES])
def test_provider_shapes(usage, expected):
    assert normalize_usage(usage) == expected


def test_crewai_usage_metrics_object():
    metrics = UsageMetrics(
        total_tokens=150, prompt_tokens=100, cached_prompt_tokens=40, completion_tokens=50, successful_requests=2
    )
    assert normalize_usage(metrics) == Usage(100, 50, 40, 0, 0)  # its unset counts default to 0


def test_litellm_usage_object():
    from litellm.types.utils import Usage as LiteLLMUsage

    usage = LiteLLMUsage(
        prompt_tokens=120,
        completion_tokens=30,
        total_tokens=150,
        prompt_tokens_details={"cached_tokens": 64},
        completion_tokens_details={"reasoning_tokens": 12},
    )
    assert normalize_usage(usage) == Usage(120, 30, 64, None, 12)


def test_rollups_leave_out_cache_and_reasoning_counts_that_are_zero():
    totals = Totals()
    totals.add(Usage(input_tokens=100, output_tokens=20), 0.5)
    attrs = totals.attributes()
    assert (
        attrs[attributes.USAGE_TOTAL_TOKENS] == 120
        and attrs[attributes.USAGE_REQUESTS] == 1
        and attrs[attributes.USAGE_COST_USD] == 0.5
    )
    for absent in (
        attributes.USAGE_CACHE_READ_INPUT_TOKENS,
        attributes.USAGE_CACHE_CREATION_INPUT_TOKENS,
        attributes.USAGE_REASONING_OUTPUT_TOKENS,
    ):
        assert absent not in attrs
    totals.add(Usage(input_tokens=50, output_tokens=5, cache_read_input_tokens=40, reasoning_output_tokens=3), None)
    attrs = totals.attributes()
    assert (
        attrs[attributes.USAGE_CACHE_READ_INPUT_TOKENS] == 40 and attrs[attributes.USAGE_REASONING_OUTPUT_TOKENS] == 3
    )
    assert attributes.USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs and attrs[attributes.USAGE_UNPRICED_REQUESTS] == 1


def test_totals_merge_into_a_parent_or_start_it():
    child = Totals()
    child.add(Usage(input_tokens=10, output_tokens=2, cache_read_input_tokens=4), 0.25)
    child.add(Usage(input_tokens=5, output_tokens=1), None)
    started = child.merged_into(None)
    assert started is not child and started == child
    parent = Totals()
    parent.add(Usage(input_tokens=1, output_tokens=1), 0.5)
    merged = child.merged_into(parent)
    assert merged is parent
    assert (merged.input_tokens, merged.output_tokens, merged.cache_read_input_tokens) == (16, 4, 4)
    assert (merged.requests, merged.unpriced_requests, merged.cost_usd) == (3, 1, 0.75)


def test_crewai_anthropic_readers_count_is_not_counted_twice():
    """CrewAI's Anthropic provider reads an Anthropic response into its own dict; since 1.15.13 that dict's
    input_tokens already holds the cache reads and writes. Either way the GenAI input count is the sum of
    Anthropic's three input counts, each token once."""
    from anthropic.types import Message
    from anthropic.types import Usage as AnthropicUsage
    from crewai.llms.providers.anthropic.completion import AnthropicCompletion

    usage = AnthropicUsage(
        input_tokens=56, output_tokens=9, cache_read_input_tokens=700, cache_creation_input_tokens=300
    )
    response = Message(
        id="msg_1", type="message", role="assistant", model="claude-sonnet-4-20250514", content=[], usage=usage
    )
    reported = AnthropicCompletion._extract_anthropic_token_usage(response)
    counted = normalize_usage(reported)
    assert counted.input_tokens == 56 + 700 + (300 if "cache_creation_tokens" in reported else 0)
    assert (counted.output_tokens, counted.cache_read_input_tokens) == (9, 700)
    assert counted.cache_write_input_tokens == (300 if "cache_creation_tokens" in reported else None)
