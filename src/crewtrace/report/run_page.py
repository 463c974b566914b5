"""One run as an HTML page: every section of CrewAI's Traces page, from the same Summary as ``summary``.

Execution summary, tasks and agents, cost per agent, final output, a timeline (bars placed by time, so
parallel work overlaps; each task opens to its agent, LLM and tool spans), the waterfall of every span
(waterfall.py), each task's detail, the failure points, each linked to its span, and the findings
(findings_page.py). No script: ``<details>`` opens natively, and a link to a span
inside a closed task opens it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape

from crewtrace.report.findings_page import findings_section
from crewtrace.report.findings_view import Review, review
from crewtrace.report.records import SpanRecord
from crewtrace.report.render import NOT_CAPTURED, money, ms, when
from crewtrace.report.spans import Failure, children_of
from crewtrace.report.summary import Summary
from crewtrace.report.task_detail import TaskDetail, detail_of
from crewtrace.report.waterfall import track, waterfall

_MAX_DEPTH = 3  # deeper spans are drawn at this indent


# Every page's head: no script may run and nothing may load, whatever a trace's text holds (styles are inline).
HEAD = (
    '<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">"
)


def span_anchor(span_id: str) -> str:
    """The id of a span's element on the page (links to failure points point here); escaped, although the
    readers accept hex ids only."""
    return escape(f"span-{span_id}")


def _text(value: str | None, empty: str = "(none)") -> str:
    """A block of captured text, or says it was not captured."""
    if value is None:
        return f'<p class="not-captured">{NOT_CAPTURED}</p>'
    if not value:
        return f'<p class="not-captured">{empty}</p>'
    return f'<pre class="text">{escape(value)}</pre>'


def _cell(value: object, cls: str = "") -> str:
    return f'<td class="{cls}">{escape(str(value))}</td>' if cls else f"<td>{escape(str(value))}</td>"


def _status(status: str) -> str:
    return f'<td class="status-{escape(status)}">{escape(status)}</td>'


def _table(header: Sequence[str], rows: Iterable[str], numeric: Sequence[int] = ()) -> str:
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{escape(h)}</th>' for i, h in enumerate(header))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _execution_summary(run: Summary) -> str:
    cards = [
        ("Total tokens", f"{run.total_tokens:,}"),
        ("Prompt tokens", f"{run.input_tokens:,}"),
        ("Completion tokens", f"{run.output_tokens:,}"),
        ("Cached prompt tokens", f"{run.cached_input_tokens:,}"),
        ("Requests", f"{run.requests:,}"),
        ("Tool calls", f"{run.tool_calls:,}"),
        ("Execution time", ms(run.duration_s)),
        ("Estimated cost", money(run.cost_usd)),
    ]
    card_html = "".join(
        f'<div class="card" data-label="{escape(label)}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div></div>'
        for label, value in cards
    )
    facts = [
        (run.kind.capitalize(), run.crew),
        ("Status", run.status),
        ("Started", when(run.start_ns)),
        ("Trace id", run.trace_id),
    ]
    if run.unpriced_requests:
        facts.append(("Requests with no price", str(run.unpriced_requests)))
    facts += [("Session", run.session_id or "-"), ("User", run.user_id or "-")]
    tags = "".join(f'<span class="tag">{escape(tag)}</span>' for tag in run.tags) or "-"
    metadata = ", ".join(f"{key}={value}" for key, value in run.metadata.items()) or "-"
    fact_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    fact_html += f"<dt>Tags</dt><dd>{tags}</dd><dt>Metadata</dt><dd>{escape(metadata)}</dd>"
    return (
        f'<section id="summary"><h2>Execution summary</h2><div class="cards">{card_html}</div>'
        f'<dl class="facts" style="margin-top:12px">{fact_html}</dl><h3>Inputs</h3>{_text(run.inputs)}</section>'
    )


def _tasks_and_agents(run: Summary) -> str:
    rows = (
        f'<tr><td>{t.number}</td><td><a href="#task-{t.number}">{escape(t.name)}</a></td>{_cell(t.agent)}'
        f"{_cell(t.model)}{_status(t.status)}{_cell(ms(t.duration_s), 'num')}{_cell(f'{t.tokens:,}', 'num')}"
        f"{_cell(t.requests, 'num')}{_cell(money(t.cost_usd), 'num')}</tr>"
        for t in run.tasks
    )
    header = ("#", "Task", "Agent", "LLM", "Status", "Time", "Tokens", "Requests", "Cost")
    return f'<section id="tasks"><h2>Tasks and agents</h2>{_table(header, rows, (5, 6, 7, 8))}</section>'


def _cost_per_agent(run: Summary) -> str:
    rows = (
        f"<tr>{_cell(a.role)}{_cell(', '.join(a.models) or '-')}{_cell(', '.join(a.tasks) or '-')}{_status(a.status)}"
        f"{_cell(ms(a.duration_s), 'num')}{_cell(a.requests, 'num')}{_cell(f'{a.input_tokens:,}', 'num')}"
        f"{_cell(f'{a.output_tokens:,}', 'num')}{_cell(money(a.cost_usd), 'num')}</tr>"
        for a in run.agents
    )
    header = ("Agent", "LLM", "Tasks", "Status", "Time", "Requests", "Prompt", "Completion", "Cost")
    return f'<section id="agents"><h2>Cost per agent</h2>{_table(header, rows, (4, 5, 6, 7, 8))}</section>'


def _bar(record: SpanRecord, run: Summary, depth: int) -> str:
    """One timeline row: the span's name, its bar placed by time, its duration."""
    return (
        f'<div class="row depth-{min(depth, _MAX_DEPTH)}" id="{span_anchor(record.span_id)}" '
        f'data-start="{record.start_ns}" data-end="{record.end_ns}">'
        f'<span class="name" title="{escape(record.name)}">{escape(record.name)}</span>'
        f'{track(record, run)}<span class="time">{escape(ms(record.duration_s))}</span></div>'
    )


