"""The span model of a crew's main units (crew, task, agent, LLM call, tool call, flow, flow method).

Pure functions of (source, event) naming each span and building its attributes; event_table.py says which
event opens or closes which unit, and the tracker decides parents and timing. docs/span-model.md documents
every name written here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from crewtrace import attributes as A
from crewtrace.tracing.content import ContentPolicy, to_text
from crewtrace.usage.tokens import normalize_usage

Attributes = dict[str, AttributeValue]
# One encoder for every message: json.dumps with options builds a new JSONEncoder on each call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


@dataclass
class SpanStart:
    """Everything needed to open one span."""

    name: str
    kind: SpanKind
    attributes: Attributes = field(default_factory=dict)


@dataclass
class SpanError:
    """A failure to record on a span: error.type, plus an exception event unless nothing was raised."""

    error_type: str
    message: str | None
    exception: bool = True


def put(attrs: Attributes, key: str, value: Any) -> None:
    """Set an attribute only when there is a value of a type OpenTelemetry accepts."""
    if value is None:
        return
    if isinstance(value, (str, bool, int, float)):
        attrs[key] = value
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        attrs[key] = list(value)
    else:
        attrs[key] = to_text(value)


def put_text(attrs: Attributes, key: str, value: Any, policy: ContentPolicy) -> None:
    """Set a free-text attribute through the content policy."""
    put(attrs, key, policy.text(value))


def type_name(error_type: Any) -> str:
    """The error.type value for an exception class: qualified unless it is a builtin."""
    if not isinstance(error_type, type):
        return A.ERROR_TYPE_OTHER
    module = error_type.__module__
    return error_type.__qualname__ if module == "builtins" else f"{module}.{error_type.__qualname__}"


def _tool_names(tools: Iterable[Any] | None) -> list[str]:
    return [str(getattr(t, "name", t)) for t in (tools or [])]


def _model_of(llm: Any) -> str | None:
    if llm is None:
        return None
    if isinstance(llm, str):
        return llm
    model = getattr(llm, "model", None)
    return str(model) if model else None


def provider_of(llm: Any, model: str | None) -> str | None:
    """gen_ai.provider.name: the LLM's declared provider, else the model's ``provider/`` prefix."""
    fields_set = getattr(llm, "model_fields_set", set())
    builtin = type(llm).__module__.startswith("crewai.")
    provider = getattr(llm, "provider", None)
    if provider and (builtin or "provider" in fields_set):
        return str(provider)
    if model and "/" in model:
        return model.split("/", 1)[0]
    return None


def crew_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """crew_kickoff_started: the root ``invoke_workflow {crew name}`` span."""
    name = getattr(event, "crew_name", None) or getattr(source, "name", None) or "crew"
    attrs: Attributes = {A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_WORKFLOW, A.GEN_AI_WORKFLOW_NAME: name, A.CREW_NAME: name}
    put(attrs, A.CREW_ID, str(getattr(source, "id", "")) or None)
    put(attrs, A.CREW_KEY, getattr(source, "key", None))
    process = getattr(source, "process", None)
    put(attrs, A.CREW_PROCESS, getattr(process, "value", process))
    tasks, agents = getattr(source, "tasks", None), getattr(source, "agents", None)
    if tasks is not None:
        attrs[A.CREW_TASK_COUNT] = len(tasks)
    if agents is not None:
        attrs[A.CREW_AGENT_COUNT] = len(agents)
    if getattr(event, "inputs", None):
        put_text(attrs, A.CREW_INPUTS, event.inputs, policy)
    return SpanStart(f"{A.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL, attrs)


def crew_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, A.CREW_FINAL_OUTPUT, getattr(event, "output", None), policy)
    return attrs


def task_start(source: Any, event: Any, index: int | None, policy: ContentPolicy) -> SpanStart:
    """task_started: ``execute_task {task name}``; a task without a name is called ``Task {n}``."""
    task = getattr(event, "task", None) or source
    name = getattr(task, "name", None)  # not event.task_name: CrewAI fills it with the whole description
    label = name or (f"Task {index}" if index else "Task")
    attrs: Attributes = {A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TASK}
    put(attrs, A.TASK_ID, str(getattr(task, "id", "") or getattr(event, "task_id", "") or "") or None)
    put(attrs, A.TASK_KEY, getattr(task, "key", None))
    put(attrs, A.TASK_NAME, name)
    put(attrs, A.TASK_INDEX, index)
    put(attrs, A.TASK_ASYNC_EXECUTION, getattr(task, "async_execution", None))
    agent = getattr(task, "agent", None)
    put(attrs, A.TASK_AGENT_ROLE, getattr(agent, "role", None))
    put_text(attrs, A.TASK_DESCRIPTION, getattr(task, "description", None), policy)
    put_text(attrs, A.TASK_EXPECTED_OUTPUT, getattr(task, "expected_output", None), policy)
    if getattr(event, "context", None):
        put_text(attrs, A.TASK_CONTEXT, event.context, policy)
    return SpanStart(f"{A.OP_EXECUTE_TASK} {label}", SpanKind.INTERNAL, attrs)


def task_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, A.TASK_OUTPUT, getattr(event, "output", None), policy)
    return attrs


def _agent_span(
    role: str, agent_id: Any, llm: Any, tools: Any, goal: Any, backstory: Any, prompt: Any, policy: ContentPolicy
) -> SpanStart:
    """``invoke_agent {role}`` with the attributes shared by crew agents and standalone agents."""
    attrs: Attributes = {A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_AGENT, A.GEN_AI_AGENT_NAME: role, A.AGENT_ROLE: role}
    put(attrs, A.GEN_AI_AGENT_ID, str(agent_id) if agent_id else None)
    model = _model_of(llm)
    put(attrs, A.GEN_AI_REQUEST_MODEL, model)
    put(attrs, A.GEN_AI_PROVIDER_NAME, provider_of(llm, model) if llm is not None else None)
    if tools:
        attrs[A.AGENT_TOOLS] = _tool_names(tools)
    put_text(attrs, A.AGENT_GOAL, goal, policy)
    put_text(attrs, A.AGENT_BACKSTORY, backstory, policy)
    put_text(attrs, A.AGENT_TASK_PROMPT, prompt, policy)
    return SpanStart(f"{A.OP_INVOKE_AGENT} {role}", SpanKind.INTERNAL, attrs)


def agent_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """agent_execution_started: ``invoke_agent {role}``."""
    agent = getattr(event, "agent", None) or source
    role = str(getattr(agent, "role", None) or getattr(event, "agent_role", None) or "agent")
    return _agent_span(
        role,
        getattr(agent, "id", None),
        getattr(agent, "llm", None),
        getattr(event, "tools", None) or getattr(agent, "tools", None),
        getattr(agent, "goal", None),
        getattr(agent, "backstory", None),
        getattr(event, "task_prompt", None),
        policy,
    )


def lite_agent_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """lite_agent_execution_started (``Agent.kickoff()`` outside a crew): ``invoke_agent {role}``."""
    info = getattr(event, "agent_info", None) or {}
    role = str(info.get("role") or getattr(source, "role", None) or "agent")
    return _agent_span(
        role,
        info.get("id") or getattr(source, "id", None),
        getattr(source, "llm", None),
        getattr(event, "tools", None),
        info.get("goal"),
        info.get("backstory"),
        getattr(event, "messages", None),
        policy,
    )


def flow_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """flow_started (a user's Flow): ``invoke_workflow {flow name}``."""
    name = str(getattr(event, "flow_name", None) or type(source).__name__)
    attrs: Attributes = {A.GEN_AI_OPERATION_NAME: A.OP_INVOKE_WORKFLOW, A.GEN_AI_WORKFLOW_NAME: name, A.FLOW_NAME: name}
    flow_id = getattr(getattr(source, "state", None), "id", None)
    put(attrs, A.FLOW_ID, str(flow_id) if flow_id else None)
    if getattr(event, "inputs", None):
        put_text(attrs, A.FLOW_INPUTS, event.inputs, policy)
    return SpanStart(f"{A.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL, attrs)


def flow_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, A.FLOW_OUTPUT, getattr(event, "result", None), policy)
    return attrs


def method_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """method_execution_started: ``flow_method {method name}``, one per executed flow method."""
    name = str(getattr(event, "method_name", None) or "method")
    attrs: Attributes = {A.FLOW_NAME: str(getattr(event, "flow_name", "") or ""), A.FLOW_METHOD_NAME: name}
    if getattr(event, "params", None):
        put_text(attrs, A.FLOW_METHOD_PARAMS, event.params, policy)
    return SpanStart(f"{A.SPAN_FLOW_METHOD} {name}", SpanKind.INTERNAL, attrs)


def method_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, A.FLOW_METHOD_OUTPUT, getattr(event, "result", None), policy)
    return attrs


