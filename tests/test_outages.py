"""Collector outages: the crew never notices, delivery resumes, memory and exit time stay bounded."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import crewtrace
from crewtrace import attributes
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import read_otlp_file
from tests.helpers import one_task_crew
from tests.receivers import Blackhole, GrpcReceiver

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "apps" / "outage.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _crew_traces(receiver: GrpcReceiver) -> dict[str, int]:
    """Span count per trace, for the traces whose crew span arrived."""
    records = receiver.records()
    counts: dict[str, int] = {}
    for record in records:
        counts[record.trace_id] = counts.get(record.trace_id, 0) + 1
    return {t: n for t, n in counts.items() if any(r.trace_id == t and r.parent_id is None for r in records)}


def test_down_at_start_down_mid_run_and_back_the_crew_never_notices_and_delivery_resumes():
    expected = one_task_crew(OfflineLLM()).kickoff().raw
    port = _free_port()
    handle = crewtrace.instrument(endpoint=f"http://127.0.0.1:{port}", timeout=1, shutdown_timeout=2)

    assert one_task_crew(OfflineLLM()).kickoff().raw == expected  # collector down when the crew starts
    with GrpcReceiver(port) as receiver:  # the collector comes up
        assert one_task_crew(OfflineLLM()).kickoff().raw == expected
        assert handle.force_flush(10_000)
        deadline = time.monotonic() + 15
        while 4 not in _crew_traces(receiver).values() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 4 in _crew_traces(receiver).values()  # a run ended after it came back: delivered whole

        result: dict[str, str] = {}
        running = threading.Thread(target=lambda: result.update(raw=one_task_crew(OfflineLLM()).kickoff().raw))
        running.start()  # and goes down while a crew runs
    running.join(30)
    assert result["raw"] == expected

    with GrpcReceiver(port) as receiver:  # and comes back
        assert one_task_crew(OfflineLLM()).kickoff().raw == expected
        handle.force_flush(10_000)
        deadline = time.monotonic() + 15
        while 4 not in _crew_traces(receiver).values() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 4 in _crew_traces(receiver).values()
        handle.shutdown()


def test_undelivered_spans_are_counted_once_in_the_log_and_on_a_metric(caplog):
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    handle = crewtrace.instrument(
        endpoint=f"http://127.0.0.1:{_free_port()}", timeout=1, shutdown_timeout=2, meter_provider=meters
    )
    for _ in range(3):
        one_task_crew(OfflineLLM()).kickoff()
    with caplog.at_level("WARNING", logger="crewtrace.setup.delivery"):
        handle.shutdown()
    notices = [r.getMessage() for r in caplog.records if "spans were not delivered" in r.getMessage()]
    assert len(notices) == 1 and notices[0].startswith("crewtrace: 12 spans were not delivered")
    points = [
        (dict(point.attributes), point.value)
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == attributes.METRIC_SPANS_DROPPED
        for point in metric.data.data_points
    ]
    assert sum(value for _, value in points) == 12
    assert {attrs[attributes.SPANS_DROPPED_REASON] for attrs, _ in points} == {attributes.DROPPED_NOTHING_LISTENING}


def test_an_unreachable_collector_does_not_cost_the_file_its_spans(tmp_path):
    """With exporter="otlp,file", the file is written first at shutdown: the collector's retries, which use up
    the whole shutdown budget here, used to leave the file empty."""
    path = tmp_path / "traces.jsonl"
    handle = crewtrace.instrument(
        exporter="otlp,file", endpoint=f"http://127.0.0.1:{_free_port()}", file_path=path, shutdown_timeout=2
    )
    one_task_crew(OfflineLLM()).kickoff()
    handle.shutdown()
    assert [r.name for r in read_otlp_file(path)].count("invoke_workflow single") == 1
    assert len(read_otlp_file(path)) == 4


def _run_app(env: dict[str, str], *args: str) -> tuple[list[dict], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(APP), *args],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    ended = time.time()
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    finished = next(line["done"] for line in lines if "done" in line)
    assert time.monotonic() - started < 180
    return lines, ended - finished


@pytest.mark.parametrize("how", ["explicit", "atexit"])
def test_a_process_exits_within_the_shutdown_timeout_when_the_collector_hangs(subprocess_env, how):
    """Exporter timeout 30 s: without the bounded shutdown the exit would wait for it (and the SDK's 30 s)."""
    with Blackhole() as hole:
        _, exit_seconds = _run_app(subprocess_env, f"http://127.0.0.1:{hole.port}", "2", "2", "30", how)
    assert exit_seconds < 10, exit_seconds  # 2 s shutdown timeout, plus interpreter teardown


def test_memory_stays_bounded_while_the_collector_is_down(subprocess_env):
    # A small queue, so its cap bites after ~64 crews.
    env = {**subprocess_env, "OTEL_BSP_MAX_QUEUE_SIZE": "256", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "64"}
    lines, _ = _run_app(env, f"http://127.0.0.1:{_free_port()}", "300", "2", "1", "explicit")
    rss = {line["crews"]: line["rss_mb"] for line in lines if "crews" in line}
    assert rss[300] - rss[100] < 25, rss  # the queue holds at most 256 spans; the tracker forgets runs


def test_shutdown_starts_no_thread_and_keeps_to_its_timeout(monkeypatch):
    """Python 3.12 and later refuse to start a thread at interpreter exit, where shutdown() runs."""
    with Blackhole() as hole:
        handle = crewtrace.instrument(endpoint=hole.endpoint, timeout=30, shutdown_timeout=1, metrics_exporter="none")
        one_task_crew(OfflineLLM()).kickoff()
        started: list[str] = []
        real_start = threading.Thread.start

        def start(thread: threading.Thread) -> None:
            started.append(thread.name)
            real_start(thread)

        monkeypatch.setattr(threading.Thread, "start", start)
        began = time.monotonic()
        handle.shutdown()
        took = time.monotonic() - began
    assert started == []
    assert took < 10, took  # the exporter's own timeout is 30 s: shutdown stopped waiting long before
    assert handle.processors[0].undelivered()[0] == 4
