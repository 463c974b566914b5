"""crewtrace's default export pipeline under load: ``python -m benchmarks.throughput PROTOCOL ENDPOINT RATE N``.

Ends N spans shaped like crewtrace's LLM spans at RATE spans/s (0: as fast as possible) through the same
pipeline ``crewtrace.instrument()`` builds (BoundedBatchSpanProcessor, OTLP exporter, default queue and
batch sizes), then flushes. Prints one JSON line: achieved rate, spans not delivered, seconds.

``python -m benchmarks.throughput costs`` prints what one such span costs the process's one GIL instead:
CPU µs to start and end it through the SDK, and to encode it (the SDK's OTLP protobuf encoder) and
serialise it for export. Their sum bounds the rate one Python process can produce and export.
"""

from __future__ import annotations

import json
import sys
import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from crewtrace import attributes
from crewtrace.setup import exporters
from crewtrace.setup.delivery import BoundedBatchSpanProcessor

_BURST = 50  # spans produced back to back between two pauses

ATTRIBUTES = {
    attributes.GEN_AI_OPERATION_NAME: "chat",
    attributes.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
    attributes.GEN_AI_PROVIDER_NAME: "openai",
    attributes.GEN_AI_USAGE_INPUT_TOKENS: 1200,
    attributes.GEN_AI_USAGE_OUTPUT_TOKENS: 300,
    attributes.LLM_CALL_ID: "3f1c2b7e-0d4a-4c1e-9a55-6b1f0e2d9c11",
}


class _Keep(SpanProcessor):
    """Keeps ended spans, as the batching processor's queue does."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def costs(count: int = 50_000, batch: int = 512) -> dict[str, float]:
    """CPU µs per span: producing it (SDK start and end), encoding it to protobuf, serialising it."""
    provider = TracerProvider()
    kept = _Keep()
    provider.add_span_processor(kept)
    tracer = provider.get_tracer("throughput")
    for _ in range(1000):  # warm up
        tracer.start_span("chat gpt-4o-mini", attributes=ATTRIBUTES).end()
    kept.spans.clear()
    start = time.thread_time()
    for _ in range(count):
        tracer.start_span("chat gpt-4o-mini", attributes=ATTRIBUTES).end()
    produce = (time.thread_time() - start) / count
    batches = [kept.spans[i : i + batch] for i in range(0, len(kept.spans), batch)]
    start = time.thread_time()
    encoded = [encode_spans(spans) for spans in batches]
    encode = (time.thread_time() - start) / count
    start = time.thread_time()
    for message in encoded:
        message.SerializeToString()
    serialise = (time.thread_time() - start) / count
    return {"produce_us": produce * 1e6, "encode_us": encode * 1e6, "serialise_us": serialise * 1e6}


def main() -> None:
    if sys.argv[1] == "costs":
        print(json.dumps(costs()))
        return
    protocol, endpoint, rate, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    exporter, _ = exporters.otlp_exporter(protocol, endpoint, None, 10)
    processor = BoundedBatchSpanProcessor(exporter, shutdown_timeout=30)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("throughput")
    start = time.perf_counter()
    for n in range(count):
        if rate > 0 and n % _BURST == 0:
            # Paced in bursts with a real sleep between them: a busy wait (or sleep(0)) would keep the GIL
            # from the export thread, which a real application's spare time does not.
            ahead = start + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        tracer.start_span("chat gpt-4o-mini", attributes=ATTRIBUTES).end()
    produced = time.perf_counter() - start
    processor.force_flush(60_000)
    failed, not_sent = processor.undelivered()
    provider.shutdown()
    print(json.dumps({"rate": count / produced, "undelivered": failed + not_sent, "seconds": produced}))


if __name__ == "__main__":
    main()