def agent_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, A.AGENT_OUTPUT, getattr(event, "output", None), policy)
    return attrs


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):  # multimodal parts: keep text parts, name the others
        parts: list[dict[str, Any]] = []
        for item in content:
            if isinstance(item, Mapping) and item.get("type") == "text":
                parts.append({"type": "text", "content": str(item.get("text", ""))})
            else:
                kind = item.get("type", "unknown") if isinstance(item, Mapping) else type(item).__name__
                parts.append({"type": str(kind)})
        return parts
    return [{"type": "text", "content": to_text(content)}]


def _message(raw: Any) -> dict[str, Any]:
    """One CrewAI message in the GenAI JSON shape."""
    if not isinstance(raw, Mapping):
        return {"role": "user", "parts": _parts(raw)}
    return {"role": str(raw.get("role", "user")), "parts": _parts(raw.get("content"))}


def _split(messages: Any) -> tuple[list[Any], list[Any]]:
    """CrewAI's messages as (the leading system messages, the rest), not yet converted: only those kept are,
    so a long conversation costs no more than the budget (a system message further on stays a message)."""
    if messages is None:
        return [], []
    if isinstance(messages, str):
        return [], [{"role": "user", "content": messages}]
    items = messages if isinstance(messages, list) else [messages]
    lead = 0
    for message in items:
        if not (isinstance(message, Mapping) and message.get("role") == "system"):
            break
        lead += 1
    return items[:lead], items[lead:]


