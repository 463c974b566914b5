"""The span model on a real sequential crew: names, kinds, parents, attributes, tokens and timing."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from crewtrace import CrewAIInstrumentor, attributes, crewai_releases
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import records_from_sdk
from tests.helpers import outline

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

EXPECTED_TREE = [
    "invoke_workflow tracing-note",
    "  execute_task research",
    "    invoke_agent Researcher",
    "      chat crewtrace-offline",
    "      execute_tool notebook_lookup",
    "      chat crewtrace-offline",
    "  execute_task outline",
    "    invoke_agent Writer",
    "      chat crewtrace-offline",
    "  execute_task write",
    "    invoke_agent Writer",
    "      chat crewtrace-offline",
]


def test_demo_crew_tree_is_complete_and_ended_when_kickoff_returns(memory):
    _, exporter = memory
    llm = OfflineLLM()
    build_demo_crew(llm).kickoff()
    # No flush: every span must already be ended when kickoff() returns.
    spans = exporter.get_finished_spans()
    assert CrewAIInstrumentor().tracker.open_span_count() == 0
    records = records_from_sdk(spans)
    assert outline(records) == EXPECTED_TREE
    assert len({r.trace_id for r in records}) == 1


def test_kinds_operations_and_attributes(memory):
    _, exporter = memory
    crew = build_demo_crew()
    crew.kickoff(inputs={"topic": "tracing"})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["invoke_workflow tracing-note"]
    assert root.kind is SpanKind.INTERNAL
    assert root.attributes[attributes.GEN_AI_OPERATION_NAME] == "invoke_workflow"
    assert root.attributes[attributes.GEN_AI_WORKFLOW_NAME] == "tracing-note"
    assert root.attributes[attributes.CREW_ID] == str(crew.id)
    assert root.attributes[attributes.CREW_PROCESS] == "sequential"
    assert root.attributes[attributes.CREW_TASK_COUNT] == 3
    assert json.loads(root.attributes[attributes.CREW_INPUTS]) == {"topic": "tracing"}
    assert root.attributes[attributes.CREW_FINAL_OUTPUT].startswith("Offline answer")
    assert root.status.status_code is StatusCode.UNSET

    task = spans["execute_task research"]
    assert task.attributes[attributes.GEN_AI_OPERATION_NAME] == "execute_task"
    assert task.attributes[attributes.TASK_ID] == str(crew.tasks[0].id)
    assert task.attributes[attributes.TASK_INDEX] == 1
    assert task.attributes[attributes.TASK_DESCRIPTION] == crew.tasks[0].description
    assert task.attributes[attributes.TASK_EXPECTED_OUTPUT] == crew.tasks[0].expected_output
    assert task.attributes[attributes.TASK_OUTPUT].startswith("Offline answer")

    agent = spans["invoke_agent Researcher"]
    assert agent.attributes[attributes.GEN_AI_AGENT_NAME] == "Researcher"
    assert agent.attributes[attributes.GEN_AI_AGENT_ID] == str(crew.agents[0].id)
    assert agent.attributes[attributes.AGENT_GOAL] == crew.agents[0].goal
    assert list(agent.attributes[attributes.AGENT_TOOLS]) == ["notebook_lookup"]

    tool = spans["execute_tool notebook_lookup"]
    assert tool.kind is SpanKind.INTERNAL
    assert tool.attributes[attributes.GEN_AI_TOOL_NAME] == "notebook_lookup"
    assert tool.attributes[attributes.GEN_AI_TOOL_TYPE] == "function"
    assert "topic" in tool.attributes[attributes.GEN_AI_TOOL_CALL_ARGUMENTS]
    assert "OTLP" in tool.attributes[attributes.GEN_AI_TOOL_CALL_RESULT]


def test_llm_spans_carry_exactly_the_reported_tokens(memory):
    _, exporter = memory
    llm = OfflineLLM()
    build_demo_crew(llm).kickoff()
    chats = sorted((s for s in exporter.get_finished_spans() if s.name.startswith("chat ")), key=lambda s: s.start_time)
    assert len(chats) == len(llm.usages) == 4
    for span, usage in zip(chats, llm.usages, strict=True):
        assert span.kind is SpanKind.CLIENT
        assert span.attributes[attributes.GEN_AI_REQUEST_MODEL] == "crewtrace-offline"
        assert span.attributes[attributes.GEN_AI_PROVIDER_NAME] == "crewtrace"
        assert span.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] == usage["prompt_tokens"]
        assert span.attributes[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["completion_tokens"]
        if "finish_reason" in crewai_releases.completed_event_arguments():  # reported since crewai 1.14.7
            assert list(span.attributes[attributes.GEN_AI_RESPONSE_FINISH_REASONS]) == ["stop"]
        system = json.loads(span.attributes[attributes.GEN_AI_SYSTEM_INSTRUCTIONS])
        assert system[0]["type"] == "text" and "You are" in system[0]["content"]
        inputs = json.loads(span.attributes[attributes.GEN_AI_INPUT_MESSAGES])
        assert inputs[0]["role"] == "user"
        output = json.loads(span.attributes[attributes.GEN_AI_OUTPUT_MESSAGES])
        assert output[0]["role"] == "assistant" and output[0]["parts"][0]["content"]


def test_children_lie_within_their_parents_in_time(memory):
    _, exporter = memory
    build_demo_crew().kickoff()
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    for span in spans:
        assert span.start_time <= span.end_time
        if span.parent is not None:
            parent = by_id[span.parent.span_id]
            assert parent.start_time <= span.start_time and span.end_time <= parent.end_time, span.name


def test_crew_span_is_child_of_the_callers_current_span(memory):
    provider, exporter = memory
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("request") as outer:
        build_demo_crew().kickoff()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["invoke_workflow tracing-note"]
    assert root.parent is not None and root.parent.span_id == outer.get_span_context().span_id
    assert root.context.trace_id == outer.get_span_context().trace_id


def test_two_kickoffs_are_two_traces(memory):
    _, exporter = memory
    llm = OfflineLLM()
    crew = build_demo_crew(llm)
    crew.kickoff()
    crew.kickoff()
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 2
    assert roots[0].context.trace_id != roots[1].context.trace_id
    # Each run is a whole tree of its own. (Before crewai 1.14 the second run's agents remember the first
    # run's tool use, so the LLM and tool calls under them differ; crew, tasks and agents do not.)
    units = [line for line in EXPECTED_TREE if not line.strip().startswith(("chat ", "execute_tool "))]
    for root in roots:
        run = records_from_sdk([s for s in spans if s.context.trace_id == root.context.trace_id])
        assert [line for line in outline(run) if not line.strip().startswith(("chat ", "execute_tool "))] == units
    assert len([s for s in spans if s.name.startswith("chat ")]) == len(llm.usages)


def test_uninstrument_removes_every_hook_and_stops_tracing(memory):
    from crewai.crew import Crew
    from crewai.events import crewai_event_bus
    from crewai.events.event_bus import CrewAIEventsBus

    _, exporter = memory
    handlers_before = sum(len(h) for h in crewai_event_bus._sync_handlers.values())
    assert hasattr(CrewAIEventsBus.emit, "__wrapped__") and hasattr(Crew.kickoff, "__wrapped__")
    CrewAIInstrumentor().uninstrument()
    assert not hasattr(CrewAIEventsBus.emit, "__wrapped__") and not hasattr(Crew.kickoff, "__wrapped__")
    assert sum(len(h) for h in crewai_event_bus._sync_handlers.values()) == handlers_before
    build_demo_crew().kickoff()
    assert exporter.get_finished_spans() == ()
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_agent_thoughts_are_events_on_the_llm_spans_that_produced_them(memory):
    _, exporter = memory
    build_demo_crew().kickoff()
    spans = exporter.get_finished_spans()
    agent = next(s for s in spans if s.name == "invoke_agent Researcher")
    chats = sorted(
        (s for s in spans if s.name.startswith("chat ") and s.parent.span_id == agent.context.span_id),
        key=lambda s: s.start_time,
    )
    thoughts = [[e for e in chat.events if e.name == attributes.EVENT_AGENT_THOUGHT] for chat in chats]
    assert [[e.attributes[attributes.AGENT_THOUGHT_TEXT] for e in t] for t in thoughts] == [
        ["I should use notebook_lookup first"],
        ["I now know the final answer"],
    ]
    for chat, (event,) in zip(chats, thoughts, strict=True):
        assert event.timestamp == chat.end_time


def test_long_conversations_stay_valid_json_within_the_limit_keeping_the_latest_messages():
    from crewtrace.tracing.builders.llm import _split, llm_start
    from crewtrace.tracing.content import ContentPolicy

    class Event:
        type = "llm_call_started"
        model = "m"
        messages = [{"role": "system", "content": "Be brief. sk-proj-" + "a" * 30}] + [
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " + "x" * 3000} for i in range(40)
        ]

    attrs = llm_start(object(), Event(), ContentPolicy(max_length=10_000)).attributes
    inputs = json.loads(attrs[attributes.GEN_AI_INPUT_MESSAGES])
    assert len(attrs[attributes.GEN_AI_INPUT_MESSAGES]) <= 10_000 + 200
    assert inputs[-1]["parts"][0]["content"].startswith("message 39 ")  # the latest message is kept
    assert "earlier messages truncated" in inputs[0]["parts"][0]["content"]
    system = json.loads(attrs[attributes.GEN_AI_SYSTEM_INSTRUCTIONS])
    assert system == [{"type": "text", "content": "Be brief. [REDACTED]"}]
    huge = type("Huge", (Event,), {"messages": "x" * 50_000})()
    one = json.loads(
        llm_start(object(), huge, ContentPolicy(max_length=1000)).attributes[attributes.GEN_AI_INPUT_MESSAGES]
    )
    content = one[0]["parts"][0]["content"]
    assert content.startswith("x" * 900) and content.endswith(" chars]") and len(content) < 1100
    assert _split(None) == ([], [])


def test_only_the_messages_kept_are_converted_and_none_with_capture_off(monkeypatch):
    from crewtrace.tracing.builders import llm as spans
    from crewtrace.tracing.content import ContentPolicy

    converted = []
    real = spans._message
    monkeypatch.setattr(spans, "_message", lambda raw: converted.append(raw) or real(raw))

    class Event:
        type = "llm_call_started"
        model = "m"

        def __init__(self) -> None:
            self.messages = [{"role": "user", "content": f"message {i} " + "x" * 1000} for i in range(500)]

    attrs = spans.llm_start(object(), Event(), ContentPolicy(max_length=5_000)).attributes
    inputs = json.loads(attrs[attributes.GEN_AI_INPUT_MESSAGES])
    assert inputs[0]["parts"][0]["content"] == f"…[{500 - (len(inputs) - 1)} earlier messages truncated]"
    assert inputs[-1]["parts"][0]["content"].startswith("message 499 ")
    assert len(converted) <= len(inputs) + 1  # the latest few, not the whole conversation
    converted.clear()
    quiet = spans.llm_start(object(), Event(), ContentPolicy(capture=False)).attributes
    assert attributes.GEN_AI_INPUT_MESSAGES not in quiet and converted == []


def test_leading_system_messages_are_instructions_and_a_later_one_stays_a_message():
    from crewtrace.tracing.builders.llm import llm_start
    from crewtrace.tracing.content import ContentPolicy

    class Event:
        type = "llm_call_started"
        model = "m"

        def __init__(self) -> None:
            self.messages = [
                {"role": "system", "content": "You are a writer."},
                {"role": "user", "content": "Write."},
                {"role": "system", "content": "Be brief."},
            ]

    attrs = llm_start(object(), Event(), ContentPolicy()).attributes
    assert json.loads(attrs[attributes.GEN_AI_SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "You are a writer."}
    ]
    assert [m["role"] for m in json.loads(attrs[attributes.GEN_AI_INPUT_MESSAGES])] == ["user", "system"]
