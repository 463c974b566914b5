"""CrewAI's native Gemini provider (google-genai) over real HTTP to a loopback Gemini API: tokens and cost.

The crew (one tool call as a Gemini ``functionCall``, then a final answer) runs once per mode, non-streamed
(``:generateContent``) and streamed (``:streamGenerateContent?alt=sse``, usage in the last event); each test
checks one thing of that run against what the server sent for each call, computed here by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from crewai import LLM
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace import attributes
from crewtrace.demo.crew import NotebookTool
from crewtrace.report.records import records_from_sdk
from tests.gemini_server import COUNT, GENERATE, STREAM, GeminiServer
from tests.helpers import analyst_crew, outline
from tests.route_checks import RunSpans, clear_event_scope

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

MODEL = "gemini-2.5-flash"
_TOOL_RESULT = json.dumps(NotebookTool()._run("tracing"))[1:-1]  # as it appears inside a JSON request body

# Gemini 2.5 Flash, paid tier, USD per million text tokens, from https://ai.google.dev/gemini-api/docs/pricing
# (figures as of 2026-12-05): input $0.30, output $2.50 ("including thinking tokens"), context caching $0.03.
PRICE_INPUT = 0.30
PRICE_OUTPUT = 2.50
PRICE_CACHE_READ = 0.03

# Each token cell: the span's gen_ai.usage.* attribute, the crew's crewai.usage.* roll-up, and its value from
# Google's usageMetadata (https://ai.google.dev/api/generate-content#UsageMetadata: promptTokenCount includes
# cachedContentTokenCount; thoughtsTokenCount is output apart from candidatesTokenCount).
CELLS: dict[str, tuple[str, str, Callable[[dict[str, Any]], int]]] = {
    "input_incl_cache": (
        attributes.GEN_AI_USAGE_INPUT_TOKENS,
        attributes.USAGE_INPUT_TOKENS,
        lambda u: u["promptTokenCount"],
    ),
    "output_incl_thinking": (
        attributes.GEN_AI_USAGE_OUTPUT_TOKENS,
        attributes.USAGE_OUTPUT_TOKENS,
        lambda u: u["candidatesTokenCount"] + u["thoughtsTokenCount"],
    ),
    "cache_read": (
        attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        attributes.USAGE_CACHE_READ_INPUT_TOKENS,
        lambda u: u["cachedContentTokenCount"],
    ),
    "reasoning": (
        attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        attributes.USAGE_REASONING_OUTPUT_TOKENS,
        lambda u: u["thoughtsTokenCount"],
    ),
}


@dataclass
class Run(RunSpans):
    """One crew run against the server: the finished spans, and every request path and usage it answered."""

    stream: bool
    spans: list[ReadableSpan]
    paths: list[str]
    models: list[str]
    bodies: list[dict[str, Any]]
    usages: list[dict[str, Any]]


@pytest.fixture(scope="module", params=[False, True], ids=["generate", "stream"])
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The analyst crew on ``LLM(model="gemini/gemini-2.5-flash")`` pointed at the loopback server, traced."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    clear_event_scope()
    instrumentor = crewtrace.CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with GeminiServer() as server:
            # CrewAI's Gemini provider ignores base_url; client_params go to genai.Client as they are.
            llm = LLM(
                model=f"gemini/{MODEL}",
                api_key="test-not-real",
                stream=request.param,
                client_params={"http_options": {"base_url": server.base_url, "timeout": 30_000}},  # ms
            )
            analyst_crew(llm, "gemini-crew").kickoff()
    finally:
        instrumentor.uninstrument()
    models = [r.path.split("/models/", 1)[1].split(":", 1)[0] for r in server.requests]
    bodies = [r.body for r in server.requests]
    yield Run(request.param, list(exporter.get_finished_spans()), list(server.paths), models, bodies, server.usages)
    provider.shutdown()


def _cost(usage: dict[str, Any]) -> float:
    """One call's price by Google's table: uncached input, cached input, and output with thinking."""
    cached = usage["cachedContentTokenCount"]
    fresh = usage["promptTokenCount"] - cached
    output = usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    return (fresh * PRICE_INPUT + cached * PRICE_CACHE_READ + output * PRICE_OUTPUT) / 1_000_000


def _count(attrs: Any, key: str) -> int:
    """A count attribute; absent is 0 (crewtrace leaves roll-up counts of 0 out)."""
    return int(attrs.get(key, 0))


def test_every_request_has_one_llm_span_in_the_crew_tree(run: Run) -> None:
    """Each generateContent call the server answered is one ``chat`` span under the agent: none lost, none doubled.
    CrewAI also sizes the tool's result with Google's countTokens, which is no LLM call and gets no span."""
    method = STREAM if run.stream else GENERATE
    generated = [path for path in run.paths if f"/v1beta/models/{MODEL}{method}" in path]
    assert all(path in generated or path.endswith(f"/models/{MODEL}{COUNT}") for path in run.paths), run.paths
    assert len(generated) == len(run.usages) == len(run.chats()) == 2
    # The round worked: the second request hands the model the notebook's fact as the functionResponse.
    assert _TOOL_RESULT in json.dumps(run.bodies[1]) and "functionResponse" in json.dumps(run.bodies[1])
    assert outline(records_from_sdk(run.spans)) == [
        "invoke_workflow gemini-crew",
        "  execute_task analyse",
        "    invoke_agent Analyst",
        f"      chat {MODEL}",
        "      execute_tool notebook_lookup",
        f"      chat {MODEL}",
    ]
    for span, model in zip(run.chats(), run.models, strict=True):
        assert span.attributes[attributes.GEN_AI_REQUEST_MODEL] == model
        assert span.attributes.get(attributes.LLM_STREAM, False) is run.stream
    assert run.crew().attributes[attributes.USAGE_REQUESTS] == len(run.usages)


@pytest.mark.parametrize("cell", CELLS)
def test_llm_span_tokens_are_what_gemini_reported(run: Run, cell: str) -> None:
    """Each LLM span's gen_ai.usage.* count is the one its own response's usageMetadata gave."""
    key, _, expected = CELLS[cell]
    seen = [span.attributes.get(key) for span in run.chats()]
    assert seen == [expected(usage) for usage in run.usages]


@pytest.mark.parametrize("cell", CELLS)
def test_crew_rollup_sums_the_calls(run: Run, cell: str) -> None:
    """The crew's crewai.usage.* count is the sum over every call the server answered."""
    _, key, expected = CELLS[cell]
    assert _count(run.crew().attributes, key) == sum(expected(usage) for usage in run.usages)