def _timeline(run: Summary) -> tuple[str, set[str]]:
    """The timeline section, and the ids of the spans it shows."""
    children = children_of(run.records)
    by_id = {r.span_id: r for r in run.records}
    rows, shown = [], set()
    for task in run.tasks:
        record = by_id[task.span_id]
        shown.add(record.span_id)
        inner: list[str] = []
        stack = [(child, 1) for child in sorted(children.get(record.span_id, []), key=lambda r: -r.start_ns)]
        while stack:  # depth first, in start order
            span, depth = stack.pop()
            shown.add(span.span_id)
            inner.append(_bar(span, run, depth))
            stack += [(c, depth + 1) for c in sorted(children.get(span.span_id, []), key=lambda r: -r.start_ns)]
        summary = f"<summary>{_bar(record, run, 0)}</summary>"
        rows.append(f'<details class="task" data-task="{escape(task.name)}">{summary}{"".join(inner)}</details>')
    body = "".join(rows) or '<p class="not-captured">(no tasks)</p>'
    return f'<section id="timeline" class="timeline"><h2>Timeline</h2>{body}</section>', shown


def _llm_calls(detail: TaskDetail) -> str:
    if not detail.llm_calls:
        return '<p class="not-captured">(no LLM calls)</p>'
    rows = (
        f'<tr><td><a href="#{span_anchor(c.span_id)}">{n}</a></td>{_cell(c.model)}{_status(c.status)}'
        f"{_cell(ms(c.duration_s), 'num')}{_cell(f'{c.input_tokens:,}', 'num')}{_cell(f'{c.output_tokens:,}', 'num')}"
        f"{_cell(f'{c.cached_input_tokens:,}', 'num')}{_cell(money(c.cost_usd), 'num')}</tr>"
        for n, c in enumerate(detail.llm_calls, 1)
    )
    header = ("#", "Model", "Status", "Time", "Prompt", "Completion", "Cached", "Cost")
    return _table(header, rows, (3, 4, 5, 6, 7))


