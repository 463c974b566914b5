"""When and how a span ends: event timestamps, errors, and the end of a span whose end event never came."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from crewtrace import attributes
from crewtrace.tracing.builders.common import SpanError
from crewtrace.tracing.nodes import Node

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