def test_gemini_reports_no_cache_writes_and_none_are_made_up(run: Run) -> None:
    """The Gemini API reports no cache-write count (explicit caches are created apart): no span claims any."""
    for span in [*run.chats(), run.crew()]:
        assert not [key for key in span.attributes if "cache_creation" in key or "cache_write" in key], span.name


def test_cost_is_googles_price_of_each_bucket(run: Run) -> None:
    """Each call costs its uncached input, cached input and output with thinking at Google's prices; the crew
    costs their sum."""
    expected = [_cost(usage) for usage in run.usages]
    costs = [span.attributes.get(attributes.LLM_COST_USD) for span in run.chats()]
    assert costs == [pytest.approx(cost, rel=5e-3, abs=1e-9) for cost in expected]
    crew = run.crew().attributes
    assert crew.get(attributes.USAGE_COST_USD) == pytest.approx(sum(expected), rel=5e-3, abs=1e-9)
    assert attributes.USAGE_UNPRICED_REQUESTS not in crew


def test_provider_name_is_crewais(run: Run) -> None:
    """gen_ai.provider.name is the LLM's CrewAI provider, ``gemini``, as docs/span-model.md says (the price
    lookup maps it to Google's prices)."""
    assert [span.attributes.get(attributes.GEN_AI_PROVIDER_NAME) for span in run.chats()] == ["gemini"] * 2