def _tool_calls(detail: TaskDetail) -> str:
    if not detail.tool_calls:
        return '<p class="not-captured">(no tool calls)</p>'
    items = []
    for call in detail.tool_calls:
        outcome = _text(call.result) if call.status == "completed" else _text(call.error, "(no message)")
        items.append(
            f'<li id="tool-{escape(call.span_id)}"><a href="#{span_anchor(call.span_id)}">{escape(call.name)}</a>: '
            f'<span class="status-{call.status}">{call.status}</span> in {escape(ms(call.duration_s))}'
            f"{f' ({escape(call.error_type)})' if call.error_type else ''}"
            f"<div>Arguments</div>{_text(call.arguments)}"
            f"<div>{'Result' if call.status == 'completed' else 'Error'}</div>{outcome}</li>"
        )
    return f"<ol>{''.join(items)}</ol>"


def _task_details(run: Summary) -> str:
    parts = []
    for row in run.tasks:
        detail = detail_of(run, row)
        facts = [
            ("Task key", detail.task_key or "-"),
            ("Task id", detail.task_id or "-"),
            ("Status", detail.status),
            ("Agent", detail.agent),
            ("LLM", detail.model),
            ("Start", when(detail.start_ns)),
            ("End", when(detail.end_ns)),
            ("Execution time", ms(detail.duration_s)),
            ("Tokens", f"{detail.tokens:,}"),
            ("Cost", money(detail.cost_usd)),
        ]
        fact_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
        thoughts = (
            _text(None)
            if detail.thoughts is None
            else "".join(_text(t) for t in detail.thoughts) or '<p class="not-captured">(none)</p>'
        )
        parts.append(
            f'<details class="task-detail" id="task-{row.number}"><summary>{row.number}. {escape(row.name)} '
            f'<span class="status-{row.status}">{row.status}</span></summary><dl class="facts">{fact_html}</dl>'
            f"<h3>Description</h3>{_text(detail.description)}<h3>Expected output</h3>{_text(detail.expected_output)}"
            f"<h3>Input</h3>{_text(detail.context)}<h3>Output</h3>{_text(detail.output)}"
            f"<h3>LLM calls</h3>{_llm_calls(detail)}<h3>Tool usage</h3>{_tool_calls(detail)}"
            f"<h3>Agent thoughts</h3>{thoughts}</details>"
        )
    return f'<section id="task-details"><h2>Task details</h2>{"".join(parts) or "(no tasks)"}</section>'


def _failure_points(failures: Sequence[Failure], shown: set[str]) -> str:
    if not failures:
        return '<section id="failures"><h2>Failure points</h2><p>None: every step completed.</p></section>'
    items = []
    for failure in failures:
        target = f"#{span_anchor(failure.span_id)}" if failure.span_id in shown else "#summary"
        message = NOT_CAPTURED if failure.message is None else failure.message
        items.append(
            f'<li><a href="{target}">{escape(when(failure.time_ns))} {escape(failure.kind)}: {escape(failure.name)}</a>'
            f" [{escape(failure.error_type)}] {escape(message)}</li>"
        )
    return f'<section id="failures"><h2>Failure points</h2><ol class="failures">{"".join(items)}</ol></section>'


def run_page(run: Summary, css: str, index_href: str = "../index.html", found: Review | None = None) -> str:
    """The whole page of one run (``found``: its review, from the source's runs; by default from its own)."""
    found = found or review(run)
    timeline, shown = _timeline(run)
    title = f"{run.crew}: {run.status}, {when(run.start_ns)}"
    final = _text(run.final_output)
    data = json.dumps({"trace_id": run.trace_id, "captured": run.content_captured})
    return (
        f'<!doctype html><html lang="en"><head>{HEAD}<title>{escape(title)} · crewtrace</title>'
        f"<style>{css}</style></head><body data-run='{escape(data)}'><header><h1>{escape(run.crew)}</h1>"
        f'<div class="sub"><a href="{escape(index_href)}">All runs</a> · trace {escape(run.trace_id)}</div>'
        "</header><main>"
        f"{_execution_summary(run)}{_tasks_and_agents(run)}{_cost_per_agent(run)}"
        f'<section id="final-output"><h2>Final output</h2>{final}</section>'
        f"{timeline}{waterfall(run)}{_task_details(run)}{_failure_points(run.failures, shown)}"
        f"{findings_section(found)}</main>"
        "<footer>Made by crewtrace from the run's spans.</footer></body></html>"
    )
