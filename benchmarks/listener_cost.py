"""CPU cost of handling each kind of CrewAI event: the events of real runs, replayed through crewtrace's
listener (tracker, span builders, context handling) into an SDK provider with a batching processor.

Also the work per event as the crew grows, counted in Python bytecode instructions: unlike CPU time on a
shared machine, the count is the same on every run, so it shows whether the work per event stays flat.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks.isolation import environment


class _Null(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Ended(SpanProcessor):
    def __init__(self) -> None:
        self.count = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.count += 1


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


def record(crews: Sequence[Any] | None = None) -> list[tuple[Any, Any]]:
    """The events of ``crews`` (default: the benchmark workloads) in emission order."""
    os.environ.update(environment())
    from benchmarks.workloads import WORKLOADS
    from crewtrace.tracing.event_hook import CrewAIEventHook

    recorder = _Recorder()
    listener = CrewAIEventHook(recorder)  # type: ignore[arg-type]
    listener.register()
    try:
        for crew in crews if crews is not None else [build() for build in WORKLOADS.values()]:
            crew.kickoff()
    finally:
        listener.unregister()
    return recorder.events  # the listener hands events over in emission order


def _tracker() -> tuple[Any, Any, _Ended]:
    from crewtrace.tracing.event_hook import CrewAIEventHook, scope_starting_types
    from crewtrace.tracing.tracker import SpanTracker
    from crewtrace.usage.pricing import PriceTable

    provider = TracerProvider()
    ended = _Ended()
    provider.add_span_processor(ended)
    provider.add_span_processor(BatchSpanProcessor(_Null()))
    tracker = SpanTracker(
        provider.get_tracer("bench"), prices=PriceTable.load(), transparent_types=scope_starting_types(), live=True
    )
    return provider, CrewAIEventHook(tracker), ended


def instructions_per_event(grid: Sequence[tuple[int, int]]) -> list[dict[str, float]]:
    """For each (tasks, LLM calls per task): bytecode instructions crewtrace's listener (and the SDK calls it
    makes) executes per event and per span, counted over one replay of that crew's events."""
    os.environ.update(environment())
    from benchmarks.workloads import scaled

    rows = []
    for tasks, calls in grid:
        events = record([scaled(tasks, calls)])
        provider, listener, ended = _tracker()
        count = 0

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            nonlocal count
            frame.f_trace_opcodes = True
            if event == "opcode":
                count += 1
            return tracer

        sys.settrace(tracer)
        try:
            for source, event in events:
                listener.on_event(source, event)
        finally:
            sys.settrace(None)
        provider.shutdown()
        spans = ended.count
        rows.append(
            {
                "tasks": tasks,
                "calls": calls,
                "events": len(events),
                "per_event": count / len(events),
                "per_span": count / spans if spans else float("nan"),
            }
        )
    return rows


def per_event_cost(repeats: int = 30) -> dict[str, dict[str, float]]:
    """Median microseconds of CPU per event kind, over ``repeats`` replays of the recorded runs."""
    events = record()
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        provider, listener, _ = _tracker()
        for source, event in events:
            start = time.thread_time_ns()
            listener.on_event(source, event)
            samples[event.type].append((time.thread_time_ns() - start) / 1e3)
        provider.shutdown()
    return {
        kind: {"us": statistics.median(values), "per_run": len(values) / repeats}
        for kind, values in sorted(samples.items(), key=lambda item: -statistics.median(item[1]))
    }
