"""The execution summary of one trace: totals, a task table and a text timeline, like CrewAI's Traces page.

Works on :class:`SpanRecord`, built from SDK spans or from OTLP/JSON, so the demo and any stored trace
render the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crewtrace import attributes as A

_TIMELINE_WIDTH = 40


@dataclass
class SpanRecord:
    """The parts of one span the summary needs."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: str  # "UNSET" | "OK" | "ERROR"
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def operation(self) -> str | None:
        return self.attributes.get(A.GEN_AI_OPERATION_NAME)

    @property
    def duration_s(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e9


def records_from_sdk(spans: Iterable[Any]) -> list[SpanRecord]:
    """Records from SDK ``ReadableSpan`` objects."""
    records = []
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        records.append(
            SpanRecord(
                trace_id=f"{span.context.trace_id:032x}",
                span_id=f"{span.context.span_id:016x}",
                parent_id=f"{parent:016x}" if parent is not None else None,
                name=span.name,
                start_ns=span.start_time or 0,
                end_ns=span.end_time or 0,
                status=span.status.status_code.name,
                attributes=dict(span.attributes or {}),
            )
        )
    return records


@dataclass
class TaskRow:
    name: str
    agent: str
    model: str
    status: str
    duration_s: float
    start_ns: int
    end_ns: int


@dataclass
class Summary:
    """The facts of one crew execution."""

    trace_id: str
    crew: str
    status: str
    duration_s: float
    input_tokens: int
    output_tokens: int
    requests: int
    tool_calls: int
    tasks: list[TaskRow]
    root: SpanRecord

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _descendants(records: Sequence[SpanRecord], span_id: str) -> list[SpanRecord]:
    children: dict[str | None, list[SpanRecord]] = {}
    for record in records:
        children.setdefault(record.parent_id, []).append(record)
    found, stack = [], list(children.get(span_id, []))
    while stack:
        record = stack.pop()
        found.append(record)
        stack.extend(children.get(record.span_id, []))
    return found


def _status(record: SpanRecord) -> str:
    return "failed" if record.status == "ERROR" else "completed"


def summarize(records: Sequence[SpanRecord], trace_id: str | None = None) -> Summary:
    """Summarise the crew run in ``records`` (the first root crew span, or the one of ``trace_id``)."""
    roots = [
        r
        for r in records
        if r.operation == A.OP_INVOKE_WORKFLOW
        and (trace_id is None or r.trace_id == trace_id)
        and not any(p.span_id == r.parent_id for p in records)
    ]
    if not roots:
        raise ValueError("no crew span (invoke_workflow) in the trace")
    root = min(roots, key=lambda r: r.start_ns)
    below = _descendants(records, root.span_id)
    chats = [r for r in below if r.operation == A.OP_CHAT]
    tasks = []
    for task in sorted((r for r in below if r.operation == A.OP_EXECUTE_TASK), key=lambda r: r.start_ns):
        under = _descendants(records, task.span_id)
        agents = [r.attributes.get(A.GEN_AI_AGENT_NAME, "?") for r in under if r.operation == A.OP_INVOKE_AGENT]
        models = {str(r.attributes.get(A.GEN_AI_REQUEST_MODEL)) for r in under if r.operation == A.OP_CHAT}
        tasks.append(
            TaskRow(
                name=task.name.removeprefix(f"{A.OP_EXECUTE_TASK} "),
                agent=agents[0] if agents else str(task.attributes.get(A.TASK_AGENT_ROLE, "-")),
                model=", ".join(sorted(models)) or "-",
                status=_status(task),
                duration_s=task.duration_s,
                start_ns=task.start_ns,
                end_ns=task.end_ns,
            )
        )
    return Summary(
        trace_id=root.trace_id,
        crew=str(root.attributes.get(A.GEN_AI_WORKFLOW_NAME, root.name)),
        status=_status(root),
        duration_s=root.duration_s,
        input_tokens=sum(int(r.attributes.get(A.GEN_AI_USAGE_INPUT_TOKENS, 0)) for r in chats),
        output_tokens=sum(int(r.attributes.get(A.GEN_AI_USAGE_OUTPUT_TOKENS, 0)) for r in chats),
        requests=len(chats),
        tool_calls=sum(1 for r in below if r.operation == A.OP_EXECUTE_TOOL),
        tasks=tasks,
        root=root,
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [line.format(*header), line.format(*("-" * w for w in widths))] + [line.format(*r) for r in rows]


def timeline(summary: Summary, width: int = _TIMELINE_WIDTH) -> list[str]:
    """One bar per task, placed and scaled by its start and end within the crew's run."""
    start, span = summary.root.start_ns, max(summary.root.end_ns - summary.root.start_ns, 1)
    label = max((len(t.name) for t in summary.tasks), default=4)
    lines = []
    for task in summary.tasks:
        left = round((task.start_ns - start) / span * width)
        right = max(round((task.end_ns - start) / span * width), left + 1)
        bar = " " * left + "█" * (right - left)
        lines.append(f"{task.name:<{label}} |{bar:<{width}}| {task.duration_s * 1000:8.1f} ms")
    return lines


def render_text(summary: Summary, extra: Mapping[str, str] | None = None) -> str:
    """The summary as terminal text."""
    facts = [
        ("Total tokens", str(summary.total_tokens)),
        ("Prompt tokens", str(summary.input_tokens)),
        ("Completion tokens", str(summary.output_tokens)),
        ("Requests", str(summary.requests)),
        ("Tool calls", str(summary.tool_calls)),
        ("Execution time", f"{summary.duration_s:.3f} s"),
        *(extra or {}).items(),
    ]
    lines = [f"Trace {summary.trace_id}  crew {summary.crew!r}  {summary.status}"]
    lines += [f"  {key:<18} {value}" for key, value in facts]
    rows = [(t.name, t.agent, t.model, t.status, f"{t.duration_s * 1000:.1f} ms") for t in summary.tasks]
    lines += ["", "Tasks", *_table(("task", "agent", "model", "status", "duration"), rows)]
    lines += ["", "Timeline", *timeline(summary)]
    return "\n".join(lines)
