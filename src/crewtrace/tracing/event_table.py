"""Which CrewAI event opens, closes or marks which span, and which builder makes it.

Every span is a pair of CrewAI scope events (``*_started`` and its ending event, which names the start in
``started_event_id``). Marks are single events recorded as span events on the span of their scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

from crewtrace import crewai_releases
from crewtrace.tracing.builders import agent, llm, steps, task, tool, workflow
from crewtrace.tracing.builders.common import (
    Attributes,
    SpanError,
    SpanStart,
    label_attributes,
    type_name,
    with_labels_masked,
)
from crewtrace.tracing.content import ContentPolicy

# What kind of span an event opens or closes (a node's unit).
Unit = Literal[
    "crew", "task", "agent", "llm", "tool", "flow", "method",
    "guardrail", "reasoning", "memory", "knowledge", "mcp_connect", "mcp_tool",
]  # fmt: skip
CREW: Final = "crew"
TASK: Final = "task"
AGENT: Final = "agent"
LLM: Final = "llm"
TOOL: Final = "tool"
FLOW: Final = "flow"
METHOD: Final = "method"
GUARDRAIL: Final = "guardrail"
REASONING: Final = "reasoning"
MEMORY: Final = "memory"
KNOWLEDGE: Final = "knowledge"
MCP_CONNECT: Final = "mcp_connect"
MCP_TOOL: Final = "mcp_tool"

# Memory and knowledge lookups hold only lookups and LLM calls; CrewAI sometimes names one as the parent of
# what follows when the lookup's end event was never emitted (a failed knowledge query rewrite).
LOOKUP_UNITS = frozenset({MEMORY, KNOWLEDGE})
LOOKUP_CHILDREN = frozenset({MEMORY, KNOWLEDGE, LLM})

StartBuilder = Callable[[Any, Any, ContentPolicy], SpanStart]
EndBuilder = Callable[[Any, ContentPolicy], Attributes]
MarkBuilder = Callable[[Any, ContentPolicy], tuple[str, Attributes]]

# event.type of the event that opens a span -> (unit, builder). Tasks are built with their index (start_of).
_STARTS: dict[str, tuple[Unit, StartBuilder]] = {
    "crew_kickoff_started": (CREW, workflow.crew_start),
    "task_started": (TASK, lambda source, event, policy: task.task_start(source, event, None, policy)),
    "agent_execution_started": (AGENT, agent.agent_start),
    "lite_agent_execution_started": (AGENT, agent.lite_agent_start),
    "llm_call_started": (LLM, llm.llm_start),
    "tool_usage_started": (TOOL, tool.tool_start),
    "flow_started": (FLOW, workflow.flow_start),
    "method_execution_started": (METHOD, workflow.method_start),
    "llm_guardrail_started": (GUARDRAIL, steps.guardrail_start),
    "agent_reasoning_started": (REASONING, steps.reasoning_start),
    "memory_query_started": (MEMORY, steps.memory_start),
    "memory_save_started": (MEMORY, steps.memory_start),
    "memory_retrieval_started": (MEMORY, steps.memory_start),
    "knowledge_query_started": (KNOWLEDGE, steps.knowledge_start),
    "knowledge_search_query_started": (KNOWLEDGE, steps.knowledge_start),
    "mcp_connection_started": (MCP_CONNECT, steps.mcp_connect_start),
    "mcp_tool_execution_started": (MCP_TOOL, steps.mcp_tool_start),
}
START_EVENTS: dict[str, Unit] = {etype: unit for etype, (unit, _) in _STARTS.items()}

# Work CrewAI hands to a background pool, which outlives the span CrewAI names as its parent: memory saves
# run after the agent's work, while the next task runs; only the crew (or flow) waits for them. Their spans
# go under the nearest crew or flow, linked to the span that caused them (tracker.py).
BACKGROUND_STARTS = frozenset({"memory_save_started"})
OUTLASTING_UNITS = frozenset({CREW, FLOW})

# event.type of the event that closes a span -> unit; the failure events among them.
END_EVENTS: dict[str, Unit] = {
    "crew_kickoff_completed": CREW,
    "crew_kickoff_failed": CREW,
    "task_completed": TASK,
    "task_failed": TASK,
    "agent_execution_completed": AGENT,
    "agent_execution_error": AGENT,
    "lite_agent_execution_completed": AGENT,
    "lite_agent_execution_error": AGENT,
    "llm_call_completed": LLM,
    "llm_call_failed": LLM,
    "tool_usage_finished": TOOL,
    "tool_usage_error": TOOL,
    "flow_finished": FLOW,
    "flow_failed": FLOW,
    "method_execution_finished": METHOD,
    "method_execution_failed": METHOD,
    "llm_guardrail_completed": GUARDRAIL,
    "llm_guardrail_failed": GUARDRAIL,
    "agent_reasoning_completed": REASONING,
    "agent_reasoning_failed": REASONING,
    "memory_query_completed": MEMORY,
    "memory_query_failed": MEMORY,
    "memory_save_completed": MEMORY,
    "memory_save_failed": MEMORY,
    "memory_retrieval_completed": MEMORY,
    "memory_retrieval_failed": MEMORY,
    "knowledge_query_completed": KNOWLEDGE,
    "knowledge_query_failed": KNOWLEDGE,
    "knowledge_search_query_completed": KNOWLEDGE,
    "knowledge_search_query_failed": KNOWLEDGE,
    "mcp_connection_completed": MCP_CONNECT,
    "mcp_connection_failed": MCP_CONNECT,
    "mcp_tool_execution_completed": MCP_TOOL,
    "mcp_tool_execution_failed": MCP_TOOL,
}
FAILURE_EVENTS = frozenset(etype for etype in END_EVENTS if etype.endswith(("_failed", "_error")))

_ENDS: dict[Unit, EndBuilder] = {
    CREW: workflow.crew_end,
    TASK: task.task_end,
    AGENT: agent.agent_end,
    LLM: llm.llm_end,
    TOOL: tool.tool_end,
    FLOW: workflow.flow_end,
    METHOD: workflow.method_end,
    GUARDRAIL: steps.guardrail_end,
    REASONING: steps.reasoning_end,
    MEMORY: steps.memory_end,
    KNOWLEDGE: steps.knowledge_end,
    MCP_CONNECT: lambda event, policy: {},
    MCP_TOOL: steps.mcp_end,
}

# Single events recorded as span events on the span of their scope.
MARK_EVENTS: dict[str, MarkBuilder] = {
    "tool_failure_detected": steps.tool_trouble,
    "tool_selection_error": steps.tool_trouble,
    "tool_validate_input_error": steps.tool_trouble,
}
# A streamed chunk of an LLM answer: the first one marks the LLM span, the others are only counted.
CHUNK_EVENT = "llm_stream_chunk"

FLOW_EVENTS = frozenset(
    {
        "flow_started",
        "flow_finished",
        "flow_failed",
        "method_execution_started",
        "method_execution_finished",
        "method_execution_failed",
    }
)


# What the tracker does with each event type: one lookup per event.
# What an event does to the tree.
Route = Literal["start", "end", "mark"]
START: Final = "start"
END: Final = "end"
MARK: Final = "mark"
ROUTES: dict[str, Route] = {
    **dict.fromkeys(START_EVENTS, START),
    **dict.fromkeys(END_EVENTS, END),
    **dict.fromkeys(MARK_EVENTS, MARK),
    CHUNK_EVENT: MARK,
}


def is_internal(source: Any, event: Any) -> bool:
    """Events of CrewAI's own flows (the agent executor runs as a Flow): scopes, not spans of their own."""
    if getattr(event, "type", None) not in FLOW_EVENTS:
        return False
    return type(source).__module__.startswith("crewai.")


