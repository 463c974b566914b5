"""``crewtrace report``: the runs as a self-contained static site, the open equivalent of CrewAI's Traces page.

``index.html`` lists every run, newest first; ``runs/<trace id>-<span id>.html`` is one run's page
(run_page.py). Pages hold their stylesheet inline and load nothing else: they open from disk and from any
static server, with no network. Every number comes from the same summaries as ``crewtrace summary``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path

from crewtrace.report.findings_view import review
from crewtrace.report.render import money, ms, when
from crewtrace.report.run_page import HEAD, run_page
from crewtrace.report.runs import Notes, notes, status_note
from crewtrace.report.summary import Summary


def stylesheet() -> str:
    """The report's CSS, shipped beside this module."""
    return resources.files("crewtrace.report").joinpath("site.css").read_text(encoding="utf-8")


def page_name(run: Summary) -> str:
    """A run's page, relative to the site's root (a trace may hold more than one run)."""
    return f"runs/{run.trace_id}-{run.span_id}.html"


def index_page(runs: Sequence[Summary], css: str, noted: Mapping[str, Notes] | None = None) -> str:
    """The runs list: start, crew or flow, status, time, tokens, requests, cost, findings, session, user, trace id."""
    noted = noted or notes(runs, runs)
    rows = "".join(
        f'<tr data-trace="{escape(run.trace_id)}"><td>{escape(when(run.start_ns))}</td>'
        f'<td><a href="{escape(page_name(run))}">{escape(run.crew)}</a></td>'
        f'<td class="status-{run.status}">{escape(status_note(run, noted[run.span_id]))}</td>'
        f'<td class="num">{escape(ms(run.duration_s))}</td>'
        f'<td class="num">{run.total_tokens:,}</td><td class="num">{run.requests}</td>'
        f'<td class="num">{escape(money(run.cost_usd))}</td><td class="num">{noted[run.span_id].findings}</td>'
        f"<td>{escape(run.session_id or '-')}</td>"
        f"<td>{escape(run.user_id or '-')}</td><td><code>{escape(run.trace_id)}</code></td></tr>"
        for run in runs
    )
    names = ("Start", "Crew / flow", "Status", "Time", "Tokens", "Requests", "Cost", "Findings", "Session", "User")
    numeric = ("Time", "Tokens", "Requests", "Cost", "Findings")
    header = "".join(f'<th class="{"num" if name in numeric else ""}">{name}</th>' for name in (*names, "Trace id"))
    body = f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>" if runs else "<p>No runs.</p>"
    return (
        '<!doctype html><html lang="en"><head>' + HEAD + "<title>Runs · crewtrace</title>"
        f"<style>{css}</style></head><body><header><h1>Runs</h1>"
        f'<div class="sub">{len(runs)} crew and flow executions, newest first</div></header>'
        f'<main><section id="runs">{body}</section></main>'
        "<footer>Made by crewtrace from the runs' spans.</footer></body></html>"
    )


def write_site(runs: Sequence[Summary], out: Path) -> Path:
    """Write the site for ``runs`` (newest first, as ``runs.all_runs`` gives them) into ``out``, created if
    needed; returns index.html."""
    css = stylesheet()
    (out / "runs").mkdir(mode=0o700, parents=True, exist_ok=True)
    pages = (out / "runs").resolve()
    for run in runs:
        page = (out / page_name(run)).resolve()
        if page.parent != pages:  # ids are hex by then (records.py); never write outside the site, whatever
            raise ValueError(f"crewtrace report: run id {run.trace_id[:40]!r} does not name a page in {out}")
        _write_private(page, run_page(run, css, found=review(run, runs)))
    index = out / "index.html"
    _write_private(index, index_page(runs, css, notes(runs, runs)))
    return index


def _write_private(path: Path, text: str) -> None:
    """Write a page only its owner may read (0600, whatever the umask): pages hold prompts and answers."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
