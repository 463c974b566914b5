"""Reading a run's spans: the tree, statuses, costs, failure points, and captured text told from absent text.

Text that was not captured is None, text that was captured but empty is "": crewtrace leaves out every
attribute without a value, and with capture off it leaves out every text attribute, so a missing text
attribute means "not captured" exactly when the run shows no captured text at all (``captured``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crewtrace import attributes
from crewtrace.report.records import SpanRecord

# Text attributes crewtrace always writes when capture is on (CrewAI requires a task's description and an
# agent's goal and backstory; an LLM call always has input messages): one of them on any span of a run
# tells that its content was captured.
_ALWAYS_CAPTURED = (
    attributes.TASK_DESCRIPTION,
    attributes.AGENT_GOAL,
    attributes.AGENT_BACKSTORY,
    attributes.GEN_AI_INPUT_MESSAGES,
    attributes.CREW_INPUTS,
    attributes.FLOW_INPUTS,
)


@dataclass
class Failure:
    """A failure point: a failed span, a guardrail's rejection, or a tool CrewAI gave up on."""

    kind: str  # "execute task", "chat", "guardrail rejected", "tool gave up", ...
    name: str  # the span's name (with the tool's name for "tool gave up")
    error_type: str  # error.type, "rejected" for a guardrail
    message: str | None  # None: not captured (exception messages are content)
    time_ns: int  # when it happened (the span's end, or the event's time)
    span_id: str  # the span it happened on, for a link to it


def children_of(records: Iterable[SpanRecord]) -> dict[str | None, list[SpanRecord]]:
    """Spans by parent span id."""
    children: dict[str | None, list[SpanRecord]] = {}
    for record in records:
        children.setdefault(record.parent_id, []).append(record)
    return children


def descendants(children: Mapping[str | None, list[SpanRecord]], span_id: str) -> list[SpanRecord]:
    """Every span beneath ``span_id``, given the spans by parent id (``children_of``, built once per run:
    walking many subtrees stays linear)."""
    found, stack = [], list(children.get(span_id, []))
    while stack:
        record = stack.pop()
        found.append(record)
        stack.extend(children.get(record.span_id, []))
    return found


def status_of(record: SpanRecord) -> str:
    """The status a report shows: "failed" for an ERROR span, else "completed"."""
    return "failed" if record.status == "ERROR" else "completed"


def is_llm(record: SpanRecord) -> bool:
    """Whether the span is an LLM call (crewtrace's ``chat`` or another instrumentation's GenAI span)."""
    return record.operation in (attributes.OP_CHAT, "text_completion", "generate_content")


def count(attrs: dict[str, Any], key: str, default: int = 0) -> int:
    """An integer attribute; ``default`` when absent or not a count (a hand-made file may hold anything)."""
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return int(value)


def amount(attrs: dict[str, Any], key: str) -> float | None:
    """A number attribute (a cost); None when absent or not a finite number."""
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def total(records: Iterable[SpanRecord], key: str) -> int:
    """The sum of an integer attribute over the spans (absent counts 0)."""
    return sum(count(r.attributes, key) for r in records)


def captured(records: Iterable[SpanRecord]) -> bool:
    """Whether these spans were recorded with content capture on (see the module's docstring)."""
    return any(key in r.attributes for r in records for key in _ALWAYS_CAPTURED)


def text(attrs: dict[str, Any], key: str, content_captured: bool) -> str | None:
    """A text attribute: its value, "" if captured but empty, None if not captured."""
    if key in attrs:
        return str(attrs[key])
    return "" if content_captured else None


def call_cost(calls: Iterable[SpanRecord]) -> float | None:
    """The sum of the calls' known costs; None when none had a price."""
    costs = [cost for r in calls if (cost := amount(r.attributes, attributes.LLM_COST_USD)) is not None]
    return sum(costs) if costs else None


def _message(record: SpanRecord, exception: Any, error_type: str, content_captured: bool) -> str | None:
    if exception is not None and attributes.EXCEPTION_MESSAGE in exception.attributes:
        return str(exception.attributes[attributes.EXCEPTION_MESSAGE])
    if record.status_message and record.status_message != error_type:
        return record.status_message
    return "" if content_captured else None  # the status then only repeats the error type


def failures_in(records: Sequence[SpanRecord], content_captured: bool) -> list[Failure]:
    """Failed spans, guardrail rejections and tools CrewAI gave up on, in time order."""
    found = []
    for record in records:
        if record.status == "ERROR":
            exception = next((e for e in record.events if e.name == attributes.EXCEPTION_EVENT), None)
            kind = (record.operation or record.name.split(" ", 1)[0]).replace("_", " ")
            error_type = str(record.attributes.get(attributes.ERROR_TYPE, "error"))
            message = _message(record, exception, error_type, content_captured)
            found.append(Failure(kind, record.name, error_type, message, record.end_ns, record.span_id))
        if record.attributes.get(attributes.GUARDRAIL_PASSED) is False:
            feedback = text(record.attributes, attributes.GUARDRAIL_FEEDBACK, content_captured)
            found.append(
                Failure("guardrail rejected", record.name, "rejected", feedback, record.end_ns, record.span_id)
            )
        for event in record.events:
            if event.name == attributes.EVENT_TOOL_FAILURE:
                tool = str(event.attributes.get(attributes.GEN_AI_TOOL_NAME, "tool"))
                error_type = str(event.attributes.get(attributes.ERROR_TYPE, "tool_failure"))
                message = text(event.attributes, attributes.TOOL_ERROR, content_captured)
                name = f"{record.name}: {tool}"
                found.append(Failure("tool gave up", name, error_type, message, event.time_ns, record.span_id))
    return sorted(found, key=lambda f: f.time_ns)


def role_of(record: SpanRecord) -> str:
    """An agent span's agent role."""
    return str(record.attributes.get(attributes.GEN_AI_AGENT_NAME, record.name.removeprefix("invoke_agent ")))
