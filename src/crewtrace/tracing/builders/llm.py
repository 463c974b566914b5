"""Builders of the LLM call span, ``chat {model}``: request parameters, messages, usage and the agent's thoughts.

Pure functions of (source, event); tracing/event_table.py says which event calls which, and
docs/span-model.md documents every name written here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind

from crewtrace import attributes
from crewtrace.tracing.builders.common import Attributes, SpanStart, model_of, provider_of, put
from crewtrace.tracing.content import ContentPolicy, to_text
from crewtrace.usage.tokens import normalize_usage

# One JSON encoder for every message, as json.dumps(ensure_ascii=False, default=str) encodes (made once).
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str).encode


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


def _clip_parts(policy: ContentPolicy, parts: list[dict[str, Any]], limit: int) -> None:
    """Put each part's text through the content policy, at most ``limit`` characters (in place: the parts are
    the builders' own, made for this span)."""
    for part in parts:
        if "content" in part:
            content = policy.text(part["content"], limit)
            if content is not None:
                part["content"] = content
            else:
                del part["content"]


def _json(
    policy: ContentPolicy, messages: Sequence[Any], convert: Callable[[Any], dict[str, Any]] | None = None
) -> str | None:
    """GenAI messages (dicts the builders made for this span) as JSON that stays valid and within
    ``max_length``: each part's text is clipped,
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
        limit = max(budget - used, 256)
        _clip_parts(policy, message.get("parts") or [message], limit)  # no parts: a bare part
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
    (attributes.GEN_AI_REQUEST_TEMPERATURE, "temperature"),
    (attributes.GEN_AI_REQUEST_TOP_P, "top_p"),
    (attributes.GEN_AI_REQUEST_MAX_TOKENS, "max_tokens"),
    (attributes.GEN_AI_REQUEST_SEED, "seed"),
    (attributes.GEN_AI_REQUEST_FREQUENCY_PENALTY, "frequency_penalty"),
    (attributes.GEN_AI_REQUEST_PRESENCE_PENALTY, "presence_penalty"),
    (attributes.GEN_AI_REQUEST_CHOICE_COUNT, "n"),
)


_INTEGER_PARAMETERS = frozenset({attributes.GEN_AI_REQUEST_MAX_TOKENS, attributes.GEN_AI_REQUEST_SEED})


def llm_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """llm_call_started: ``chat {model}``, kind CLIENT."""
    model = getattr(event, "model", None) or model_of(source)
    attrs: Attributes = {attributes.GEN_AI_OPERATION_NAME: attributes.OP_CHAT}
    put(attrs, attributes.GEN_AI_REQUEST_MODEL, model)
    put(attrs, attributes.GEN_AI_PROVIDER_NAME, provider_of(source, model))
    for key, name in _REQUEST_PARAMETERS:
        value = getattr(event, name, None)
        if value is None:  # most calls set few of them
            continue
        if isinstance(value, float) and key in _INTEGER_PARAMETERS:
            value = int(value) if value.is_integer() else None
        put(attrs, key, value)
    stops = getattr(event, "stop_sequences", None)
    if stops:
        attrs[attributes.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stops]
    put(attrs, attributes.LLM_CALL_ID, getattr(event, "call_id", None))
    put(attrs, attributes.LLM_STREAM, getattr(event, "stream", None))
    if policy.capture:  # else no message is read at all
        system, inputs = _split(getattr(event, "messages", None))
        parts = [part for m in system for part in _parts(m.get("content"))]
        put(attrs, attributes.GEN_AI_SYSTEM_INSTRUCTIONS, _json(policy, parts))
        put(attrs, attributes.GEN_AI_INPUT_MESSAGES, _json(policy, inputs, _message))
    return SpanStart(f"{attributes.OP_CHAT} {model or 'unknown'}", SpanKind.CLIENT, attrs)


def llm_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = dict(normalize_usage(getattr(event, "usage", None)).attributes())
    finish = getattr(event, "finish_reason", None)
    if finish:
        attrs[attributes.GEN_AI_RESPONSE_FINISH_REASONS] = [str(finish)]
    put(attrs, attributes.GEN_AI_RESPONSE_ID, getattr(event, "response_id", None))
    call_type = getattr(event, "call_type", None)
    put(attrs, attributes.LLM_CALL_TYPE, getattr(call_type, "value", call_type))
    response = getattr(event, "response", None)
    if response is not None:
        message = {"role": "assistant", "parts": [{"type": "text", "content": to_text(response)}]}
        put(attrs, attributes.GEN_AI_OUTPUT_MESSAGES, _json(policy, [message]))
    return attrs


def llm_response(response: Any) -> Attributes:
    """What a provider's response object says of the call (litellm's ``ModelResponse``): for calls that end
    without a completion event."""
    extra = getattr(response, "model_extra", None) or {}
    attrs: Attributes = dict(normalize_usage(getattr(response, "usage", None) or extra.get("usage")).attributes())
    response_id = getattr(response, "id", None)
    put(attrs, attributes.GEN_AI_RESPONSE_ID, response_id if isinstance(response_id, str) else None)
    choices = getattr(response, "choices", None) or []
    finish = getattr(choices[0], "finish_reason", None) if isinstance(choices, list) and choices else None
    if isinstance(finish, str) and finish:
        attrs[attributes.GEN_AI_RESPONSE_FINISH_REASONS] = [finish]
    return attrs


_THOUGHT = re.compile(r"Thought:\s*(?P<text>.+?)\s*(?:\n\s*(?:Action|Final Answer)\s*:|\Z)", re.DOTALL)


def thought_of(event: Any) -> str | None:
    """The "Thought:" text of a ReAct answer in an llm_call_completed event, if it has one."""
    response = getattr(event, "response", None)
    if getattr(event, "type", None) != "llm_call_completed" or not isinstance(response, str):
        return None
    match = _THOUGHT.search(response)
    return match.group("text") if match and match.group("text") else None
