"""The span model of a run's other steps: guardrails, agent reasoning, memory, knowledge and MCP.

Also the span events that mark a moment inside a span (a tool's final failure, a tool the model could not
select or call, the first streamed chunk of an LLM answer). Pure functions of the CrewAI event, like
the other builders; docs/span-model.md documents every name written here.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from crewtrace import attributes, crewai_releases
from crewtrace.tracing.builders.common import Attributes, SpanStart, put, put_text
from crewtrace.tracing.content import ContentPolicy


def _value(value: Any) -> Any:
    """An enum's value, anything else unchanged."""
    return getattr(value, "value", value)


def guardrail_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """llm_guardrail_started: ``guardrail {function name}``, or ``guardrail llm`` for a described guardrail.

    Each check of a task's output gets its own span; a rejected output is retried by running the agent again.
    """
    kind, name = crewai_releases.guardrail_identity(source, event)
    label = name if kind == "function" and name else kind
    attrs: Attributes = {attributes.GUARDRAIL_TYPE: kind}
    if kind == "function":
        put(attrs, attributes.GUARDRAIL_NAME, name)
    else:  # an LLM guardrail's "name" is its whole description: free text
        put_text(attrs, attributes.GUARDRAIL_DESCRIPTION, name, policy)
    put(attrs, attributes.GUARDRAIL_RETRY_COUNT, getattr(event, "retry_count", None))
    return SpanStart(f"{attributes.SPAN_GUARDRAIL} {label}", SpanKind.INTERNAL, attrs)


def guardrail_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put(attrs, attributes.GUARDRAIL_PASSED, getattr(event, "success", None))
    put_text(attrs, attributes.GUARDRAIL_FEEDBACK, getattr(event, "error", None), policy)
    return attrs


def reasoning_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """agent_reasoning_started (``Agent(reasoning=True)``): ``agent_reasoning {role}``, the plan made before acting."""
    role = str(getattr(event, "agent_role", None) or "agent")
    attrs: Attributes = {attributes.AGENT_ROLE: role}
    put(attrs, attributes.REASONING_ATTEMPT, getattr(event, "attempt", None))
    return SpanStart(f"{attributes.SPAN_REASONING} {role}", SpanKind.INTERNAL, attrs)


def reasoning_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put(attrs, attributes.REASONING_READY, getattr(event, "ready", None))
    put_text(attrs, attributes.REASONING_PLAN, getattr(event, "plan", None), policy)
    return attrs


_MEMORY_SPANS = {
    "memory_query_started": attributes.SPAN_MEMORY_QUERY,
    "memory_save_started": attributes.SPAN_MEMORY_SAVE,
    "memory_retrieval_started": attributes.SPAN_MEMORY_RETRIEVAL,
}


def memory_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """memory_query_started / memory_save_started / memory_retrieval_started: one span per memory operation."""
    attrs: Attributes = {}
    put_text(attrs, attributes.MEMORY_QUERY, getattr(event, "query", None), policy)
    put(attrs, attributes.MEMORY_LIMIT, getattr(event, "limit", None))
    put(attrs, attributes.MEMORY_SCORE_THRESHOLD, getattr(event, "score_threshold", None))
    put_text(attrs, attributes.MEMORY_VALUE, getattr(event, "value", None), policy)
    return SpanStart(_MEMORY_SPANS.get(event.type, attributes.SPAN_MEMORY_QUERY), SpanKind.INTERNAL, attrs)


def memory_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    results = getattr(event, "results", None)
    if isinstance(results, (list, tuple)):
        attrs[attributes.MEMORY_RESULT_COUNT] = len(results)
    put_text(attrs, attributes.MEMORY_RESULTS, results, policy)
    put_text(attrs, attributes.MEMORY_CONTENT, getattr(event, "memory_content", None), policy)
    return attrs


def knowledge_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """knowledge_query_started (rewriting the task into a search query) or knowledge_search_query_started."""
    attrs: Attributes = {}
    if event.type == "knowledge_query_started":
        put_text(attrs, attributes.KNOWLEDGE_TASK_PROMPT, getattr(event, "task_prompt", None), policy)
        return SpanStart(attributes.SPAN_KNOWLEDGE_QUERY, SpanKind.INTERNAL, attrs)
    return SpanStart(attributes.SPAN_KNOWLEDGE_SEARCH, SpanKind.INTERNAL, attrs)


def knowledge_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.KNOWLEDGE_QUERY, getattr(event, "query", None), policy)
    put_text(attrs, attributes.KNOWLEDGE_RESULTS, getattr(event, "retrieved_knowledge", None), policy)
    return attrs


def _mcp_server(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    # A stdio server's name is its command line, a URL may hold credentials: both are content.
    put_text(attrs, attributes.MCP_SERVER_NAME, getattr(event, "server_name", None), policy)
    put_text(attrs, attributes.MCP_SERVER_URL, getattr(event, "server_url", None), policy)
    put(attrs, attributes.MCP_TRANSPORT, _value(getattr(event, "transport_type", None)))
    return attrs


def mcp_connect_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """mcp_connection_started: ``mcp_connect``, opening a session with an MCP server (the server is an attribute:
    a stdio server's name is its whole command line)."""
    attrs = _mcp_server(event, policy)
    put(attrs, attributes.MCP_RECONNECT, getattr(event, "is_reconnect", None))
    return SpanStart(attributes.SPAN_MCP_CONNECT, SpanKind.CLIENT, attrs)


def mcp_tool_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """mcp_tool_execution_started: ``tools/call {tool name}``, the MCP request inside CrewAI's tool span."""
    name = str(getattr(event, "tool_name", None) or "tool")
    attrs = _mcp_server(event, policy)
    attrs[attributes.MCP_METHOD_NAME] = attributes.MCP_METHOD_TOOLS_CALL
    attrs[attributes.GEN_AI_TOOL_NAME] = name
    put_text(attrs, attributes.GEN_AI_TOOL_CALL_ARGUMENTS, getattr(event, "tool_args", None), policy)
    return SpanStart(f"{attributes.MCP_METHOD_TOOLS_CALL} {name}", SpanKind.CLIENT, attrs)


def mcp_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.GEN_AI_TOOL_CALL_RESULT, getattr(event, "result", None), policy)
    return attrs


# ------------------------------------------------------------------ span events


def tool_trouble(event: Any, policy: ContentPolicy) -> tuple[str, Attributes]:
    """tool_failure_detected / tool_selection_error / tool_validate_input_error: an event on the agent's span."""
    attrs: Attributes = {}
    put(attrs, attributes.GEN_AI_TOOL_NAME, getattr(event, "tool_name", None))
    if event.type == "tool_failure_detected":
        failure = getattr(event, "failure", None)
        put(attrs, attributes.ERROR_TYPE, _value(getattr(failure, "reason", None)))
        put_text(attrs, attributes.TOOL_ERROR, getattr(failure, "message", None), policy)
        return attributes.EVENT_TOOL_FAILURE, attrs
    put_text(attrs, attributes.TOOL_ERROR, getattr(event, "error", None), policy)
    name = (
        attributes.EVENT_TOOL_SELECTION_ERROR
        if event.type == "tool_selection_error"
        else attributes.EVENT_TOOL_INPUT_ERROR
    )
    return name, attrs
