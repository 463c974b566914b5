"""CPU cost of handling each kind of CrewAI event: the events of real runs, replayed through crewtrace's
listener (tracker, span builders, context handling) into an SDK provider with a batching processor."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class _Null(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Recorder:
    """Stands where the tracker stands and keeps every (source, event) it is handed."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, Any]] = []

    def handle(self, source: Any, event: Any) -> None:
        self.events.append((source, event))

    def open_span(self, key: str) -> None:
        return None

    def unit_of(self, key: str) -> None:
        return None


def record() -> list[tuple[Any, Any]]:
    """The events of the benchmark workloads, in emission order."""
    for key, value in {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_TESTING": "true",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="crewtrace-bench-"))
    from benchmarks.workloads import WORKLOADS
    from crewtrace.listener import CrewAIEventListener

    recorder = _Recorder()
    listener = CrewAIEventListener(recorder)  # type: ignore[arg-type]
    listener.register()
    try:
        for build in WORKLOADS.values():
            build().kickoff()
    finally:
        listener.unregister()
    return recorder.events  # the listener hands events over in emission order


def per_event_cost(repeats: int = 30) -> dict[str, dict[str, float]]:
    """Median microseconds of CPU per event kind, over ``repeats`` replays of the recorded runs."""
    from crewtrace.listener import CrewAIEventListener, scope_starting_types
    from crewtrace.pricing import PriceTable
    from crewtrace.tracker import SpanTracker

    events = record()
    samples: dict[str, list[float]] = defaultdict(list)
    prices = PriceTable.load()
    for _ in range(repeats):
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_Null()))
        tracker = SpanTracker(
            provider.get_tracer("bench"), prices=prices, transparent_types=scope_starting_types(), live=True
        )
        listener = CrewAIEventListener(tracker)
        for source, event in events:
            start = time.thread_time_ns()
            listener.on_event(source, event)
            samples[event.type].append((time.thread_time_ns() - start) / 1e3)
        provider.shutdown()
    return {
        kind: {"us": statistics.median(values), "per_run": len(values) / repeats}
        for kind, values in sorted(samples.items(), key=lambda item: -statistics.median(item[1]))
    }
