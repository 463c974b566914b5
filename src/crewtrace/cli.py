"""The ``crewtrace`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crewtrace", description="OpenTelemetry tracing for CrewAI crews.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run an offline demo crew and show its trace")
    demo.add_argument("--endpoint", help="OTLP endpoint to export to (default: OTEL_* settings or localhost)")
    demo.add_argument("--file", dest="file_path", help="write the trace to this OTLP-JSON-lines file instead")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from crewtrace.demo import run_demo

        try:
            run_demo(sys.stdout, endpoint=args.endpoint, file_path=args.file_path)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
