"""crewtrace.context(): the session, user, tags and metadata every span of a run carries, wherever it runs."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from crewai import Agent, Crew, Task

import crewtrace
from crewtrace import SettingError, attributes
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from crewtrace.tracing.content import ContentPolicy
from tests.helpers import ReportFlow, one_task_crew

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

LABELS = {
    attributes.SESSION_ID: "chat-42",
    attributes.GEN_AI_CONVERSATION_ID: "chat-42",
    attributes.USER_ID: "user-7",
    attributes.RUN_TAGS: ("beta", "eu"),
    attributes.RUN_METADATA_PREFIX + "customer": "acme",
    attributes.RUN_METADATA_PREFIX + "attempt": 2,
}


def _labels(span) -> dict:
    names = {*LABELS, attributes.RUN_METADATA_PREFIX + "note"}
    return {k: v for k, v in span.attributes.items() if k in names}


def _by_trace(exporter) -> dict[int, list]:
    traces: dict[int, list] = {}
    for span in exporter.get_finished_spans():
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


def _labelled() -> crewtrace.context:
    return crewtrace.context(
        session_id="chat-42", user_id="user-7", tags=["beta", "eu"], metadata={"customer": "acme", "attempt": 2}
    )


def test_every_span_of_a_run_inside_carries_the_labels_and_a_run_outside_none(memory):
    _, exporter = memory
    with _labelled():
        build_demo_crew().kickoff()  # async task on CrewAI's own thread, a tool, four LLM calls
    one_task_crew(OfflineLLM()).kickoff()
    inside, outside = sorted(_by_trace(exporter).values(), key=lambda spans: -len(spans))
    assert len(inside) == 12
    assert all(_labels(s) == LABELS for s in inside), [s.name for s in inside if _labels(s) != LABELS]
    assert all(_labels(s) == {} for s in outside)


def test_as_a_decorator_of_sync_and_async_functions_and_concurrent_runs_do_not_mix(memory):
    _, exporter = memory

    @crewtrace.context(session_id="sync-session")
    def run_sync() -> None:
        one_task_crew(OfflineLLM(), name="sync").kickoff()

    async def run_one(session: str) -> None:
        @crewtrace.context(session_id=session, tags=[session])
        async def go() -> None:
            await one_task_crew(OfflineLLM(), name=session).akickoff()

        await go()

    async def run_many() -> None:
        await asyncio.gather(*(run_one(f"async-{i}") for i in range(4)))

    run_sync()
    asyncio.run(run_many())
    traces = _by_trace(exporter).values()
    assert len(traces) == 5
    for spans in traces:
        crew = next(s for s in spans if s.parent is None)
        session = "sync-session" if crew.name == "invoke_workflow sync" else crew.name.split()[-1]
        assert {s.attributes.get(attributes.SESSION_ID) for s in spans} == {session}
        if session != "sync-session":
            assert {s.attributes.get(attributes.RUN_TAGS) for s in spans} == {(session,)}


def test_threads_started_with_a_copied_context_and_flows_with_crews_inside(memory):
    _, exporter = memory
    with crewtrace.context(session_id="threaded"):
        workers = [
            threading.Thread(target=contextvars.copy_context().run, args=(one_task_crew(OfflineLLM()).kickoff,))
            for _ in range(3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        ReportFlow().kickoff()
    traces = list(_by_trace(exporter).values())
    assert len(traces) == 4
    flow = next(spans for spans in traces if any(s.name == "invoke_workflow ReportFlow" for s in spans))
    assert any(s.name == "invoke_workflow writer-crew" for s in flow)
    assert all(s.attributes.get(attributes.SESSION_ID) == "threaded" for spans in traces for s in spans)


def test_a_crew_in_a_tool_keeps_the_run_labels_and_an_inner_context_adds_to_them(memory):
    _, exporter = memory
    from crewai.tools import tool

    @tool("consult")
    def consult(question: str) -> str:
        """Ask the inner crew."""
        with crewtrace.context(tags=["inner"], metadata={"note": "nested"}):
            return one_task_crew(OfflineLLM(), name="inner").kickoff().raw

    agent = Agent(role="Asker", goal="Ask", backstory="b", llm=OfflineLLM(), tools=[consult])
    task = Task(name="ask", description="Ask the inner crew.", expected_output="x", agent=agent)
    with crewtrace.context(session_id="outer", tags=["outer"]):
        Crew(name="outer", agents=[agent], tasks=[task]).kickoff()
    (spans,) = _by_trace(exporter).values()
    by_name = {s.name: s for s in spans}
    assert by_name["invoke_workflow outer"].attributes[attributes.RUN_TAGS] == ("outer",)
    inner = by_name["invoke_workflow inner"]
    assert inner.attributes[attributes.SESSION_ID] == "outer"  # the outer context's, inherited
    assert inner.attributes[attributes.RUN_TAGS] == ("outer", "inner")
    assert inner.attributes[attributes.RUN_METADATA_PREFIX + "note"] == "nested"
    assert all(s.attributes.get(attributes.SESSION_ID) == "outer" for s in spans)


def test_with_capture_off_ids_and_tags_stay_and_metadata_goes_and_captured_metadata_is_masked(memory_provider):
    provider, exporter = memory_provider
    crewtrace.CrewAIInstrumentor().instrument(tracer_provider=provider, content_policy=ContentPolicy(capture=False))
    with _labelled():
        one_task_crew(OfflineLLM()).kickoff()
    crewtrace.CrewAIInstrumentor().uninstrument()
    spans = exporter.get_finished_spans()
    expected = {k: v for k, v in LABELS.items() if not k.startswith(attributes.RUN_METADATA_PREFIX)}
    assert spans and all(_labels(s) == expected for s in spans)

    exporter.clear()
    crewtrace.CrewAIInstrumentor().instrument(tracer_provider=provider)
    secret = "sk-" + "a" * 40
    with crewtrace.context(metadata={"note": f"key {secret}"}):
        one_task_crew(OfflineLLM()).kickoff()
    notes = {s.attributes[attributes.RUN_METADATA_PREFIX + "note"] for s in exporter.get_finished_spans()}
    assert notes == {"key [REDACTED]"}


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"session_id": 42}, "session_id=42"),
        ({"user_id": ""}, "user_id=''"),
        ({"tags": "beta"}, "tags='beta'"),
        ({"tags": ["ok", 3]}, "tags=['ok', 3]"),
        ({"metadata": ["a"]}, "metadata=['a']"),
        ({"metadata": {"k": [1]}}, "metadata={...}"),
    ],
)
def test_bad_labels_are_one_line_errors_naming_the_argument(kwargs, named):
    with pytest.raises(SettingError) as raised:
        crewtrace.context(**kwargs)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"crewtrace: {named} is not accepted;")