def start_of(unit: Unit, source: Any, event: Any, policy: ContentPolicy, task_index: int | None) -> SpanStart:
    """The span a start event opens (its names and labels masked like captured text)."""
    if unit == TASK:
        return with_labels_masked(task.task_start(source, event, task_index, policy), policy)
    return with_labels_masked(_STARTS[event.type][1](source, event, policy), policy)


def end_attributes(unit: Unit, event: Any, policy: ContentPolicy) -> Attributes:
    """The attributes an end event adds to its span."""
    return _ENDS[unit](event, policy)


def mark_of(event: Any, policy: ContentPolicy) -> tuple[str, Attributes]:
    """The span event (name, attributes) a mark event records."""
    name, attrs = MARK_EVENTS[event.type](event, policy)
    return name, label_attributes(attrs, policy)


def error_of(event: Any, policy: ContentPolicy) -> SpanError | None:
    """The failure an ending event reports, or None for a success."""
    etype = getattr(event, "type", None)
    failure = getattr(event, "failure", None) if etype == "tool_usage_finished" else None
    if failure is not None:  # the tool returned a ToolFailure: it ran, but says the work was not done
        reason = getattr(failure, "reason", None)
        message = policy.text(getattr(failure, "message", None))
        return SpanError(str(getattr(reason, "value", reason) or "tool_failure"), message, exception=False)
    if etype not in FAILURE_EVENTS:
        return None
    error = getattr(event, "error", None)
    if isinstance(error, BaseException):
        return SpanError(type_name(type(error)), policy.text(str(error)))
    error_type = getattr(event, "error_type", None) or crewai_releases.handled_error_class(event)
    if isinstance(error_type, str) and error_type:  # MCP events name the exception class as a string
        return SpanError(error_type, policy.text(error))
    return SpanError(type_name(error_type), policy.text(error))
