"""``crewtrace runs``: the executions in an OTLP-JSON-lines file or in Jaeger, newest first, filtered.

Each run is summarised by the same ``summarize_run`` as ``crewtrace summary``, so their numbers agree by
construction.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crewtrace.report.findings import Rules, failed_llm_calls, findings
from crewtrace.report.records import SpanRecord
from crewtrace.report.render import money, ms, summary_data, when
from crewtrace.report.summary import Summary, run_roots, summarize_run

STATUSES = ("completed", "failed")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_LIMIT = 20
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# The fields of a summary that a run's row carries (`runs --json`): the same values as `summary --json`.
RUN_FIELDS = (
    "trace_id",
    "span_id",
    "crew",
    "kind",
    "status",
    "start_ns",
    "end_ns",
    "duration_s",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "total_tokens",
    "requests",
    "unpriced_requests",
    "tool_calls",
    "cost_usd",
    "session_id",
    "user_id",
    "tags",
    "metadata",
)


@dataclass(frozen=True)
class RunFilter:
    """Which runs to show: all of them match a filter left as None."""

    session: str | None = None
    user: str | None = None
    status: str | None = None  # "completed" | "failed"
    since_ns: int | None = None  # runs that started at or after this time
    limit: int = DEFAULT_LIMIT

    def matches(self, run: Summary) -> bool:
        """Whether ``run`` passes every filter set."""
        return (
            (self.session is None or run.session_id == self.session)
            and (self.user is None or run.user_id == self.user)
            and (self.status is None or run.status == self.status)
            and (self.since_ns is None or run.start_ns >= self.since_ns)
        )


def _bad(option: str, value: str, accepted: str) -> ValueError:
    return ValueError(f"crewtrace runs: {option} {value!r} is not valid: give {accepted}")


def parse_since(value: str, now: float | None = None) -> int:
    """``--since``: an ISO date or date and time (local time unless it has an offset) or a duration back from
    now (30s, 30m, 2h, 7d, 1w), as nanoseconds since the epoch."""
    text = value.strip()
    duration = _DURATION.fullmatch(text)
    if duration:
        seconds = int(duration.group(1)) * _UNIT_SECONDS[duration.group(2)]
        return int(((time.time() if now is None else now) - seconds) * 1e9)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(
            "--since", value, "an ISO date or date and time (2025-11-02, 2025-11-02T14:30) or a duration (30m, 2h, 7d)"
        ) from None
    aware = moment if moment.tzinfo is not None else moment.astimezone()  # no offset: local time
    return (aware - _EPOCH) // timedelta(microseconds=1) * 1000  # exact: no float rounding


def make_filter(
    session: str | None, user: str | None, status: str | None, since: str | None, limit: str | int | None
) -> RunFilter:
    """The filter from the command line's values; a one-line ValueError naming the option for a bad one."""
    if status is not None and status not in STATUSES:
        raise _bad("--status", status, " or ".join(STATUSES))
    count = DEFAULT_LIMIT
    if limit is not None:
        try:
            count = int(limit)
        except ValueError:
            count = 0
        if count < 1:
            raise _bad("--limit", str(limit), "a whole number of runs, 1 or more")
    return RunFilter(session, user, status, None if since is None else parse_since(since), count)


def all_runs(records: Sequence[SpanRecord]) -> list[Summary]:
    """Every run in ``records``, summarised, newest first."""
    by_trace: dict[str, list[SpanRecord]] = {}
    for record in records:
        by_trace.setdefault(record.trace_id, []).append(record)
    runs = [summarize_run(by_trace[root.trace_id], root) for root in run_roots(records)]
    return sorted(runs, key=lambda run: run.start_ns, reverse=True)


def select(runs: Sequence[Summary], where: RunFilter) -> list[Summary]:
    """The runs (newest first, as ``all_runs`` gives them) that pass ``where``, at most ``where.limit``."""
    return [run for run in runs if where.matches(run)][: where.limit]


@dataclass(frozen=True)
class Notes:
    """What ``runs`` adds to each run's row: its findings, and the LLM calls that failed inside it."""

    findings: int
    failed_llm_calls: int


def notes(shown: Sequence[Summary], everything: Sequence[Summary], rules: Rules | None = None) -> dict[str, Notes]:
    """Notes for each shown run (by its span id); ``everything`` is the source's runs (their history)."""
    return {run.span_id: Notes(len(findings(run, everything, rules)), failed_llm_calls(run)) for run in shown}


def run_data(run: Summary, note: Notes) -> dict[str, Any]:
    """One run's row as data: the summary's own values (``summary --json``) for RUN_FIELDS, and its notes."""
    data = summary_data(run)
    return {key: data[key] for key in RUN_FIELDS} | {
        "findings": note.findings,
        "failed_llm_calls": note.failed_llm_calls,
    }


def runs_json(runs: Sequence[Summary], noted: Mapping[str, Notes]) -> str:
    """The runs as a JSON array, newest first."""
    return json.dumps([run_data(run, noted[run.span_id]) for run in runs], indent=2, ensure_ascii=False)


def status_note(run: Summary, note: Notes) -> str:
    """The status a runs list shows: a completed run whose LLM calls failed inside it (CrewAI retried) says so."""
    if run.status == "completed" and note.failed_llm_calls:
        return f"completed ({note.failed_llm_calls} failed call{'s' if note.failed_llm_calls > 1 else ''} retried)"
    return run.status


def render_runs(runs: Sequence[Summary], noted: Mapping[str, Notes]) -> str:
    """The runs as a table, newest first (start in local time)."""
    if not runs:
        return "no runs match"
    header: tuple[str, ...] = ("start", "crew / flow", "status", "time", "tokens", "requests", "cost", "findings")
    header += ("session", "user")
    header += ("trace id",)
    rows = [
        (
            when(run.start_ns),
            run.crew,
            status_note(run, noted[run.span_id]),
            ms(run.duration_s),
            str(run.total_tokens),
            str(run.requests),
            money(run.cost_usd),
            str(noted[run.span_id].findings),
            run.session_id or "-",
            run.user_id or "-",
            run.trace_id,
        )
        for run in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(line.format(*row).rstrip() for row in [header, *rows])
