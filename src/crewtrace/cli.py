"""The ``crewtrace`` command line: ``demo`` and ``summary``."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crewtrace", description="OpenTelemetry tracing for CrewAI crews.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an offline demo crew and show its trace")
    demo.add_argument("--endpoint", help="OTLP endpoint to export to (default: OTEL_* settings or localhost)")
    demo.add_argument("--file", dest="file_path", help="write the trace to this OTLP-JSON-lines file instead")
    summary = commands.add_parser(
        "summary",
        help="show one crew run as CrewAI's Traces page does",
        description="Summarise one run from an OTLP-JSON-lines file or from Jaeger's query API.",
    )
    source = summary.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", help="an OTLP-JSON-lines file (exporter='file', or the Collector's)")
    source.add_argument("--jaeger", metavar="URL", help="Jaeger's query base URL, e.g. http://localhost:16686")
    summary.add_argument("--trace-id", help="the run's trace id (default: the latest run in the file)")
    summary.add_argument("--task", help="also show the detail of this task (its name or number)")
    summary.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    return parser


def _summary(args: argparse.Namespace) -> str:
    from crewtrace.report.records import fetch_jaeger, read_otlp_file
    from crewtrace.report.render import as_json, render_task, render_text
    from crewtrace.report.summary import summarize, task_detail

    if args.jaeger:
        if not args.trace_id:
            raise ValueError("crewtrace summary: --jaeger needs --trace-id")
        records = fetch_jaeger(args.jaeger, args.trace_id)
    else:
        try:
            records = read_otlp_file(args.file)
        except OSError as exc:
            raise ValueError(f"crewtrace summary: cannot read {args.file}: {exc.strerror or exc}") from None
    summary = summarize(records, args.trace_id)
    detail = task_detail(summary, args.task) if args.task else None
    if args.json:
        return as_json(summary, detail)
    text = render_text(summary)
    return text + ("\n\n" + render_task(detail) if detail else "")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from crewtrace.demo.run import run_demo

            run_demo(sys.stdout, endpoint=args.endpoint, file_path=args.file_path)
        else:
            print(_summary(args))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
