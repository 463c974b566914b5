"""The span builders as the pure functions they are: real CrewAI objects and events in, one span's name, kind
and attributes out, for each content policy (the fast tier: no crew runs)."""

from __future__ import annotations

import pytest
from crewai import Agent, Task
from crewai.events.types.task_events import TaskCompletedEvent, TaskStartedEvent
from crewai.events.types.tool_usage_events import ToolUsageFinishedEvent, ToolUsageStartedEvent
from crewai.tasks.task_output import TaskOutput
from opentelemetry.trace import SpanKind

from crewtrace import attributes
from crewtrace.masking import REDACTED
from crewtrace.offline_llm import OfflineLLM
from crewtrace.tracing import event_table
from crewtrace.tracing.builders import agent as agent_builders
from crewtrace.tracing.builders import task as task_builders
from crewtrace.tracing.builders import tool as tool_builders
from crewtrace.tracing.builders.common import put, type_name
from crewtrace.tracing.content import ContentPolicy

KEY = "sk-proj-" + "Q" * 30
ON, OFF = ContentPolicy(), ContentPolicy(capture=False)


@pytest.fixture
def task() -> Task:
    worker = Agent(role="Worker", goal="Find facts", backstory="Careful.", llm=OfflineLLM())
    return Task(name="research", description=f"Use {KEY} to research.", expected_output="facts", agent=worker)


def test_the_task_span_is_named_by_the_task_and_carries_its_texts_when_captured(task):
    event = TaskStartedEvent(context="earlier output", task=task)
    start = task_builders.task_start(task, event, 2, ON)
    assert (start.name, start.kind) == ("execute_task research", SpanKind.INTERNAL)
    attrs = start.attributes
    assert attrs[attributes.TASK_NAME] == "research" and attrs[attributes.TASK_INDEX] == 2
    assert attrs[attributes.TASK_AGENT_ROLE] == "Worker" and attrs[attributes.TASK_CONTEXT] == "earlier output"
    assert attrs[attributes.TASK_DESCRIPTION] == f"Use {REDACTED} to research."  # masked as captured
    hidden = task_builders.task_start(task, event, 2, OFF).attributes
    assert attributes.TASK_DESCRIPTION not in hidden and attributes.TASK_CONTEXT not in hidden
    assert hidden[attributes.TASK_NAME] == "research"  # names stay with capture off


def test_a_task_without_a_name_is_called_by_its_number(task):
    task.name = None
    assert (
        task_builders.task_start(task, TaskStartedEvent(context=None, task=task), 3, ON).name == "execute_task Task 3"
    )


def test_the_task_end_carries_the_output_only_when_captured(task):
    output = TaskOutput(description="d", raw="the answer", agent="Worker")
    event = TaskCompletedEvent(output=output, task=task)
    assert task_builders.task_end(event, ON) == {attributes.TASK_OUTPUT: "the answer"}
    assert task_builders.task_end(event, OFF) == {}


def test_the_tool_span_names_the_tool_and_masks_a_key_in_its_name():
    event = ToolUsageStartedEvent(
        tool_name=f"lookup {KEY}",
        tool_args={"topic": "tracing"},
        agent_key="k",
        agent_role="Worker",
        tool_class="Lookup",
    )
    start = event_table.start_of(event_table.TOOL, None, event, ON, None)
    assert start.name == f"execute_tool lookup {REDACTED}"
    assert start.attributes[attributes.GEN_AI_TOOL_NAME] == f"lookup {REDACTED}"
    assert start.attributes[attributes.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"topic": "tracing"}'
    assert start.attributes[attributes.TOOL_CLASS] == "Lookup"
    raw = tool_builders.tool_start(None, event, ON)  # the builder itself names; the table masks
    assert KEY in raw.name


def test_the_tool_end_says_whether_the_cache_served_it():
    event = ToolUsageFinishedEvent(
        tool_name="lookup", tool_args={}, agent_key="k", agent_role="Worker", tool_class="Lookup",
        started_at="2026-01-01T00:00:00", finished_at="2026-01-01T00:00:01", from_cache=True, output="notes",
    )  # fmt: skip
    attrs = tool_builders.tool_end(event, ON)
    assert attrs[attributes.TOOL_FROM_CACHE] is True and attrs[attributes.GEN_AI_TOOL_CALL_RESULT] == "notes"
    assert attributes.GEN_AI_TOOL_CALL_RESULT not in tool_builders.tool_end(event, OFF)


def test_the_agent_span_is_named_by_the_role_with_its_model_and_tools(task):
    agent = task.agent
    start = agent_builders._agent_span("Worker", "id-1", agent.llm, ["lookup"], "Find facts", "Careful.", None, ON)
    assert start.name == "invoke_agent Worker"
    assert start.attributes[attributes.GEN_AI_REQUEST_MODEL] == "crewtrace-offline"
    assert start.attributes[attributes.AGENT_TOOLS] == ["lookup"]
    assert start.attributes[attributes.AGENT_GOAL] == "Find facts"


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("text", "text"),
        (3, 3),
        (2.5, 2.5),
        (True, True),
        (["a", "b"], ["a", "b"]),
        ({"k": 1}, '{"k": 1}'),
        (None, None),
    ],
)
def test_put_keeps_what_opentelemetry_accepts_and_writes_the_rest_as_text(value, kept):
    attrs: dict = {}
    put(attrs, "key", value)
    assert attrs.get("key") == kept


def test_error_types_are_qualified_unless_builtin():
    assert type_name(ValueError) == "ValueError"
    assert type_name(TaskOutput) == "crewai.tasks.task_output.TaskOutput"
    assert type_name("not a type") == attributes.ERROR_TYPE_OTHER
