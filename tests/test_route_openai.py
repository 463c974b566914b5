"""CrewAI's native OpenAI provider over real HTTP: the tokens and cost crewtrace puts on each span, per API.

Each route runs a crew (a tool call, then an answer) against a loopback server that speaks OpenAI's wire
format and reports different counts for every request; the expected attributes are computed here from what
the server sent and from OpenAI's published prices. The shared checks are in tests/route_checks.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from crewai import LLM

from crewtrace import attributes
from tests.helpers import analyst_crew
from tests.openai_server import OpenAIServer
from tests.route_checks import Call, VendorPrice, chat_call, check_run

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

API_KEY = "sk-test-not-a-real-key"


# Standard tier, from https://openai.com/api/pricing (recorded 2026-12-05; tests/test_pricing.py has the same).
GPT_4O_MINI = VendorPrice(input=0.15, cached_input=0.075, output=0.60)
O4_MINI = VendorPrice(input=1.10, cached_input=0.275, output=4.40)


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


def responses_call(usage: dict[str, Any]) -> Call:
    """What a Responses API usage object says, in GenAI terms (input_tokens already includes the cache)."""
    cached = usage["input_tokens_details"]["cached_tokens"]
    return Call(
        usage["input_tokens"], usage["output_tokens"], cached, usage["output_tokens_details"]["reasoning_tokens"]
    )


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
