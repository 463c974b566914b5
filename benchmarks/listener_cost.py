"""CPU cost of handling each kind of CrewAI event: the events of real runs, replayed through crewtrace's
listener (tracker, span builders, context handling) into an SDK provider with a batching processor.

Also the work per event, counted in Python bytecode instructions and split into crewtrace's own and the
SDK's: unlike CPU time on a shared machine, the count is the same on every run, so it shows whether the
work per event stays flat as the crew grows, and what each kind of event costs against a baseline.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
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


class _Owners:
    """Counts the bytecode instructions this thread executes, split by owner: ``sdk`` when the nearest frame on
    the stack whose code is crewtrace's or OpenTelemetry's is OpenTelemetry's, else ``crewtrace``."""

    def __init__(self) -> None:
        import crewtrace

        self._ours = os.path.dirname(os.path.abspath(crewtrace.__file__)) + os.sep
        self._otel = os.sep + "opentelemetry" + os.sep
        self._files: dict[str, str | None] = {}
        self.own, self.sdk = [0], [0]  # one cell each, so an opcode costs one increment
        self._local = {"crewtrace": self._counting(self.own), "sdk": self._counting(self.sdk)}

    @staticmethod
    def _counting(cell: list[int]) -> Any:
        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "opcode":
                cell[0] += 1
            return local

        return local

    def _owner_of(self, filename: str) -> str | None:
        if filename not in self._files:
            owner = None
            if filename.startswith(self._ours):
                owner = "crewtrace"
            elif self._otel in filename:
                owner = "sdk"
            self._files[filename] = owner
        return self._files[filename]

    def on_call(self, frame: Any, event: str, arg: Any) -> Any:
        """The global trace function: decides the new frame's owner once and hands it that owner's counter."""
        owner = nearest_owner(frame, self._owner_of)
        frame.f_trace_opcodes = True
        return self._local[owner or "crewtrace"]  # no owner: the replay loop calls crewtrace's listener


def nearest_owner(frame: Any, owner_of: Callable[[str], str | None]) -> str | None:
    """The owner of the nearest frame on ``frame``'s stack whose file has one (``owner_of`` its file name)."""
    walk = frame
    for _ in range(10_000):  # a stack is never deeper; bounded all the same
        if walk is None:
            return None
        owner = owner_of(walk.f_code.co_filename)
        if owner is not None:
            return owner
        walk = walk.f_back
    return None


def count(events: Sequence[tuple[Any, Any]]) -> dict[str, Any]:
    """Instructions crewtrace's listener executes for ``events``, its own and the SDK's, in total and per event
    kind. Counted on a second replay (a fresh tracker each), so one-off imports and caches are left out."""
    provider, listener, _ = _tracker()
    for source, event in events:
        listener.on_event(source, event)
    provider.shutdown()
    provider, listener, ended = _tracker()
    owners = _Owners()
    own, sdk = owners.own, owners.sdk
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    sys.settrace(owners.on_call)
    try:
        for source, event in events:  # only cells are read here: a call would be counted
            before_own, before_sdk = own[0], sdk[0]
            listener.on_event(source, event)
            kind = kinds[event.type]
            kind[0] += 1
            kind[1] += own[0] - before_own
            kind[2] += sdk[0] - before_sdk
    finally:
        sys.settrace(None)
    provider.shutdown()
    return {
        "events": len(events),
        "spans": ended.count,
        "own": own[0],
        "sdk": sdk[0],
        "kinds": {k: {"count": n, "own": o / n, "sdk": s / n} for k, (n, o, s) in sorted(kinds.items())},
    }


def _rates(counted: dict[str, Any]) -> dict[str, float]:
    events, spans = counted["events"], counted["spans"]
    own, sdk = counted["own"], counted["sdk"]
    nan = float("nan")
    return {
        "events": events,
        "spans": spans,
        "per_event": (own + sdk) / events,
        "per_event_own": own / events,
        "per_event_sdk": sdk / events,
        "per_span": (own + sdk) / spans if spans else nan,
        "per_span_own": own / spans if spans else nan,
        "per_span_sdk": sdk / spans if spans else nan,
    }


def instructions_per_event(grid: Sequence[tuple[int, int]]) -> list[dict[str, float]]:
    """For each (tasks, LLM calls per task): bytecode instructions per event and per span of crewtrace's
    listener, split into crewtrace's own and the SDK's, over one replay of that crew's events."""
    os.environ.update(environment())
    from benchmarks.workloads import scaled

    return [{"tasks": t, "calls": c, **_rates(count(record([scaled(t, c)])))} for t, c in grid]


def demo_instructions() -> dict[str, Any]:
    """The same counts for one demo kickoff, with the mean per event of each kind."""
    os.environ.update(environment())
    from benchmarks.workloads import demo

    counted = count(record([demo()]))
    return {**_rates(counted), "kinds": counted["kinds"]}


def floor_instructions(workload: str = "demo") -> dict[str, float]:
    """Instructions the SDK alone executes to emit crewtrace's spans of one ``workload`` kickoff (the worker's
    ``sdk_floor`` replay, into a batching processor), counted on a second replay like :func:`count`."""
    os.environ.update(environment())
    from benchmarks.worker import recorded_spans, replay

    spans = recorded_spans(workload)
    total = [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            total[0] += 1
        return local

    def on_call(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    for traced in (False, True):
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(_Null()))
        tracer = provider.get_tracer("crewtrace")
        if traced:
            sys.settrace(on_call)
        try:
            replay(tracer, spans)
        finally:
            sys.settrace(None)
        provider.shutdown()
    return {"spans": len(spans), "per_kickoff": total[0], "per_span": total[0] / len(spans)}


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
