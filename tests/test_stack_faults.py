"""Faults between crewtrace, the real Collector and the real Jaeger: what arrives, what is lost, and why.

- Jaeger down while crews run, and the Collector restarted meanwhile: the Jaeger exporter's sending queue
  is persisted on disk (file_storage), so every sampled trace arrives once Jaeger is back.
- The Collector down while crewtrace exports: the SDK's OTLP exporter retries within crewtrace's exporter
  ``timeout``. An outage shorter than that loses nothing; a batch whose retries outlast it is lost, and
  exactly that many spans are reported as dropped (the log line and ``crewtrace.spans.dropped``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from crewtrace.offline_llm import OfflineLLM
from tests import stack
from tests.helpers import analyst_crew
from tests.processes import BackendError, Server, poll, settle
from tests.stack_runs import SERVICE, Run, assert_same_spans, file_kinds, instrument, traces_in

pytestmark = [pytest.mark.usefixtures("fresh_global_provider"), pytest.mark.slow]
RETRY_FAST = (stack.JAEGER_RETRY, stack.JAEGER_RETRY_MAX)


def _crew(name: str) -> None:
    analyst_crew(OfflineLLM(), name).kickoff()


def _restart(server: Server) -> None:
    server.stop()
    server.start(stack.START_TIMEOUT)


def _runs(path: Path) -> list[Run]:
    kinds = file_kinds(path)
    return [Run(t, records, kinds, path, None) for t, records in traces_in(path).items()]


@contextlib.contextmanager
def _servers(*servers: Server):
    """Start them; stop every one at the end (each ``Server`` may be stopped and started again in between)."""
    try:
        with contextlib.ExitStack() as stop:
            for server in servers:
                stop.callback(server.stop)
                server.start(stack.START_TIMEOUT)
            yield servers
    except BackendError as error:
        pytest.fail(str(error), pytrace=False)


def test_jaeger_down_and_collector_restarted_loses_no_trace(tmp_path):
    jaeger = stack.jaeger_server(tmp_path / "jaeger")
    collector = stack.collector_server(
        stack.COLLECTOR_CONFIG,
        tmp_path / "collector",
        env={"JAEGER_ENDPOINT": f"127.0.0.1:{jaeger.ports['grpc']}", "OTELCOL_SAMPLING_PERCENTAGE": "100"},
        sets=RETRY_FAST,
    )
    with _servers(jaeger, collector):
        jaeger.stop()
        sent_path = tmp_path / "sent.jsonl"
        handle = instrument(collector.base_url("grpc"), sent_path)
        for number in range(5):
            _crew(f"while-jaeger-is-down-{number}")
        handle.shutdown()
        sent = _runs(sent_path)
        assert len(sent) == 5
        # Past tail sampling and batching: the file exporter beside the Jaeger exporter has every trace, so
        # the Jaeger exporter holds them too, in its queue on disk.
        collector_file = collector.cwd / "data" / "traces.jsonl"
        poll(lambda: len(traces_in(collector_file)) == 5, 30.0, what="the Collector's file to hold 5 traces")
        _restart(collector)  # the queue survives a restart of the Collector itself
        jaeger.start(stack.START_TIMEOUT)  # a new, empty Jaeger on the same ports
        reader = stack.JaegerReader(jaeger)
        for run in sent:
            assert_same_spans(run, reader.wait(run.trace_id, len(run.records), timeout=90.0))


def _undelivered(handle) -> tuple[int, int]:
    """(spans whose export failed, spans never handed to the exporter) of the OTLP processor."""
    (otlp, _file) = handle.processors
    return otlp.undelivered()


def _to_jaeger(jaeger: Server, tmp_path: Path) -> Server:
    env = {"JAEGER_ENDPOINT": f"127.0.0.1:{jaeger.ports['grpc']}", "OTELCOL_SAMPLING_PERCENTAGE": "100"}
    return stack.collector_server(stack.COLLECTOR_CONFIG, tmp_path / "collector", env=env)


def _by_crew(path: Path) -> dict[str, Run]:
    runs = {}
    for run in _runs(path):
        (root,) = [r for r in run.records if r.parent_id is None]
        runs[root.name.removeprefix("invoke_workflow ")] = run
    return runs


def test_a_collector_restart_shorter_than_the_exporters_retries_loses_nothing(tmp_path):
    jaeger = stack.jaeger_server(tmp_path / "jaeger")
    collector = _to_jaeger(jaeger, tmp_path)
    with _servers(jaeger, collector):
        sent_path = tmp_path / "sent.jsonl"
        handle = instrument(collector.base_url("grpc"), sent_path)  # the default exporter timeout, 10 s
        collector.stop()
        _crew("during-the-restart")
        # The SDK tries at about 0, 1, 3 and 7 s (backoff 1, 2, 4 s with 20 % jitter) within the 10 s timeout.
        flush = threading.Thread(target=handle.force_flush, args=(30_000,))
        flush.start()
        time.sleep(1.0)
        collector.start(stack.START_TIMEOUT)
        flush.join(30.0)
        assert _undelivered(handle) == (0, 0)
        _crew("after-the-restart")
        handle.shutdown()
        reader = stack.JaegerReader(jaeger)
        runs = _by_crew(sent_path)
        assert set(runs) == {"during-the-restart", "after-the-restart"}
        for run in runs.values():
            assert_same_spans(run, reader.wait(run.trace_id, len(run.records)))


def test_an_outage_longer_than_the_exporters_retries_loses_that_batch_and_counts_it(tmp_path, caplog):
    jaeger = stack.jaeger_server(tmp_path / "jaeger")
    collector = _to_jaeger(jaeger, tmp_path)
    with _servers(jaeger, collector):
        sent_path = tmp_path / "sent.jsonl"
        handle = instrument(collector.base_url("grpc"), sent_path, timeout=3)
        collector.stop()
        _crew("during-the-outage")
        started = time.monotonic()
        handle.processors[0].force_flush(30_000)  # the OTLP span processor (metrics would add their own 3 s)
        gave_up_after = time.monotonic() - started
        lost = _undelivered(handle)[0]
        collector.start(stack.START_TIMEOUT)
        # gRPC's reconnect backoff (1 s, x1.6 per failed attempt, 20 % jitter) still runs when the Collector is
        # back: for up to the current backoff, exports fail fast with the last error. Wait it out, so that
        # the next batch does not fall into it with this short exporter timeout.
        time.sleep(5.0)
        _crew("after-the-outage")
        handle.shutdown()  # also exports crewtrace's metrics, crewtrace.spans.dropped among them

        runs = _by_crew(sent_path)
        reader = stack.JaegerReader(jaeger)
        assert_same_spans(runs["after-the-outage"], reader.wait(runs["after-the-outage"].trace_id, 4))
        assert reader.absent(runs["during-the-outage"].trace_id)
        assert lost == len(runs["during-the-outage"].records) > 0
        assert gave_up_after < 3.5
        assert any(f"({lost} nothing_listening)" in m for m in caplog.messages)  # the stopped Collector: named
        url = f"{collector.base_url('prometheus')}/metrics"

        def dropped(labels: dict[str, str]) -> bool:
            return labels.get("job") == SERVICE and labels.get("crewtrace_drop_reason") == "nothing_listening"

        samples = settle(
            lambda: stack.scrape(url), lambda s: stack.total(s, "crewtrace_spans_dropped_total", dropped) == lost, 30.0
        )
        assert stack.total(samples, "crewtrace_spans_dropped_total", dropped) == lost
