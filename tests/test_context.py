"""Context propagation and isolation: spans made inside tools and LLM calls nest in the right trace."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

from crewtrace import attributes
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import records_from_sdk
from tests.helpers import outline
from tests.local_http import LocalHTTPServer, QuietHandler
from tests.test_span_tree import EXPECTED_TREE

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


@pytest.fixture
def http_server():
    """A local HTTP server the tool calls."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.reply(200, b"pong")

    with LocalHTTPServer(Handler) as server:
        yield server.base_url


@pytest.fixture
def httpx_instrumented(memory):
    provider, _ = memory
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    yield
    HTTPXClientInstrumentor().uninstrument()


def test_spans_made_inside_a_tool_are_its_children(memory, http_server, httpx_instrumented):
    provider, exporter = memory
    tracer = provider.get_tracer("user-code")

    class FetchTool(BaseTool):
        name: str = "fetch"
        description: str = "Fetches a page."

        def _run(self, url: str) -> str:
            with tracer.start_as_current_span("parse-page"):
                inner = httpx.get(f"{http_server}/inner").text
            return inner + httpx.get(f"{http_server}/direct").text

    agent = Agent(role="Fetcher", goal="g", backstory="b", llm=OfflineLLM(), tools=[FetchTool()])
    task = Task(name="fetch", description="Fetch the page.", expected_output="x", agent=agent)
    Crew(name="fetching", agents=[agent], tasks=[task]).kickoff()

    spans = exporter.get_finished_spans()
    by_name = {s.name: s for s in spans}
    tool = by_name["execute_tool fetch"]
    parse = by_name["parse-page"]
    http = sorted((s for s in spans if s.name.startswith("GET")), key=lambda s: s.start_time)
    assert len(http) == 2
    assert parse.parent.span_id == tool.context.span_id
    assert http[0].parent.span_id == parse.context.span_id
    assert http[1].parent.span_id == tool.context.span_id
    assert len({s.context.trace_id for s in spans}) == 1  # no orphan traces
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


class ObservingLLM(OfflineLLM):
    """Records which span is current while it produces each answer."""

    def answer(self, messages):
        self.__dict__.setdefault("seen", []).append(trace.get_current_span().get_span_context().span_id)
        return super().answer(messages)


def test_the_llm_span_is_current_during_the_call(memory):
    _, exporter = memory
    llm = ObservingLLM()
    build_demo_crew(llm).kickoff()
    chats = sorted((s for s in exporter.get_finished_spans() if s.name.startswith("chat ")), key=lambda s: s.start_time)
    assert llm.__dict__["seen"] == [s.context.span_id for s in chats]


def _renamed(i: int):
    crew = build_demo_crew()
    crew.name = f"crew-{i}"
    return crew


def _assert_isolated(exporter, crews) -> None:
    records = records_from_sdk(exporter.get_finished_spans())
    spans = exporter.get_finished_spans()
    by_trace: dict[int, list] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    assert len(by_trace) == len(crews)
    crew_by_id = {str(c.id): c for c in crews}
    for members in by_trace.values():
        root = next(s for s in members if s.parent is None)
        crew = crew_by_id[root.attributes[attributes.CREW_ID]]
        mine = [r for r in records if r.trace_id == f"{root.context.trace_id:032x}"]
        expected = [line.replace("tracing-note", crew.name) for line in EXPECTED_TREE]
        assert outline(mine) == expected
        task_ids = {str(t.id) for t in crew.tasks}
        agent_ids = {str(a.id) for a in crew.agents}
        for span in members:
            if attributes.TASK_ID in span.attributes:
                assert span.attributes[attributes.TASK_ID] in task_ids
            if attributes.GEN_AI_AGENT_ID in span.attributes:
                assert span.attributes[attributes.GEN_AI_AGENT_ID] in agent_ids


def test_eight_crews_in_threads_give_eight_separate_traces(memory):
    _, exporter = memory
    crews = [_renamed(i) for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda c: c.kickoff(), crews, timeout=120))
    _assert_isolated(exporter, crews)


def test_eight_crews_in_one_event_loop_give_eight_separate_traces(memory):
    _, exporter = memory
    crews = [_renamed(i) for i in range(8)]

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(c.akickoff() for c in crews)), timeout=120)

    asyncio.run(main())
    _assert_isolated(exporter, crews)
