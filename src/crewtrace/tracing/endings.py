"""When and how a span ends: event timestamps, what an end event says, errors, and the end of a span whose end
event never came."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from crewtrace import attributes
from crewtrace.tracing import event_table
from crewtrace.tracing.builders import llm as llm_builders
from crewtrace.tracing.builders.common import SpanError
from crewtrace.tracing.content import ContentPolicy
from crewtrace.tracing.nodes import Node
from crewtrace.usage.tokens import Usage

MAX_HOPS = 256  # bound on every walk up a tree or an alias chain
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)  # CrewAI's timestamps are naive: taken as UTC
_MICROSECOND = timedelta(microseconds=1)


def timestamp_ns(event: Any) -> int:
    """An event's own timestamp in Unix nanoseconds (exact to the microsecond CrewAI records)."""
    ts = getattr(event, "timestamp", None)
    if not isinstance(ts, datetime):
        return time.time_ns()
    # Integer arithmetic on timedeltas: exact, and no intermediate datetime or float.
    return (ts - (_EPOCH_NAIVE if ts.tzinfo is None else _EPOCH)) // _MICROSECOND * 1_000


def record_error(span: Span, error: SpanError, at_ns: int) -> None:
    """error.type and status ERROR, with an exception event when something was raised."""
    span.set_attribute(attributes.ERROR_TYPE, error.error_type)
    if error.exception:
        event_attrs = (
            {} if error.error_type == attributes.ERROR_TYPE_OTHER else {attributes.EXCEPTION_TYPE: error.error_type}
        )
        if error.message is not None:
            event_attrs[attributes.EXCEPTION_MESSAGE] = error.message
        span.add_event(attributes.EXCEPTION_EVENT, event_attrs, timestamp=at_ns)
    span.set_status(Status(StatusCode.ERROR, error.message or error.error_type))


def depth(node: Node) -> int:
    """How far ``node`` is below its run's root."""
    steps = 0
    while node.parent is not None and steps < MAX_HOPS:
        node, steps = node.parent, steps + 1
    return steps


def stale_end(node: Node, now: int) -> int:
    """When a span whose end never came is over: at its next sibling's start, else at its parent's end."""
    siblings = node.parent.child_starts if node.parent is not None else []
    later = [start for start in siblings if start > node.start_ns]
    if later:
        return min(later)
    parent = node.parent
    while parent is not None:
        if parent.end_ns is not None:
            return parent.end_ns
        parent = parent.parent
    return now


def read_end(node: Node, unit: event_table.Unit, event: Any, end_ns: int, policy: ContentPolicy) -> SpanError | None:
    """What an end event says of its span: the attributes it adds (kept on the node, set as it closes), an
    LLM call's usage and thought, and the failure it reports, if any."""
    end_attributes = event_table.end_attributes(unit, event, policy)
    if end_attributes:  # set with the span's totals as it closes, in one call
        node.end_attributes = end_attributes
    error = None
    if event.type in event_table.FAILURE_EVENTS or event.type == "tool_usage_finished":
        error = event_table.error_of(event, policy)
    if unit == event_table.LLM:
        thought = llm_builders.thought_of(event)
        if thought is not None:
            text = policy.text(thought)
            attrs = {attributes.AGENT_THOUGHT_TEXT: text} if text else {}
            node.recording().span.add_event(attributes.EVENT_AGENT_THOUGHT, attrs, timestamp=end_ns)
        if node.usage_from_response:  # already on the span, as the response said it
            Usage.drop_from(end_attributes or {})
        else:
            node.usage = Usage.of_span(end_attributes) or node.usage  # normalised once, in llm_end
    return error


def fail(node: Node, unit: event_table.Unit, error: SpanError, end_ns: int) -> None:
    """Record a failure on its span; a failed task names the failure of its crew, whose own says only "other"."""
    if unit == event_table.TASK:
        node.root.failure_type = error.error_type
    if unit == event_table.CREW and error.error_type == attributes.ERROR_TYPE_OTHER and node.root.failure_type:
        error.error_type = node.root.failure_type
    record_error(node.span, error, end_ns)
    node.error_type = error.error_type
    if node.parent is not None:
        node.parent.failed_child = error
