"""`crewtrace demo` as a user runs it: offline, with a listening OTLP receiver and without one."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from crewtrace.setup.exporters import read_otlp_json_lines
from tests.helpers import outline
from tests.receivers import GrpcReceiver
from tests.test_span_tree import EXPECTED_TREE

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

CREWTRACE = str(Path(sys.executable).with_name("crewtrace"))


def run_demo(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CREWTRACE, "demo", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def trace_id_of(output: str) -> str:
    match = re.search(r"\(trace ([0-9a-f]{32})\)", output)
    assert match, output
    return match.group(1)


def assert_summary(output: str) -> None:
    for fact in ("Total tokens", "Prompt tokens", "Completion tokens", "Requests", "Execution time", "Timeline"):
        assert fact in output, fact
    for section in ("Tasks and agents", "Final output", "Failure points"):  # the same renderer as `summary`
        assert section in output, section
    assert re.search(r"Requests\s+4\b", output)
    assert re.search(r"^\s+1\s+research\s+Researcher\s+crewtrace-offline\s+completed", output, re.MULTILINE)
    assert re.search(r"^\s+3\s+write\s+Writer\s+crewtrace-offline\s+completed", output, re.MULTILINE)


def test_demo_exports_to_a_configured_receiver(subprocess_env, tmp_path):
    with GrpcReceiver() as receiver:
        env = {**subprocess_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        done = run_demo(env, tmp_path)
        assert done.returncode == 0, done.stderr
        assert_summary(done.stdout)
        assert f"OTLP gRPC {receiver.endpoint}" in done.stdout
        records = receiver.wait_for_spans(len(EXPECTED_TREE))
        assert outline(records) == EXPECTED_TREE
        assert {r.trace_id for r in records} == {trace_id_of(done.stdout)}
        resource, _ = receiver.spans()[0]
        assert resource["service.name"] == "crewtrace-demo"
        tokens = sum(r.attributes.get("gen_ai.usage.input_tokens", 0) for r in records)
        assert re.search(rf"Prompt tokens\s+{tokens}\b", done.stdout)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_without_a_receiver_writes_the_json_lines_file(subprocess_env, tmp_path):
    done = run_demo(subprocess_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert_summary(done.stdout)
    if _listening(4317) or _listening(4318):  # someone runs a collector on this machine: the demo must use it
        assert "OTLP" in done.stdout
        return
    path = tmp_path / "crewtrace-traces.jsonl"
    assert f"file {path}" in done.stdout
    spans = list(read_otlp_json_lines(path))
    assert len(spans) == len(EXPECTED_TREE)
    assert {s["traceId"] for s in spans} == {trace_id_of(done.stdout)}


def test_demo_file_option(subprocess_env, tmp_path):
    path = tmp_path / "out" / "demo.jsonl"
    done = run_demo(subprocess_env, tmp_path, "--file", str(path))
    assert done.returncode == 0, done.stderr
    assert len(list(read_otlp_json_lines(path))) == len(EXPECTED_TREE)


def test_demo_report_option_writes_the_runs_page_and_says_where(subprocess_env, tmp_path):
    done = run_demo(subprocess_env, tmp_path, "--file", str(tmp_path / "demo.jsonl"), "--report", "site")
    assert done.returncode == 0, done.stderr
    index = (tmp_path / "site" / "index.html").resolve()
    assert re.search(rf"^\s*Report\s+{re.escape(str(index))}$", done.stdout, re.MULTILINE), done.stdout
    (page,) = (tmp_path / "site" / "runs").glob(f"{trace_id_of(done.stdout)}-*.html")
    html = page.read_text(encoding="utf-8")
    assert "Execution summary" in html and "execute_task research" in html


def test_demo_rejects_a_bad_endpoint_in_one_line(subprocess_env, tmp_path):
    done = run_demo(subprocess_env, tmp_path, "--endpoint", "not a url")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "endpoint=" in done.stderr


def test_demo_with_a_dead_endpoint_still_runs_and_says_nothing_was_delivered(subprocess_env, tmp_path):
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_demo(subprocess_env, tmp_path, "--endpoint", f"http://127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    assert_summary(done.stdout)
    assert "nothing is listening there" in done.stdout
