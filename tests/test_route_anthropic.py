"""CrewAI's Anthropic routes over real HTTP to a loopback Messages API: tokens, cache counts and cost on the spans.

Two routes: CrewAI's native provider (the ``anthropic`` SDK) and litellm (``is_litellm=True``), each non-streamed
and streamed. Each crew runs once per route and mode (cached in the module); each test checks one thing of that
run against the usage the server sent for each call, with every expected number computed here by hand.
"""

from __future__ import annotations

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
from crewtrace.report.records import records_from_sdk
from tests.anthropic_server import AnthropicServer, Call
from tests.helpers import analyst_crew, outline, writer_crew
from tests.route_checks import RunSpans

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

MODEL = "claude-sonnet-4-20250514"

# Claude Sonnet 4 on the Anthropic API, USD per million tokens, from https://www.anthropic.com/pricing (the table
# at https://docs.anthropic.com/en/docs/about-claude/pricing), as of 2026-12-05: base input $3, output $15,
# cache hits $0.30, 5-minute cache writes $3.75 (CrewAI's ``cache_control`` is ephemeral: the 5-minute TTL).
PRICE_INPUT = 3.00
PRICE_OUTPUT = 15.00
PRICE_CACHE_READ = 0.30
PRICE_CACHE_WRITE = 3.75

# The GenAI conventions' names (https://opentelemetry.io/docs/specs/semconv/registry/attributes/gen-ai/), written
# out here so that a wrong name in crewtrace fails; input_tokens includes cache reads and cache writes.
INPUT, OUTPUT = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
CACHE_READ, CACHE_WRITE = "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens"
REASONING = "gen_ai.usage.reasoning.output_tokens"

# Each token cell: the LLM span's attribute, the crew's crewai.usage.* roll-up, and its value from Anthropic's
# usage object (https://docs.anthropic.com/en/api/messages: input_tokens leaves out the cache; output_tokens
# includes any thinking, which Anthropic does not count apart).
CELLS: dict[str, tuple[str, str, Callable[[dict[str, int]], int]]] = {
    "input_incl_cache": (
        INPUT,
        attributes.USAGE_INPUT_TOKENS,
        lambda u: u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"],
    ),
    "output_incl_thinking": (OUTPUT, attributes.USAGE_OUTPUT_TOKENS, lambda u: u["output_tokens"]),
    "cache_read": (CACHE_READ, attributes.USAGE_CACHE_READ_INPUT_TOKENS, lambda u: u["cache_read_input_tokens"]),
    "cache_write": (
        CACHE_WRITE,
        attributes.USAGE_CACHE_CREATION_INPUT_TOKENS,
        lambda u: u["cache_creation_input_tokens"],
    ),
}

# (route, streamed). litellm's streamed run has no tool: CrewAI's litellm stream handler drops the tool call's id
# (crewai/llm.py, _handle_streaming_tool_calls), so Anthropic would be sent a tool_result without a tool_use_id.
ROUTES = [("native", False), ("native", True), ("litellm", False), ("litellm", True)]
TOOL_ROUTES = [route for route in ROUTES if route != ("litellm", True)]


def route_id(route: tuple[str, bool]) -> str:
    """A readable test id: native-messages, native-stream, litellm-messages, litellm-stream."""
    return f"{route[0]}-{'stream' if route[1] else 'messages'}"


@dataclass
class Run(RunSpans):
    """One traced crew run against the server: its finished spans, the calls answered and the expected tree."""

    route: str
    stream: bool
    model: str
    spans: list[ReadableSpan]
    calls: list[Call]
    rejected: list[str]
    tree: list[str]

    @property
    def usages(self) -> list[dict[str, int]]:
        """The usage the server sent for each call, in order."""
        return [call.usage for call in self.calls]


