"""CrewAI's native OpenAI provider over real HTTP: the tokens and cost crewtrace puts on each span, per API.

Each route runs a crew (a tool call, then an answer) against a loopback server that speaks OpenAI's wire
format and reports different counts for every request; the expected attributes are computed here from what
the server sent and from OpenAI's published prices. Also the shared checks of tests/test_route_*.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from crewai import LLM
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crewtrace import attributes
from crewtrace.report.records import records_from_sdk
from tests.helpers import analyst_crew, outline
from tests.openai_server import OpenAIServer

API_KEY = "sk-test-not-a-real-key"


@dataclass(frozen=True)
class Call:
    """One answered request's counts in GenAI terms (input with cache reads, output with reasoning); None: the
    vendor reported no such count."""

    input_tokens: int
    output_tokens: int
    cache_read: int | None = None
    reasoning: int | None = None


@dataclass(frozen=True)
class VendorPrice:
    """A vendor's published price, USD per million tokens."""

    input: float
    cached_input: float
    output: float

    def cost(self, call: Call) -> float:
        """Uncached input at the input price, cache reads at the cached price, all output at the output price."""
        cached = call.cache_read or 0
        fresh = call.input_tokens - cached
        return (fresh * self.input + cached * self.cached_input + call.output_tokens * self.output) / 1e6


FREE = VendorPrice(0.0, 0.0, 0.0)  # a model on the user's own machine
# Standard tier, from https://openai.com/api/pricing (recorded 2026-12-05; tests/test_pricing.py has the same).
GPT_4O_MINI = VendorPrice(input=0.15, cached_input=0.075, output=0.60)
O4_MINI = VendorPrice(input=1.10, cached_input=0.275, output=4.40)


def usd(expected: float) -> Any:
    """A cost within 1e-9 USD or 0.5 % of ``expected``."""
    return pytest.approx(expected, rel=5e-3, abs=1e-9)


def chat_usage(reasoning: bool) -> Any:
    """Chat Completions usage that grows with the request number; reasoning tokens only for a reasoning model."""

    def usage(n: int) -> dict[str, Any]:
        prompt, completion = 1_000 * n + 234, 300 + 25 * n
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 384 * n, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 128 * n if reasoning else 0, "audio_tokens": 0},
        }

    return usage


def responses_usage(n: int) -> dict[str, Any]:
    """Responses API usage that grows with the request number."""
    return {
        "input_tokens": 2_000 * n + 77,
        "input_tokens_details": {"cached_tokens": 1_024 * n},
        "output_tokens": 500 + 31 * n,
        "output_tokens_details": {"reasoning_tokens": 256 * n},
        "total_tokens": 2_577 + 2_031 * n,
    }


def chat_call(usage: dict[str, Any]) -> Call:
    """What a Chat Completions usage object says, in GenAI terms (prompt_tokens already includes the cache)."""
    details = usage.get("prompt_tokens_details") or {}
    reasoning = usage.get("completion_tokens_details") or {}
    return Call(
        usage["prompt_tokens"],
        usage["completion_tokens"],
        details.get("cached_tokens"),
        reasoning.get("reasoning_tokens"),
    )


def responses_call(usage: dict[str, Any]) -> Call:
    """What a Responses API usage object says, in GenAI terms (input_tokens already includes the cache)."""
    cached = usage["input_tokens_details"]["cached_tokens"]
    return Call(
        usage["input_tokens"], usage["output_tokens"], cached, usage["output_tokens_details"]["reasoning_tokens"]
    )


