"""Builders of the workflow spans: the crew (``invoke_workflow {crew}``), the flow and its methods.

Pure functions of (source, event); tracing/event_table.py says which event calls which, and
docs/span-model.md documents every name written here.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from crewtrace import attributes
from crewtrace.tracing.builders.common import Attributes, SpanStart, put, put_text
from crewtrace.tracing.content import ContentPolicy


def crew_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """crew_kickoff_started: the root ``invoke_workflow {crew name}`` span."""
    name = getattr(event, "crew_name", None) or getattr(source, "name", None) or "crew"
    attrs: Attributes = {
        attributes.GEN_AI_OPERATION_NAME: attributes.OP_INVOKE_WORKFLOW,
        attributes.GEN_AI_WORKFLOW_NAME: name,
    }
    put(attrs, attributes.CREW_ID, str(getattr(source, "id", "")) or None)
    put(attrs, attributes.CREW_KEY, getattr(source, "key", None))
    process = getattr(source, "process", None)
    put(attrs, attributes.CREW_PROCESS, getattr(process, "value", process))
    tasks, agents = getattr(source, "tasks", None), getattr(source, "agents", None)
    if tasks is not None:
        attrs[attributes.CREW_TASK_COUNT] = len(tasks)
    if agents is not None:
        attrs[attributes.CREW_AGENT_COUNT] = len(agents)
    if getattr(event, "inputs", None):
        put_text(attrs, attributes.CREW_INPUTS, event.inputs, policy)
    return SpanStart(f"{attributes.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL, attrs)


def crew_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.CREW_FINAL_OUTPUT, getattr(event, "output", None), policy)
    return attrs


def flow_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """flow_started (a user's Flow): ``invoke_workflow {flow name}``."""
    name = str(getattr(event, "flow_name", None) or type(source).__name__)
    attrs: Attributes = {
        attributes.GEN_AI_OPERATION_NAME: attributes.OP_INVOKE_WORKFLOW,
        attributes.GEN_AI_WORKFLOW_NAME: name,
        attributes.FLOW_NAME: name,
    }
    flow_id = getattr(getattr(source, "state", None), "id", None)
    put(attrs, attributes.FLOW_ID, str(flow_id) if flow_id else None)
    if getattr(event, "inputs", None):
        put_text(attrs, attributes.FLOW_INPUTS, event.inputs, policy)
    return SpanStart(f"{attributes.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL, attrs)


def flow_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.FLOW_OUTPUT, getattr(event, "result", None), policy)
    return attrs


def method_start(source: Any, event: Any, policy: ContentPolicy) -> SpanStart:
    """method_execution_started: ``flow_method {method name}``, one per executed flow method."""
    name = str(getattr(event, "method_name", None) or "method")
    attrs: Attributes = {
        attributes.FLOW_NAME: str(getattr(event, "flow_name", "") or ""),
        attributes.FLOW_METHOD_NAME: name,
    }
    if getattr(event, "params", None):
        put_text(attrs, attributes.FLOW_METHOD_PARAMS, event.params, policy)
    return SpanStart(f"{attributes.SPAN_FLOW_METHOD} {name}", SpanKind.INTERNAL, attrs)


def method_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.FLOW_METHOD_OUTPUT, getattr(event, "result", None), policy)
    return attrs
