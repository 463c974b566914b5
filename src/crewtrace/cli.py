"""The ``crewtrace`` command line: ``demo``, ``summary``, ``runs`` and ``report``."""

from __future__ import annotations

import argparse
import os
import string
import sys
from typing import TYPE_CHECKING

from crewtrace.version import __version__

if TYPE_CHECKING:
    from crewtrace.report.jaeger import Jaeger
    from crewtrace.report.records import SpanRecord

_TRACE_ID_LENGTH = 32
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a tool killed by a closed pipe returns (`cat file | head`)


def _source(command: argparse.ArgumentParser) -> None:
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="an OTLP-JSON-lines file (exporter='file', or the Collector's)")
    source.add_argument("--jaeger", metavar="URL", help="Jaeger's query base URL, e.g. http://localhost:16686")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crewtrace", description="OpenTelemetry tracing for CrewAI crews.")
    parser.add_argument("--version", action="version", version=f"crewtrace {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an offline demo crew and show its trace")
    demo.add_argument("--endpoint", help="OTLP endpoint to export to (default: OTEL_* settings or localhost)")
    demo.add_argument("--file", dest="file_path", help="write the trace to this OTLP-JSON-lines file instead")
    demo.add_argument("--report", metavar="DIR", help="also write the run as a web page into DIR (crewtrace report)")
    summary = commands.add_parser(
        "summary",
        help="show one crew run as CrewAI's Traces page does",
        description="Summarise one run from an OTLP-JSON-lines file or from Jaeger's query API.",
    )
    _source(summary)
    summary.add_argument("--trace-id", help="the run's trace id or a unique prefix of it (default: the latest run)")
    summary.add_argument("--task", help="also show the detail of this task (its name or number)")
    summary.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    runs = commands.add_parser(
        "runs",
        help="list the runs, newest first",
        description="List the crew and flow runs in an OTLP-JSON-lines file or in Jaeger, newest first.",
    )
    _source(runs)
    runs.add_argument("--service", help="with --jaeger: only this service's traces (default: every service)")
    runs.add_argument("--session", help="only runs of this session id")
    runs.add_argument("--user", help="only runs of this user id")
    runs.add_argument("--status", help="only completed or failed runs")
    runs.add_argument("--since", help="only runs started since: an ISO date/time, or a duration back (30m, 2h, 7d)")
    runs.add_argument("--limit", help="at most this many runs (default 20)")
    runs.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    report = commands.add_parser(
        "report",
        help="write the runs as a static web site (index and one page per run)",
        description="Write every run in an OTLP-JSON-lines file or in Jaeger as a self-contained static site.",
    )
    _source(report)
    report.add_argument("--service", help="with --jaeger: only this service's traces (default: every service)")
    report.add_argument("--since", help="only runs started since: an ISO date/time, or a duration back (30m, 2h, 7d)")
    report.add_argument("--out", default="crewtrace-report", help="the directory to write (default: crewtrace-report)")
    return parser


def _read_file(command: str, path: str) -> list[SpanRecord]:
    from crewtrace.report.records import read_otlp_file

    try:
        return read_otlp_file(path)
    except OSError as exc:
        raise ValueError(f"crewtrace {command}: cannot read {path}: {exc.strerror or exc}") from None


def _jaeger(url: str) -> Jaeger:
    from crewtrace.report.jaeger import Jaeger

    return Jaeger.from_env(url)


def _summary(args: argparse.Namespace) -> str:
    from crewtrace.report.findings import Rules
    from crewtrace.report.findings_view import review, review_data, review_lines
    from crewtrace.report.render import as_json, render_task, render_text
    from crewtrace.report.runs import all_runs
    from crewtrace.report.summary import summarize
    from crewtrace.report.task_detail import task_detail

    trace_id = (args.trace_id or "").strip()
    whole_id = len(trace_id) == _TRACE_ID_LENGTH and all(c in string.hexdigits for c in trace_id)
    if args.jaeger and whole_id:  # (only hex goes into the URL)
        records = _jaeger(args.jaeger).trace(trace_id)
    elif args.jaeger:  # the latest run, or a prefix: search Jaeger's newest traces
        records = _jaeger(args.jaeger).recent()
    else:
        records = _read_file("summary", args.file)
    summary = summarize(records, trace_id or None)
    detail = task_detail(summary, args.task) if args.task else None
    others = [run for run in all_runs(records) if run.span_id != summary.span_id]
    found = review(summary, others, Rules.from_env())
    if args.json:
        return as_json(summary, detail, review_data(found))
    text = render_text(summary) + "\n\n" + "\n".join(review_lines(found))
    return text + ("\n\n" + render_task(detail) if detail else "")


def _runs(args: argparse.Namespace) -> str:
    from crewtrace.report.findings import Rules
    from crewtrace.report.runs import all_runs, make_filter, notes, render_runs, runs_json, select

    where = make_filter(args.session, args.user, args.status, args.since, args.limit)
    if args.service and not args.jaeger:
        raise ValueError("crewtrace runs: --service goes with --jaeger")
    if args.jaeger:
        records = _jaeger(args.jaeger).recent(where.since_ns, args.service)
    else:
        records = _read_file("runs", args.file)
    everything = all_runs(records)
    chosen = select(everything, where)
    noted = notes(chosen, everything, Rules.from_env())
    return runs_json(chosen, noted) if args.json else render_runs(chosen, noted)


def _report(args: argparse.Namespace) -> str:
    from pathlib import Path

    from crewtrace.report.runs import all_runs, parse_since
    from crewtrace.report.site import write_site

    if args.service and not args.jaeger:
        raise ValueError("crewtrace report: --service goes with --jaeger")
    since = None if args.since is None else parse_since(args.since)
    records = _jaeger(args.jaeger).recent(since, args.service) if args.jaeger else _read_file("report", args.file)
    runs = [run for run in all_runs(records) if since is None or run.start_ns >= since]
    try:
        index = write_site(runs, Path(args.out))
    except OSError as exc:
        raise ValueError(f"crewtrace report: cannot write {args.out}: {exc.strerror or exc}") from None
    return f"crewtrace report: {len(runs)} runs; open {index.resolve()}"


def _quiet_broken_pipe() -> int:
    """The reader went away (``crewtrace runs f | head``): stop quietly, as command-line tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush has somewhere to go
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from crewtrace.report.render import json_safe, terminal_safe

    try:
        if args.command == "demo":
            from crewtrace.demo.run import run_demo

            run_demo(sys.stdout, endpoint=args.endpoint, file_path=args.file_path, report_dir=args.report)
        else:
            safe = json_safe if getattr(args, "json", False) else terminal_safe
            print(safe({"summary": _summary, "runs": _runs, "report": _report}[args.command](args)))
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except ValueError as exc:
        print(terminal_safe(str(exc)), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