def _clipped_parts(policy: ContentPolicy, parts: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Parts with their text through the content policy, each at most ``limit`` characters."""
    clipped = []
    for part in parts:
        if "content" in part:
            content = policy.text(part["content"], limit)
            part = {**part, "content": content} if content is not None else {"type": part.get("type", "text")}
        clipped.append(part)
    return clipped


def _json(
    policy: ContentPolicy, messages: Sequence[Any], convert: Callable[[Any], dict[str, Any]] | None = None
) -> str | None:
    """GenAI messages as JSON that stays valid and within ``max_length``: each part's text is clipped,
    and the most recent messages are kept, older ones replaced by a note of how many were left out.
    ``convert`` turns a raw message into the GenAI shape; only the messages kept are converted, so a long
    conversation costs no more than the budget."""
    if not policy.capture or not messages:
        return None
    budget = policy.max_length
    kept: list[str] = []
    used = 2
    for raw in reversed(messages):
        message = convert(raw) if convert is not None else raw
        if "parts" in message:
            message = {**message, "parts": _clipped_parts(policy, message["parts"], max(budget - used, 256))}
        else:  # a bare part (system instructions)
            message = _clipped_parts(policy, [message], max(budget - used, 256))[0]
        encoded = _ENCODE(message)
        if kept and used + len(encoded) > budget:
            left_out = len(messages) - len(kept)
            note: dict[str, Any] = {"type": "text", "content": f"…[{left_out} earlier messages truncated]"}
            first = messages[0]
            if convert is not None or "parts" in first:  # messages, not bare parts: the note is a message too
                role = first.get("role", "user") if isinstance(first, Mapping) else "user"
                note = {"role": str(role), "parts": [note]}
            kept.append(_ENCODE(note))
            break
        kept.append(encoded)
        used += len(encoded) + 1
    return "[" + ",".join(reversed(kept)) + "]"


# gen_ai.request.* attribute -> the llm_call_started field it comes from.
_REQUEST_PARAMETERS = (
    (A.GEN_AI_REQUEST_TEMPERATURE, "temperature"),
    (A.GEN_AI_REQUEST_TOP_P, "top_p"),
    (A.GEN_AI_REQUEST_MAX_TOKENS, "max_tokens"),
    (A.GEN_AI_REQUEST_SEED, "seed"),
    (A.GEN_AI_REQUEST_FREQUENCY_PENALTY, "frequency_penalty"),
    (A.GEN_AI_REQUEST_PRESENCE_PENALTY, "presence_penalty"),
    (A.GEN_AI_REQUEST_CHOICE_COUNT, "n"),
)
_INTEGER_PARAMETERS = frozenset({A.GEN_AI_REQUEST_MAX_TOKENS, A.GEN_AI_REQUEST_SEED})


def llm_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """llm_call_started: ``chat {model}``, kind CLIENT."""
    model = getattr(event, "model", None) or _model_of(source)
    attrs: Attributes = {A.GEN_AI_OPERATION_NAME: A.OP_CHAT}
    put(attrs, A.GEN_AI_REQUEST_MODEL, model)
    put(attrs, A.GEN_AI_PROVIDER_NAME, provider_of(source, model))
    for key, name in _REQUEST_PARAMETERS:
        value = getattr(event, name, None)
        if value is None:  # most calls set few of them
            continue
        if isinstance(value, float) and key in _INTEGER_PARAMETERS:
            value = int(value) if value.is_integer() else None
        put(attrs, key, value)
    stops = getattr(event, "stop_sequences", None)
    if stops:
        attrs[A.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]
    put(attrs, A.LLM_CALL_ID, getattr(event, "call_id", None))
    put(attrs, A.LLM_STREAM, getattr(event, "stream", None))
    if policy.capture:  # else no message is read at all
        system, inputs = _split(getattr(event, "messages", None))
        parts = [part for m in system for part in _parts(m.get("content"))]
        put(attrs, A.GEN_AI_SYSTEM_INSTRUCTIONS, _json(policy, parts))
        put(attrs, A.GEN_AI_INPUT_MESSAGES, _json(policy, inputs, _message))
    return SpanStart(f"{A.OP_CHAT} {model or 'unknown'}", SpanKind.CLIENT, attrs)


def llm_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = dict(normalize_usage(getattr(event, "usage", None)).attributes())
    finish = getattr(event, "finish_reason", None)
    if finish:
        attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [str(finish)]
    put(attrs, A.GEN_AI_RESPONSE_ID, getattr(event, "response_id", None))
    call_type = getattr(event, "call_type", None)
    put(attrs, A.LLM_CALL_TYPE, getattr(call_type, "value", call_type))
    response = getattr(event, "response", None)
    if response is not None:
        message = {"role": "assistant", "parts": [{"type": "text", "content": to_text(response)}]}
        put(attrs, A.GEN_AI_OUTPUT_MESSAGES, _json(policy, [message]))
    return attrs


def llm_response(response: Any) -> Attributes:
    """What a provider's response object says of the call (litellm's ``ModelResponse``): for calls that end
    without a completion event."""
    extra = getattr(response, "model_extra", None) or {}
    attrs: Attributes = dict(normalize_usage(getattr(response, "usage", None) or extra.get("usage")).attributes())
    response_id = getattr(response, "id", None)
    put(attrs, A.GEN_AI_RESPONSE_ID, response_id if isinstance(response_id, str) else None)
    choices = getattr(response, "choices", None) or []
    finish = getattr(choices[0], "finish_reason", None) if isinstance(choices, list) and choices else None
    if isinstance(finish, str) and finish:
        attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = [finish]
    return attrs


_THOUGHT = re.compile(r"Thought:\s*(?P<text>.+?)\s*(?:\n\s*(?:Action|Final Answer)\s*:|\Z)", re.DOTALL)


def thought_of(event: Any) -> str | None:
    """The "Thought:" text of a ReAct answer in an llm_call_completed event, if it has one."""
    response = getattr(event, "response", None)
    if getattr(event, "type", None) != "llm_call_completed" or not isinstance(response, str):
        return None
    match = _THOUGHT.search(response)
    return match.group("text") if match and match.group("text") else None


def tool_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """tool_usage_started: ``execute_tool {tool name}``, one span per attempt."""
    name = str(getattr(event, "tool_name", None) or "tool")
    attrs: Attributes = {
        A.GEN_AI_OPERATION_NAME: A.OP_EXECUTE_TOOL,
        A.GEN_AI_TOOL_NAME: name,
        A.GEN_AI_TOOL_TYPE: A.TOOL_TYPE_FUNCTION,
    }
    put(attrs, A.TOOL_ATTEMPT, getattr(event, "run_attempts", None))
    tool_class = getattr(event, "tool_class", None)
    put(attrs, A.TOOL_CLASS, getattr(tool_class, "__name__", tool_class))
    put_text(attrs, A.GEN_AI_TOOL_CALL_ARGUMENTS, getattr(event, "tool_args", None), policy)
    return SpanStart(f"{A.OP_EXECUTE_TOOL} {name}", SpanKind.INTERNAL, attrs)


def tool_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put(attrs, A.TOOL_FROM_CACHE, getattr(event, "from_cache", None))
    if getattr(event, "type", "") == "tool_usage_finished":
        put_text(attrs, A.GEN_AI_TOOL_CALL_RESULT, getattr(event, "output", None), policy)
    return attrs