def check_run(
    exporter: InMemorySpanExporter,
    calls: Sequence[Call],
    *,
    crew: str,
    model: str,
    provider: str,
    price: VendorPrice | None,
) -> list[ReadableSpan]:
    """The analyst crew's tree, one ``chat`` span per answered request with that request's counts and cost, and
    the crew's roll-up equal to their sums. ``price`` None: costs are not checked. Returns the chat spans."""
    spans = exporter.get_finished_spans()
    chat = f"chat {model}"
    assert outline(records_from_sdk(spans)) == [
        f"invoke_workflow {crew}",
        "  execute_task analyse",
        "    invoke_agent Analyst",
        f"      {chat}",
        "      execute_tool notebook_lookup",
        f"      {chat}",
    ]
    chats = sorted((s for s in spans if s.name == chat), key=lambda s: s.start_time)
    assert len(chats) == len(calls)
    for span, call in zip(chats, calls, strict=True):
        attrs = span.attributes
        assert attrs[attributes.GEN_AI_USAGE_INPUT_TOKENS] == call.input_tokens
        assert attrs[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] == call.output_tokens
        assert attrs.get(attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == call.cache_read
        assert attrs.get(attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) == call.reasoning
        assert attributes.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs  # no route here reports cache writes
        if price is not None:
            assert attrs[attributes.LLM_COST_USD] == usd(price.cost(call))
    (root,) = [s for s in spans if s.name == f"invoke_workflow {crew}"]
    totals = root.attributes
    inputs, outputs = sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls)
    assert totals[attributes.USAGE_INPUT_TOKENS] == inputs
    assert totals[attributes.USAGE_OUTPUT_TOKENS] == outputs
    assert totals[attributes.USAGE_TOTAL_TOKENS] == inputs + outputs
    assert totals[attributes.USAGE_REQUESTS] == len(calls)
    assert totals.get(attributes.USAGE_CACHE_READ_INPUT_TOKENS, 0) == sum(c.cache_read or 0 for c in calls)
    assert totals.get(attributes.USAGE_REASONING_OUTPUT_TOKENS, 0) == sum(c.reasoning or 0 for c in calls)
    assert attributes.USAGE_CACHE_CREATION_INPUT_TOKENS not in totals
    if price is not None:
        assert attributes.USAGE_UNPRICED_REQUESTS not in totals
        assert totals[attributes.USAGE_COST_USD] == usd(sum(price.cost(c) for c in calls))
    # Last, so that a wrong provider name does not hide what the counts and costs say.
    assert [s.attributes.get(attributes.GEN_AI_PROVIDER_NAME) for s in chats] == [provider] * len(chats)
    return chats


@pytest.mark.parametrize(
    ("model", "price", "reasoning"),
    [("gpt-4o-mini", GPT_4O_MINI, False), ("o4-mini", O4_MINI, True)],
)
def test_chat_completions_count_cached_and_reasoning_tokens(memory, model, price, reasoning):
    """gpt-4o-mini reports cached prompt tokens (and 0 reasoning), o4-mini reasoning tokens too."""
    _, exporter = memory
    with OpenAIServer(usage=chat_usage(reasoning)) as server:
        llm = LLM(model=model, base_url=server.base_url, api_key=API_KEY)
        assert type(llm).__name__ == "OpenAICompletion"
        analyst_crew(llm, f"{model}-crew").kickoff()
    assert server.paths == ["/v1/chat/completions"] * 2
    calls = [chat_call(u) for u in server.usages]
    assert [c.reasoning for c in calls] == ([128, 256] if reasoning else [0, 0])
    check_run(exporter, calls, crew=f"{model}-crew", model=model, provider="openai", price=price)


def test_streamed_chat_completions_take_usage_from_the_last_chunk(memory):
    """With stream=True CrewAI asks for the usage chunk (stream_options.include_usage), sent after the answer."""
    _, exporter = memory
    with OpenAIServer(usage=chat_usage(reasoning=False)) as server:
        llm = LLM(model="gpt-4o-mini", base_url=server.base_url, api_key=API_KEY, stream=True)
        analyst_crew(llm, "streamed-crew").kickoff()
    assert [(r.get("stream"), r.get("stream_options")) for r in server.requests] == [
        (True, {"include_usage": True})
    ] * 2
    calls = [chat_call(u) for u in server.usages]
    chats = check_run(exporter, calls, crew="streamed-crew", model="gpt-4o-mini", provider="openai", price=GPT_4O_MINI)
    assert all(span.attributes[attributes.LLM_STREAM] is True for span in chats)


def test_responses_api_counts_cached_and_reasoning_tokens(memory):
    """api="responses": input_tokens_details.cached_tokens and output_tokens_details.reasoning_tokens."""
    _, exporter = memory
    with OpenAIServer(usage=responses_usage) as server:
        llm = LLM(model="o4-mini", base_url=server.base_url, api_key=API_KEY, api="responses")
        analyst_crew(llm, "responses-crew").kickoff()
    assert server.paths == ["/v1/responses"] * 2
    assert [i.get("type") for i in server.requests[1]["input"]][-1] == "function_call_output"
    calls = [responses_call(u) for u in server.usages]
    check_run(exporter, calls, crew="responses-crew", model="o4-mini", provider="openai", price=O4_MINI)
