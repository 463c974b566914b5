"""One benchmark variant in a process of its own: ``python -m benchmarks.worker VARIANT ENDPOINT``.

Variants: ``none`` (no instrumentation), ``crewtrace``, ``openinference`` and ``openinference_events``
(openinference-instrumentation-crewai, in its default and its event-listener mode), ``openllmetry``
(opentelemetry-instrumentation-crewai), and ``sdk_floor``: an uninstrumented kickoff followed by the spans
crewtrace made for that workload (recorded once, same names, attributes and events) replayed through the
SDK alone, the lower bound of what any tracer emitting that tree pays. Each exports through the SDK's batching
processor and OTLP/gRPC exporter to the driver's receiver. The driver sends one command per line on stdin
(``run WORKLOAD``, ``scaled TASKS CALLS`` or ``crowd N WORKLOAD``: N crews kicked off at once on N threads);
the worker answers one JSON line: CPU seconds (all threads of the process, the export thread included), wall
seconds, spans emitted and LLM calls made, for the kickoff(s) and their export.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from benchmarks.isolation import environment

os.environ.update(environment())

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from benchmarks.workloads import WORKLOADS, scaled

CROWD_TIMEOUT = 600.0  # seconds a crowd of kickoffs may take, all together


class Counter(SpanProcessor):
    def __init__(self) -> None:
        self.count = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.count += 1


def instrument(variant: str, provider: TracerProvider) -> None:
    if variant == "crewtrace":
        from crewtrace import CrewAIInstrumentor

        CrewAIInstrumentor().instrument(tracer_provider=provider)
    elif variant in ("openinference", "openinference_events"):
        from openinference.instrumentation.crewai import CrewAIInstrumentor

        # Its default mode wraps methods; use_event_listener=True builds spans from CrewAI's events instead.
        CrewAIInstrumentor().instrument(tracer_provider=provider, use_event_listener=variant.endswith("_events"))
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.crewai import CrewAIInstrumentor

        CrewAIInstrumentor().instrument(tracer_provider=provider)
    elif variant not in ("none", "sdk_floor"):
        raise SystemExit(f"unknown variant {variant!r}")


def recorded_spans(workload: str) -> list[ReadableSpan]:
    """The spans crewtrace makes for one kickoff of ``workload``, in start order."""
    from crewtrace import CrewAIInstrumentor

    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    CrewAIInstrumentor().instrument(tracer_provider=provider)
    try:
        WORKLOADS[workload]().kickoff()
    finally:
        CrewAIInstrumentor().uninstrument()
    return sorted(memory.get_finished_spans(), key=lambda span: span.start_time or 0)


def replay(tracer: trace.Tracer, spans: list[ReadableSpan]) -> None:
    """Start, annotate and end ``spans`` again through ``tracer``, parents before children."""
    made: dict[int, trace.Span] = {}
    for old in spans:
        parent = made.get(old.parent.span_id) if old.parent is not None else None
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = tracer.start_span(
            old.name, context=context, kind=old.kind, attributes=old.attributes, start_time=old.start_time
        )
        for event in old.events:
            span.add_event(event.name, event.attributes, timestamp=event.timestamp)
        span.set_status(old.status)
        made[old.context.span_id] = span
    for old in sorted(spans, key=lambda span: span.end_time or 0):
        made[old.context.span_id].end(end_time=old.end_time)


def llm_calls(crew: Any) -> int:
    """LLM calls a finished kickoff made: the successful requests of each distinct LLM of the crew.
    (CrewOutput.token_usage counts an LLM shared by several agents once per agent.)"""
    llms = {id(a.llm): a.llm for a in [*crew.agents, getattr(crew, "manager_agent", None)] if a is not None}
    manager = getattr(crew, "manager_llm", None)
    if manager is not None and not isinstance(manager, str):
        llms[id(manager)] = manager
    return sum(llm.get_token_usage_summary().successful_requests for llm in llms.values() if llm is not None)


def crowd(crews: list[Any]) -> list[str]:
    """Kicks ``crews`` off at the same moment, one thread each, and waits for all (bounded); the errors."""
    start = threading.Barrier(len(crews) + 1, timeout=CROWD_TIMEOUT)
    errors: list[str] = []

    def run(crew: Any) -> None:
        try:
            start.wait()
            crew.kickoff()
        except Exception as error:  # noqa: BLE001 - reported to the driver, which fails the run
            errors.append(repr(error))

    threads = [threading.Thread(target=run, args=(crew,), daemon=True) for crew in crews]
    for thread in threads:
        thread.start()
    start.wait()
    deadline = time.monotonic() + CROWD_TIMEOUT
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    errors += [f"{thread.name} still running after {CROWD_TIMEOUT} s" for thread in threads if thread.is_alive()]
    return errors


def pipeline(endpoint: str) -> tuple[TracerProvider, Counter, BatchSpanProcessor]:
    """Every variant's export path: a provider counting the spans that end, and the SDK's batching processor
    with the OTLP/gRPC exporter to ``endpoint``."""
    provider = TracerProvider()
    counter = Counter()
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    provider.add_span_processor(counter)
    provider.add_span_processor(processor)
    return provider, counter, processor


def main() -> None:
    variant, endpoint = sys.argv[1], sys.argv[2]
    provider, counter, processor = pipeline(endpoint)
    floors: dict[str, list[ReadableSpan]] = {}
    if variant != "sdk_floor":
        instrument(variant, provider)
    tracer = provider.get_tracer("crewtrace")
    print(json.dumps({"ready": variant}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "crowd":
            crews = [WORKLOADS[words[2]]() for _ in range(int(words[1]))]
        else:
            crews = [WORKLOADS[words[1]]() if words[0] == "run" else scaled(int(words[1]), int(words[2]))]
        if variant == "sdk_floor" and words[0] == "run" and words[1] not in floors:
            floors[words[1]] = recorded_spans(words[1])
        before = counter.count
        cpu, wall = time.process_time(), time.perf_counter()
        errors = crowd(crews) if words[0] == "crowd" else []
        if words[0] != "crowd":
            crews[0].kickoff()
        if variant == "sdk_floor" and words[0] == "run":
            replay(tracer, floors[words[1]])
        processor.force_flush(30_000)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        answer = {"cpu": cpu, "wall": wall, "spans": counter.count - before, "llm_calls": sum(map(llm_calls, crews))}
        print(json.dumps({**answer, "errors": errors} if errors else answer), flush=True)
    provider.shutdown()


if __name__ == "__main__":
    main()
