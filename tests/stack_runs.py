"""Runs traced through the real Collector and Jaeger (tests/stack.py), and the checks that compare them.

A run is exported twice by ``crewtrace.instrument(exporter="otlp,file")``: over OTLP to the Collector, and to
a file. The file is the truth a backend's copy is compared with, span by span.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import crewtrace
from crewtrace.offline_llm import OfflineLLMError
from crewtrace.report.records import SpanRecord, read_otlp_file
from tests import stack
from tests.processes import BackendError, Server

SERVICE = "crewtrace-stack-test"
ADDED_BY_COLLECTOR = ("redaction.",)  # the redaction processor's summary attributes (summary: info)


@dataclass
class Stack:
    jaeger: Server
    collector: Server
    reader: stack.JaegerReader

    @property
    def otlp(self) -> str:
        return self.collector.base_url("grpc")


def start_stack(workdir: Path, **env: str) -> Iterator[Stack]:
    """Jaeger, then the Collector sending to it; both stopped afterwards. Build or start failures fail."""
    try:
        jaeger = stack.jaeger_server(workdir / "jaeger")
        collector = stack.collector_server(
            stack.COLLECTOR_CONFIG,
            workdir / "collector",
            env={"JAEGER_ENDPOINT": f"127.0.0.1:{jaeger.ports['grpc']}", **env},
        )
        with stack.running(jaeger, collector):
            yield Stack(jaeger, collector, stack.JaegerReader(jaeger))
    except BackendError as error:
        pytest.fail(str(error), pytrace=False)


@dataclass
class Run:
    trace_id: str
    records: list[SpanRecord]  # the same run's file export
    kinds: dict[str, int]
    path: Path
    error: BaseException | None


def instrument(endpoint: str, path: Path, **settings: Any) -> crewtrace.Instrumentation:
    """crewtrace exporting over OTLP to ``endpoint`` and to the file ``path`` (the copy to compare with)."""
    settings.setdefault("service_name", SERVICE)
    return crewtrace.instrument(endpoint=endpoint, exporter="otlp,file", file_path=path, **settings)


def traces_in(path: Path) -> dict[str, list[SpanRecord]]:
    """The spans of a file export (or of a Collector's file exporter), by trace id; empty if no file yet."""
    found: dict[str, list[SpanRecord]] = {}
    if path.exists():
        for record in read_otlp_file(path):
            found.setdefault(record.trace_id, []).append(record)
    return found


def run_traced(target: Stack, work: Callable[[], Any], path: Path, **settings: Any) -> Run:
    """Instrument (OTLP to the Collector, and a file), run ``work``, shut down (which flushes both)."""
    handle = instrument(target.otlp, path, **settings)
    error = None
    try:
        work()
    except OfflineLLMError as raised:
        error = raised
    finally:
        handle.shutdown()
    traces = traces_in(path)
    assert len(traces) == 1, list(traces)
    ((trace_id, records),) = traces.items()
    return Run(trace_id, records, file_kinds(path), path, error)


def file_kinds(path: Path) -> dict[str, int]:
    kinds = {}
    for line in path.read_text().splitlines():
        for resource in json.loads(line).get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                kinds.update({s["spanId"]: int(s.get("kind", 0)) for s in scope.get("spans", [])})
    return kinds


def base64_ids(node: Any) -> Any:
    """OTLP/JSON's hex ids as protobuf's JSON mapping wants them (base64), to measure the encoded request."""
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId")
            else base64_ids(v)
            for k, v in node.items()
        }
    return [base64_ids(v) for v in node] if isinstance(node, list) else node


def own(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if not k.startswith(ADDED_BY_COLLECTOR)}


def assert_same_spans(sent: Run, seen: stack.JaegerTrace) -> None:
    """Every span Jaeger stored equals the one crewtrace wrote to the file, field by field."""
    by_id = {r.span_id: r for r in seen.records}
    assert sorted(by_id) == sorted(r.span_id for r in sent.records)
    for record in sent.records:
        got = by_id[record.span_id]
        where = f"{record.name} ({record.span_id})"
        assert (got.trace_id, got.parent_id, got.name) == (record.trace_id, record.parent_id, record.name), where
        assert (got.start_ns, got.end_ns) == (record.start_ns, record.end_ns), where
        assert (got.status, got.status_message) == (record.status, record.status_message), where
        assert own(got.attributes) == record.attributes, where
        assert [(e.name, e.time_ns, e.attributes) for e in got.events] == [
            (e.name, e.time_ns, e.attributes) for e in record.events
        ], where
        assert seen.kinds[record.span_id] == sent.kinds[record.span_id], where
