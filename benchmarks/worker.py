"""One benchmark variant in a process of its own: ``python -m benchmarks.worker VARIANT ENDPOINT``.

Variants: ``none`` (no instrumentation), ``crewtrace``, ``openinference`` and ``openinference_events``
(openinference-instrumentation-crewai, in its default and its event-listener mode), ``openllmetry``
(opentelemetry-instrumentation-crewai). Each exports through the SDK's batching
processor and OTLP/gRPC exporter to the driver's receiver. The driver sends one command per line on stdin
(``run WORKLOAD`` or ``scaled TASKS CALLS``); the worker answers one JSON line: CPU seconds (all threads of
the process, the export thread included), wall seconds, and spans emitted, for one kickoff and its export.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.update(
    CREWAI_DISABLE_TELEMETRY="true",
    CREWAI_TRACING_ENABLED="false",
    CREWAI_TESTING="true",
    CREWAI_STORAGE_DIR=tempfile.mkdtemp(prefix="crewtrace-bench-"),
)

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from benchmarks.workloads import WORKLOADS, scaled


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
    elif variant != "none":
        raise SystemExit(f"unknown variant {variant!r}")


def main() -> None:
    variant, endpoint = sys.argv[1], sys.argv[2]
    provider = TracerProvider()
    counter = Counter()
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True))
    provider.add_span_processor(counter)
    provider.add_span_processor(processor)
    instrument(variant, provider)
    print(json.dumps({"ready": variant}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        crew = WORKLOADS[words[1]]() if words[0] == "run" else scaled(int(words[1]), int(words[2]))
        before = counter.count
        cpu, wall = time.process_time(), time.perf_counter()
        crew.kickoff()
        processor.force_flush(30_000)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps({"cpu": cpu, "wall": wall, "spans": counter.count - before}), flush=True)
    provider.shutdown()


if __name__ == "__main__":
    main()
