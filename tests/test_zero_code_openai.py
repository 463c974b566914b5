"""openai-v2 under `opentelemetry-instrument`, as a user runs it: every LLM call's tokens and cost land once.

openai-v2 makes the span of CrewAI's native OpenAI calls, but records no tokens in its metric for CrewAI's
raw-response calls, and makes no span for structured-output (``parse``) calls. crewtrace fills exactly
those gaps: the token metric, cost and full usage as an event on the agent, and its own span for a call no
other instrumentation spanned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewtrace import attributes
from tests.openai_server import USAGE, OpenAIServer
from tests.processes import run_zero_code
from tests.receivers import GrpcReceiver, attributes_of

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

APP = Path(__file__).resolve().parent / "apps" / "zero_code_openai.py"
OPENAI_V2 = "opentelemetry.instrumentation.openai_v2"
GENAI_UTIL = "opentelemetry.util.genai.handler"


def _run(env: dict[str, str], options: list[str]) -> tuple[GrpcReceiver, int, list[tuple[str, Any]]]:
    """Run the app; the receiver, the number of LLM requests made, and (scope, span) for every span."""
    with OpenAIServer() as server, GrpcReceiver() as receiver:
        done = run_zero_code(env, receiver.endpoint, str(APP), server.base_url, *options, metrics="otlp", timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        calls = len(server.requests)
        spans = [
            (ss.scope.name, span)
            for request in receiver.requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
    return receiver, calls, spans


def _token_recordings(receiver: GrpcReceiver) -> tuple[int, int]:
    """(recordings, tokens) of input tokens on gen_ai.client.token.usage, over every scope."""
    points = [
        point
        for attrs, point in receiver.metric_points(attributes.METRIC_TOKEN_USAGE)
        if attrs.get(attributes.GEN_AI_TOKEN_TYPE) == attributes.TOKEN_TYPE_INPUT
    ]
    return sum(p.count for p in points), int(sum(p.sum for p in points))


@pytest.mark.parametrize(
    ("options", "semconv", "other_scope"),
    [
        ([], "", OPENAI_V2),
        (["stream"], "", OPENAI_V2),
        (["structured"], "", OPENAI_V2),
        ([], "gen_ai_latest_experimental", GENAI_UTIL),
    ],
    ids=["default", "streaming", "structured-output", "experimental-semconv"],
)
def test_each_call_has_its_tokens_and_cost_once(subprocess_env, options, semconv, other_scope):
    env = {**subprocess_env, "OTEL_SEMCONV_STABILITY_OPT_IN": semconv}
    receiver, calls, spans = _run(env, options)
    assert calls >= 2

    chats = [
        (scope, span) for scope, span in spans if attributes_of(span.attributes).get("gen_ai.operation.name") == "chat"
    ]
    assert len(chats) == calls  # one span per call, never two
    assert sum(attributes_of(s.attributes).get(attributes.GEN_AI_USAGE_INPUT_TOKENS, 0) for _, s in chats) == (
        calls * USAGE["prompt_tokens"]
    )
    own = [s for scope, s in chats if scope == "crewtrace"]
    assert {scope for scope, _ in chats} == ({other_scope, "crewtrace"} if own else {other_scope})
    # A structured-output call goes through a method openai-v2 does not wrap: crewtrace spans it itself.
    assert len(own) == (1 if "structured" in options else 0)

    # Cost once per call: on crewtrace's own span, or as an event on the span above the other's.
    events = [
        attributes_of(event.attributes)
        for scope, span in spans
        if scope == "crewtrace"
        for event in span.events
        if event.name == attributes.EVENT_LLM_CALL
    ]
    priced = [attributes_of(s.attributes) for s in own] + events
    assert len(priced) == calls
    assert all(item[attributes.LLM_COST_USD] > 0 for item in priced)
    other_ids = {format(int.from_bytes(s.span_id, "big"), "016x") for scope, s in chats if scope != "crewtrace"}
    assert {e[attributes.LLM_SPAN_ID] for e in events} == other_ids
    assert all(e[attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 64 for e in events)

    # The token metric counts every call exactly once, whoever records it.
    assert _token_recordings(receiver) == (calls, calls * USAGE["prompt_tokens"])