def _llm(route: str, stream: bool, base_url: str) -> Any:
    """The LLM for ``route``, pointed at the server (timeouts bounded)."""
    if route == "native":
        return LLM(
            model=f"anthropic/{MODEL}", base_url=base_url, api_key="sk-ant-test-not-real", stream=stream, timeout=30
        )
    return LLM(
        model=f"anthropic/{MODEL}",
        is_litellm=True,
        base_url=base_url,
        api_key="sk-ant-test-not-real",
        stream=stream,
        timeout=30,
    )


def _kickoff(route: str, stream: bool) -> Run:
    """The crew for ``route`` traced by crewtrace into memory, against a fresh server."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = crewtrace.CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    name = f"anthropic-{route_id((route, stream))}"
    try:
        with AnthropicServer() as server:
            llm = _llm(route, stream, server.base_url)
            (analyst_crew if (route, stream) in TOOL_ROUTES else writer_crew)(llm, name).kickoff()
    finally:
        instrumentor.uninstrument()
    model = MODEL if route == "native" else f"anthropic/{MODEL}"
    if (route, stream) in TOOL_ROUTES:
        steps = [f"chat {model}", "execute_tool notebook_lookup", f"chat {model}"]
        tree = [f"invoke_workflow {name}", "  execute_task analyse", "    invoke_agent Analyst"]
        tree += [f"      {step}" for step in steps]
    else:
        tree = [f"invoke_workflow {name}"]
        for task in ("one", "two"):
            tree += [f"  execute_task {task}", "    invoke_agent Writer", f"      chat {model}"]
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return Run(route, stream, model, spans, list(server.calls), list(server.rejected), tree)


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[tuple[str, bool], Run]]:
    """The runs made so far in this module, by (route, streamed): each crew runs once."""
    yield {}


def _run(runs: dict[tuple[str, bool], Run], route: tuple[str, bool]) -> Run:
    """The run for ``route``, made now if no test has needed it yet."""
    if route not in runs:
        runs[route] = _kickoff(*route)
    return runs[route]


@pytest.fixture(params=ROUTES, ids=route_id)
def run(request: pytest.FixtureRequest, runs: dict[tuple[str, bool], Run]) -> Run:
    """The run for this route, made in the first test that needs it (after conftest's per-test clean-up)."""
    return _run(runs, request.param)


def _cost(usage: dict[str, int]) -> float:
    """One call's price by Anthropic's table, bucket by bucket."""
    return (
        usage["input_tokens"] * PRICE_INPUT
        + usage["cache_read_input_tokens"] * PRICE_CACHE_READ
        + usage["cache_creation_input_tokens"] * PRICE_CACHE_WRITE
        + usage["output_tokens"] * PRICE_OUTPUT
    ) / 1_000_000


def test_every_call_is_one_llm_span_in_the_crew_tree(run: Run) -> None:
    """Each Messages call the server answered is one ``chat`` span under its agent: none lost, none doubled.
    Whatever token-count requests CrewAI makes (/v1/messages/count_tokens) are no LLM call: they get no span."""
    assert run.rejected == []
    assert len(run.calls) == len(run.chats()) == 2
    assert [call.stream for call in run.calls] == [run.stream] * 2
    assert outline(records_from_sdk(run.spans)) == run.tree
    assert [span.attributes.get(attributes.GEN_AI_REQUEST_MODEL) for span in run.chats()] == [run.model] * 2
    assert [span.attributes.get(attributes.LLM_STREAM) for span in run.chats()] == [run.stream] * 2
    assert run.crew().attributes[attributes.USAGE_REQUESTS] == len(run.calls)


def test_provider_name_is_anthropic(run: Run) -> None:
    """gen_ai.provider.name is ``anthropic``, the GenAI conventions' well-known value for the Anthropic API."""
    assert [span.attributes.get(attributes.GEN_AI_PROVIDER_NAME) for span in run.chats()] == ["anthropic"] * 2


@pytest.mark.parametrize("stream", [False, True], ids=["messages", "stream"])
def test_native_spans_match_the_calls_in_order(runs: dict[tuple[str, bool], Run], stream: bool) -> None:
    """Span i (by start) carries the message id of the i-th call the server answered: the spans are matched to
    the right calls."""
    run = _run(runs, ("native", stream))
    ids = [call.message_id for call in run.calls]
    assert [span.attributes.get(attributes.GEN_AI_RESPONSE_ID) for span in run.chats()] == ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("route", TOOL_ROUTES, ids=route_id)
def test_the_tool_round_reaches_the_server(runs: dict[tuple[str, bool], Run], route: tuple[str, bool]) -> None:
    """The first answer is a tool_use; the tool runs; the second request carries its tool_result for that id."""
    run = _run(runs, route)
    results = [b for m in run.calls[1].body["messages"] if isinstance(m["content"], list) for b in m["content"]]
    results = [b for b in results if b.get("type") == "tool_result"]
    assert [b["tool_use_id"] for b in results] == ["toolu_01"]
    assert "tree of spans" in str(results[0]["content"])


@pytest.mark.parametrize("cell", CELLS)
def test_llm_span_tokens_are_what_anthropic_reported(run: Run, cell: str) -> None:
    """Each LLM span's gen_ai.usage.* count is its own response's, input counted with the cache once."""
    key, _, expected = CELLS[cell]
    assert [span.attributes.get(key) for span in run.chats()] == [expected(u) for u in run.usages]


@pytest.mark.parametrize("cell", CELLS)
def test_crew_rollup_sums_the_calls(run: Run, cell: str) -> None:
    """The crew's crewai.usage.* count is the sum over every call the server answered."""
    _, key, expected = CELLS[cell]
    assert run.crew().attributes.get(key) == sum(expected(u) for u in run.usages)


def test_crew_total_is_input_plus_output(run: Run) -> None:
    """crewai.usage.total_tokens is inclusive input plus output, summed over the calls."""
    total = sum(CELLS["input_incl_cache"][2](u) + u["output_tokens"] for u in run.usages)
    assert run.crew().attributes.get(attributes.USAGE_TOTAL_TOKENS) == total


def test_cost_is_anthropics_price_of_each_bucket(run: Run) -> None:
    """Each call costs uncached input, cache reads, cache writes and output at Anthropic's prices; the crew costs
    their sum."""
    expected = [_cost(u) for u in run.usages]
    costs = [span.attributes.get(attributes.LLM_COST_USD) for span in run.chats()]
    assert costs == [pytest.approx(cost, rel=5e-3, abs=1e-9) for cost in expected]
    crew = run.crew().attributes
    assert crew.get(attributes.USAGE_COST_USD) == pytest.approx(sum(expected), rel=5e-3, abs=1e-9)
    assert attributes.USAGE_UNPRICED_REQUESTS not in crew


@pytest.mark.parametrize("stream", [False, True], ids=["messages", "stream"])
def test_native_route_claims_no_reasoning_count(runs: dict[tuple[str, bool], Run], stream: bool) -> None:
    """Anthropic counts thinking inside output_tokens and reports no count of its own: with a thinking block in
    the final answer, no span claims a reasoning count."""
    run = _run(runs, ("native", stream))
    assert any(b["type"] == "thinking" for b in run.calls[-1].content)
    for span in [*run.chats(), run.crew()]:
        assert not [key for key in span.attributes if "reasoning" in key], span.name


@pytest.mark.parametrize("stream", [False, True], ids=["messages", "stream"])
def test_litellm_reasoning_estimate_stays_inside_output(runs: dict[tuple[str, bool], Run], stream: bool) -> None:
    """litellm counts the thinking text itself (Anthropic reports no such count): the estimate is on the calls
    that thought, is part of output (not added to it), and the crew sums it."""
    run = _run(runs, ("litellm", stream))
    seen = [span.attributes.get(REASONING) or 0 for span in run.chats()]
    for count, call in zip(seen, run.calls, strict=True):
        thought = any(b["type"] == "thinking" for b in call.content)
        assert (0 < count <= call.usage["output_tokens"]) if thought else count == 0
    assert run.crew().attributes.get(attributes.USAGE_REASONING_OUTPUT_TOKENS, 0) == sum(seen)
