"""A run's summary as terminal text (the sections of CrewAI's Traces page) or as JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crewtrace.report.summary import AgentRow, Failure, Summary
from crewtrace.report.task_detail import LLMCall, TaskDetail, ToolCall

TIMELINE_WIDTH = 48
_TEXT_WIDTH = 100


NOT_CAPTURED = "(not captured)"

# Characters a terminal acts on instead of showing (C0 and C1 controls but newline and tab, DEL, and the bidi
# overrides and isolates that reorder what is shown), written out as escapes.
_UNSAFE = [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_TERMINAL_SAFE = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _UNSAFE}


_JSON_SAFE = {code: f"\\u{code:04x}" for code in _UNSAFE}


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on shown escaped: a trace's texts come from LLMs and
    tools, and an ESC sequence in one could retitle the terminal, clear it or write the clipboard."""
    return text.translate(_TERMINAL_SAFE)


def json_safe(text: str) -> str:
    """JSON text with the same characters written as JSON's own ``\\uXXXX`` escapes, so it stays valid JSON
    (json.dumps escapes C0 controls itself, but not DEL, C1 or the bidi controls)."""
    return text.translate(_JSON_SAFE)


def money(value: float | None) -> str:
    """A cost: "unknown" when no price was known, "free" for free (local) models only, else dollars."""
    if value is None:
        return "unknown"
    return "free" if value == 0 else f"${value:.6f}"


def _total_cost(summary: Summary) -> str:
    if summary.cost_usd is None:
        return "unknown (no price for the model)"
    unpriced = summary.unpriced_requests
    return money(summary.cost_usd) + (f", plus {unpriced} requests with no price" if unpriced else "")


def when(ns: int) -> str:
    """A span time as local date and time, to the second."""
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def ms(seconds: float) -> str:
    """A duration: milliseconds below ten seconds, else seconds."""
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    formatted = [line.format(*header), line.format(*("-" * w for w in widths))] + [line.format(*r) for r in rows]
    return [text.rstrip() for text in formatted]


def _block(text: str | None, indent: str = "  ") -> list[str]:
    if text is None:
        return [f"{indent}{NOT_CAPTURED}"]
    if not text:
        return [f"{indent}(none)"]
    lines: list[str] = []
    width = _TEXT_WIDTH - len(indent)
    for paragraph in text.splitlines() or [""]:
        paragraph = _LONG_WORD.sub(lambda word: _sliced(word.group(0), width), paragraph)
        lines += textwrap.wrap(paragraph, _TEXT_WIDTH, initial_indent=indent, subsequent_indent=indent) or [indent]
    return lines


# textwrap cuts a word longer than a line one line at a time, copying the rest each time: quadratic on a
# megabyte without a space. Such words are sliced to lines first (what textwrap would do), in linear time.
_LONG_WORD = re.compile(rf"\S{{{_TEXT_WIDTH // 2},}}")


def _sliced(word: str, width: int) -> str:
    return " ".join(word[i : i + width] for i in range(0, len(word), width))


def timeline(summary: Summary, width: int = TIMELINE_WIDTH) -> list[str]:
    """One bar per task, placed and scaled by its start and end in the run: parallel tasks overlap.

    A bar covers every cell its task touches (start rounded down, end up), so tasks that overlap in time,
    however briefly, share a cell.
    """
    start, length = summary.start_ns, max(summary.end_ns - summary.start_ns, 1)
    label = max((len(t.name) for t in summary.tasks), default=4)
    lines = []
    for task in summary.tasks:
        # Clamped to the track: a hand-made file may put a task outside its run, or end a run before it starts.
        left = min(max(math.floor(min(max(task.start_ns - start, 0), length) / length * width), 0), width - 1)
        right = min(max(math.ceil(min(max(task.end_ns - start, 0), length) / length * width), left + 1), width)
        bar = " " * left + ("▓" if task.status == "failed" else "█") * (right - left)
        lines.append(f"{task.name:<{label}} |{bar:<{width}}| {ms(task.duration_s):>10}  {task.agent}")
    return lines or ["(no tasks)"]


def _failure_lines(failures: Sequence[Failure]) -> list[str]:
    if not failures:
        return ["  none"]
    return [
        f"  {f.kind}: {f.name} [{f.error_type}] {NOT_CAPTURED if f.message is None else f.message}".rstrip()
        for f in failures
    ]


def _labels(summary: Summary) -> list[tuple[str, str]]:
    facts = [("Session", summary.session_id), ("User", summary.user_id), ("Tags", ", ".join(summary.tags) or None)]
    metadata = ", ".join(f"{k}={v}" for k, v in summary.metadata.items())
    return [(k, v) for k, v in [*facts, ("Metadata", metadata or None)] if v]


def _agent_rows(agents: Sequence[AgentRow]) -> list[str]:
    rows = [
        [a.role, ", ".join(a.models) or "-", a.status, ms(a.duration_s), str(a.requests), str(a.tokens)] for a in agents
    ]
    rows = [[*row, money(a.cost_usd)] for row, a in zip(rows, agents, strict=True)]
    header = ("agent", "LLM", "status", "time", "requests", "tokens", "cost")
    return ["  " + line for line in _table(header, rows)] if rows else ["  (no agents)"]


