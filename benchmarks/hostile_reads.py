"""Reading hostile trace files: seconds ``crewtrace summary``, ``runs`` and ``report`` take on a run whose
final output is one word of many megabytes (#25 item 9: textwrap made that quadratic), and on a run of
many small spans.

``python -m benchmarks.hostile_reads [--quick]`` prints one JSON line: {case: {command: seconds}}.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crewtrace import attributes
from crewtrace.cli import main

TRACE_ID = "5b8efff798038103d269b633813fc60c"


def _span(span_id: str, parent: str | None, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": TRACE_ID, "spanId": span_id, "name": name}
    if parent:
        span["parentSpanId"] = parent
    span |= {"startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"}
    if parent is None:
        attrs = {attributes.GEN_AI_OPERATION_NAME: attributes.OP_INVOKE_WORKFLOW, **attrs}
    span["attributes"] = [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]
    return span


def _file(folder: Path, name: str, spans: list[dict[str, Any]]) -> Path:
    path = folder / f"{name}.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}) + "\n")
    return path


def one_huge_word(folder: Path, megabytes: int) -> Path:
    word = "w" * (megabytes << 20)
    root = _span("00000000000000a1", None, "invoke_workflow word", {attributes.CREW_FINAL_OUTPUT: word})
    return _file(folder, "word", [root])


def many_spans(folder: Path, count: int) -> Path:
    spans = [_span("00000000000000a1", None, "invoke_workflow many", {attributes.GEN_AI_WORKFLOW_NAME: "many"})]
    for number in range(1, count + 1):
        task = {attributes.GEN_AI_OPERATION_NAME: attributes.OP_EXECUTE_TASK}
        spans.append(_span(f"{number:016x}", "00000000000000a1", f"execute_task t{number}", task))
    return _file(folder, "many", spans)


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"crewtrace {' '.join(argv)} returned {code}")
    return round(time.perf_counter() - started, 3)


def measure(quick: bool) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cases = {
            f"one word of {2 if quick else 8} MB": one_huge_word(root, 2 if quick else 8),
            f"{500 if quick else 5000} tasks": many_spans(root, 500 if quick else 5000),
        }
        return {
            case: {
                "summary": timed(["summary", str(path)]),
                "runs": timed(["runs", str(path)]),
                "report": timed(["report", str(path), "--out", os.path.join(folder, "site")]),
            }
            for case, path in cases.items()
        }


if __name__ == "__main__":
    print(json.dumps(measure("--quick" in sys.argv[1:])))
