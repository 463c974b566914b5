"""A run's waterfall: every span of the run, from the crew (or flow) down, as bars on one time axis, each
opening to its attributes and events, as Jaeger's trace view shows them. Self-contained: no script, the rows
are ``<details>`` elements, so it works opened from disk."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from crewtrace import attributes
from crewtrace.report.records import SpanRecord
from crewtrace.report.render import ms
from crewtrace.report.summary import Summary

# Bar colour by the span's operation (or "step" for crewtrace's other spans).
BAR_KINDS = {
    attributes.OP_INVOKE_WORKFLOW: "task",
    attributes.OP_EXECUTE_TASK: "task",
    attributes.OP_INVOKE_AGENT: "agent",
    attributes.OP_CHAT: "llm",
    attributes.OP_EXECUTE_TOOL: "tool",
}
_INDENT_PX = 14
_MAX_INDENT = 12  # deeper spans are drawn at this indent


def waterfall_anchor(span_id: str) -> str:
    """The id of a span's row in the waterfall."""
    return escape(f"w-{span_id}")


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
    return str(value)


def _offset(run: Summary, ns: int) -> str:
    return f"+{ms(max(ns - run.start_ns, 0) / 1e9)}"


def _details(record: SpanRecord, run: Summary) -> str:
    """What opens under a row: ids, times, status, every attribute and every event."""
    facts = [
        ("span id", record.span_id),
        ("parent span id", record.parent_id or "-"),
        ("start", _offset(run, record.start_ns)),
        ("duration", ms(record.duration_s)),
        ("status", record.status + (f": {record.status_message}" if record.status_message else "")),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    rows += "".join(
        f'<tr class="attribute"><th>{escape(key)}</th><td><pre>{escape(_value(value))}</pre></td></tr>'
        for key, value in sorted(record.attributes.items())
    )
    events = "".join(
        f'<li class="event"><b>{escape(event.name)}</b> {escape(_offset(run, event.time_ns))}'
        + "".join(
            f"<div><code>{escape(k)}</code> <pre>{escape(_value(v))}</pre></div>"
            for k, v in sorted(event.attributes.items())
        )
        + "</li>"
        for event in record.events
    )
    events_html = f'<ol class="events">{events}</ol>' if events else ""
    return f'<div class="span-body"><table class="attributes">{rows}</table>{events_html}</div>'


def track(record: SpanRecord, run: Summary) -> str:
    """A span's bar on the run's time axis (placed and sized in percent of the run), coloured by its kind;
    the timeline and the waterfall draw the same bars."""
    length = max(run.end_ns - run.start_ns, 1)
    left = min(max((record.start_ns - run.start_ns) / length * 100, 0.0), 100.0)
    width = min(max((record.end_ns - record.start_ns) / length * 100, 0.0), 100.0 - left)
    kind = BAR_KINDS.get(record.operation or "", "step")
    failed = " failed" if record.status == "ERROR" else ""
    return (
        f'<span class="track"><span class="bar {kind}{failed}" style="left:{left:.4f}%;width:{width:.4f}%">'
        "</span></span>"
    )


def _row(record: SpanRecord, run: Summary, depth: int) -> str:
    indent = min(depth, _MAX_INDENT) * _INDENT_PX
    return (
        f'<details class="span" id="{waterfall_anchor(record.span_id)}" data-depth="{depth}" '
        f'data-start="{record.start_ns}" data-end="{record.end_ns}"><summary class="row">'
        f'<span class="name" style="padding-left:{indent}px" title="{escape(record.name)}">{escape(record.name)}</span>'
        f'{track(record, run)}<span class="time">{escape(ms(record.duration_s))}</span></summary>'
        f"{_details(record, run)}</details>"
    )


def waterfall(run: Summary) -> str:
    """The waterfall section: the run's root and every span beneath it, depth first in start order."""
    root = run.by_id.get(run.span_id)
    if root is None:
        return ""
    rows, stack = [], [(root, 0)]
    while stack:
        record, depth = stack.pop()
        rows.append(_row(record, run, depth))
        children = sorted(run.children.get(record.span_id, []), key=lambda r: (r.start_ns, r.span_id), reverse=True)
        stack += [(child, depth + 1) for child in children]
    count = len(rows)
    return (
        f'<section id="waterfall" class="timeline waterfall"><h2>Waterfall</h2>'
        f'<p class="sub">Every span of the run ({count}), on one time axis; open a row for its attributes and '
        f"events.</p>{''.join(rows)}</section>"
    )