def render_text(summary: Summary, extra: Mapping[str, str] | None = None) -> str:
    """Execution summary, tasks and agents, final output, timeline and failure points."""
    facts = [
        ("Total tokens", str(summary.total_tokens)),
        ("Prompt tokens", f"{summary.input_tokens} ({summary.cached_input_tokens} cached)"),
        ("Completion tokens", str(summary.output_tokens)),
        ("Requests", str(summary.requests)),
        ("Tool calls", str(summary.tool_calls)),
        ("Started", when(summary.start_ns)),
        ("Execution time", ms(summary.duration_s)),
        ("Estimated cost", _total_cost(summary)),
        *_labels(summary),
        *(extra or {}).items(),
    ]
    lines = [f"Execution summary: {summary.crew!r} {summary.status}  (trace {summary.trace_id})"]
    lines += [f"  {key:<18} {value}" for key, value in facts]
    rows = [
        (str(t.number), t.name, t.agent, t.model, t.status, ms(t.duration_s), str(t.tokens), money(t.cost_usd))
        for t in summary.tasks
    ]
    header = ("#", "task", "agent", "LLM", "status", "time", "tokens", "cost")
    lines += ["", "Tasks and agents", *["  " + line for line in _table(header, rows)]]
    lines += ["", "Cost per agent", *_agent_rows(summary.agents)]
    lines += ["", "Final output", *_block(summary.final_output)]
    lines += ["", "Timeline", *["  " + line for line in timeline(summary)]]
    lines += ["", "Failure points", *_failure_lines(summary.failures)]
    return "\n".join(lines)


def _llm_line(n: int, call: LLMCall) -> str:
    tokens = f"{call.input_tokens} in ({call.cached_input_tokens} cached), {call.output_tokens} out"
    return f"  {n}. {call.model}  {call.status}  {ms(call.duration_s)}  {tokens}  {money(call.cost_usd)}"


def _tool_lines(n: int, call: ToolCall) -> list[str]:
    lines = [f"  {n}. {call.name}: {call.status}, {ms(call.duration_s)}"]
    lines += ["     arguments:", *_block(call.arguments, "       ")]
    if call.status == "failed":
        error = NOT_CAPTURED if call.error is None else call.error
        lines += [f"     error [{call.error_type}]:", *_block(error, "       ")]
    else:
        lines += ["     result:", *_block(call.result, "       ")]
    return lines


def render_task(detail: TaskDetail) -> str:
    """The detailed view of one task: its texts, each LLM call's tokens and cost, each tool call's arguments
    and result."""
    lines = [f"Task {detail.name!r} (#{detail.number}): {detail.status}, {ms(detail.duration_s)}"]
    facts = [
        ("Agent", detail.agent),
        ("LLM", detail.model),
        ("Task key", detail.task_key or "-"),
        ("Task id", detail.task_id or "-"),
        ("Start", when(detail.start_ns)),
        ("End", when(detail.end_ns)),
        ("Tokens", str(detail.tokens)),
        ("Cost", money(detail.cost_usd)),
    ]
    lines += [f"  {key:<9} {value}" for key, value in facts]
    for title, text in (
        ("Description", detail.description),
        ("Expected output", detail.expected_output),
        ("Input (context)", detail.context),
        ("Output", detail.output),
    ):
        lines += ["", title, *_block(text)]
    llm = [_llm_line(n, c) for n, c in enumerate(detail.llm_calls, 1)]
    lines += ["", f"LLM calls ({len(detail.llm_calls)})", *(llm or ["  none"])]
    tools = [line for n, c in enumerate(detail.tool_calls, 1) for line in _tool_lines(n, c)]
    lines += ["", f"Tool calls ({len(detail.tool_calls)})", *(tools or ["  none"])]
    thoughts = [NOT_CAPTURED] if detail.thoughts is None else [f"- {t}" for t in detail.thoughts] or ["none"]
    lines += ["", "Agent thoughts", *["  " + t for t in thoughts]]
    lines += ["", "Failure points", *_failure_lines(detail.failures)]
    return "\n".join(lines)


def summary_data(summary: Summary) -> dict[str, Any]:
    """The summary as plain data (what ``--json`` prints), without its span records."""
    data: dict[str, Any] = dataclasses.asdict(summary)
    data.pop("records")
    data["total_tokens"] = summary.total_tokens
    for agent, row in zip(data["agents"], summary.agents, strict=True):
        agent["tokens"] = row.tokens
    return data


def as_json(summary: Summary, detail: TaskDetail | None = None, more: Mapping[str, Any] | None = None) -> str:
    """The same facts, machine-readable (with ``more``, e.g. the findings, at the top level)."""
    data = summary_data(summary) | dict(more or {})
    if detail is not None:
        data["task_detail"] = dataclasses.asdict(detail)
    return json.dumps(data, indent=2, ensure_ascii=False)
