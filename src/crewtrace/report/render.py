"""A run's summary as terminal text (the sections of CrewAI's Traces page) or as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from crewtrace.report.summary import Failure, Summary, TaskDetail

TIMELINE_WIDTH = 48
_TEXT_WIDTH = 100


def _money(value: float | None) -> str:
    return "n/a (no price)" if value is None else f"${value:.6f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    formatted = [line.format(*header), line.format(*("-" * w for w in widths))] + [line.format(*r) for r in rows]
    return [text.rstrip() for text in formatted]


def _block(text: str, indent: str = "  ") -> list[str]:
    if not text:
        return [f"{indent}(none)"]
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, _TEXT_WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent]
    return lines


def timeline(summary: Summary, width: int = TIMELINE_WIDTH) -> list[str]:
    """One bar per task, placed and scaled by its start and end in the run: parallel tasks overlap.

    A bar covers every cell its task touches (start rounded down, end up), so tasks that overlap in time,
    however briefly, share a cell.
    """
    start, length = summary.start_ns, max(summary.end_ns - summary.start_ns, 1)
    label = max((len(t.name) for t in summary.tasks), default=4)
    lines = []
    for task in summary.tasks:
        left = min(math.floor((task.start_ns - start) / length * width), width - 1)
        right = min(max(math.ceil((task.end_ns - start) / length * width), left + 1), width)
        bar = " " * left + ("▓" if task.status == "failed" else "█") * (right - left)
        lines.append(f"{task.name:<{label}} |{bar:<{width}}| {_ms(task.duration_s):>10}  {task.agent}")
    return lines or ["(no tasks)"]


def _failure_lines(failures: Sequence[Failure]) -> list[str]:
    if not failures:
        return ["  none"]
    return [f"  {f.kind}: {f.name} [{f.error_type}] {f.message}".rstrip() for f in failures]


def render_text(summary: Summary, extra: Mapping[str, str] | None = None) -> str:
    """Execution summary, tasks and agents, final output, timeline and failure points."""
    facts = [
        ("Total tokens", str(summary.total_tokens)),
        ("Prompt tokens", f"{summary.input_tokens} ({summary.cached_input_tokens} cached)"),
        ("Completion tokens", str(summary.output_tokens)),
        ("Requests", str(summary.requests)),
        ("Tool calls", str(summary.tool_calls)),
        ("Execution time", _ms(summary.duration_s)),
        ("Estimated cost", _money(summary.cost_usd)),
        *(extra or {}).items(),
    ]
    lines = [f"Execution summary: {summary.crew!r} {summary.status}  (trace {summary.trace_id})"]
    lines += [f"  {key:<18} {value}" for key, value in facts]
    rows = [
        (str(t.number), t.name, t.agent, t.model, t.status, _ms(t.duration_s), str(t.tokens), _money(t.cost_usd))
        for t in summary.tasks
    ]
    header = ("#", "task", "agent", "LLM", "status", "time", "tokens", "cost")
    lines += ["", "Tasks and agents", *["  " + line for line in _table(header, rows)]]
    lines += ["", "Final output", *_block(summary.final_output)]
    lines += ["", "Timeline", *["  " + line for line in timeline(summary)]]
    lines += ["", "Failure points", *_failure_lines(summary.failures)]
    return "\n".join(lines)


def render_task(detail: TaskDetail) -> str:
    """The detailed view of one task."""
    lines = [f"Task {detail.name!r}: {detail.status}, {_ms(detail.duration_s)}, agent {detail.agent}"]
    for title, text in (
        ("Description", detail.description),
        ("Expected output", detail.expected_output),
        ("Input (context)", detail.context),
        ("Output", detail.output),
    ):
        lines += ["", title, *_block(text)]
    lines += ["", f"LLM calls: {detail.llm_calls}"]
    lines += ["", "Tool usage", *([f"  {name}: {status}" for name, status in detail.tool_calls] or ["  none"])]
    lines += ["", "Agent thoughts", *([f"  - {t}" for t in detail.thoughts] or ["  none"])]
    lines += ["", "Failure points", *_failure_lines(detail.failures)]
    return "\n".join(lines)


def as_json(summary: Summary, detail: TaskDetail | None = None) -> str:
    """The same facts, machine-readable."""
    data: dict[str, Any] = dataclasses.asdict(summary)
    data.pop("records")
    data["total_tokens"] = summary.total_tokens
    if detail is not None:
        data["task_detail"] = dataclasses.asdict(detail)
    return json.dumps(data, indent=2, ensure_ascii=False)
