"""Builders of the tool attempt span, ``execute_tool {tool name}``.

Pure functions of (source, event); tracing/event_table.py says which event calls which, and
docs/span-model.md documents every name written here.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from crewtrace import attributes
from crewtrace.tracing.builders.common import Attributes, SpanStart, put, put_text
from crewtrace.tracing.content import ContentPolicy


def tool_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """tool_usage_started: ``execute_tool {tool name}``, one span per attempt."""
    name = str(getattr(event, "tool_name", None) or "tool")
    attrs: Attributes = {
        attributes.GEN_AI_OPERATION_NAME: attributes.OP_EXECUTE_TOOL,
        attributes.GEN_AI_TOOL_NAME: name,
        attributes.GEN_AI_TOOL_TYPE: attributes.TOOL_TYPE_FUNCTION,
    }
    put(attrs, attributes.TOOL_ATTEMPT, getattr(event, "run_attempts", None))
    tool_class = getattr(event, "tool_class", None)
    tool_class = getattr(tool_class, "__name__", tool_class)
    if tool_class != name:  # CrewAI's events usually name the tool here too: no need to say it twice
        put(attrs, attributes.TOOL_CLASS, tool_class)
    put_text(attrs, attributes.GEN_AI_TOOL_CALL_ARGUMENTS, getattr(event, "tool_args", None), policy)
    return SpanStart(f"{attributes.OP_EXECUTE_TOOL} {name}", SpanKind.INTERNAL, attrs)


def tool_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put(attrs, attributes.TOOL_FROM_CACHE, getattr(event, "from_cache", None))
    if getattr(event, "type", "") == "tool_usage_finished":
        put_text(attrs, attributes.GEN_AI_TOOL_CALL_RESULT, getattr(event, "output", None), policy)
    return attrs
