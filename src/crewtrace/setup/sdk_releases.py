"""What differs between the OpenTelemetry SDK releases crewtrace supports (1.30 to 1.x), in one place, as
crewai_releases.py does for CrewAI: the only module that touches the SDK's private parts, each use for the
releases that need it. The release matrix (scripts/test-releases) runs the shutdown and export tests on the
oldest supported CrewAI, whose pin brings SDK 1.34; ./scripts/test runs them on the newest SDK."""

from __future__ import annotations

import inspect
from typing import Any

from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter


def stop_batch_worker(processor: BatchSpanProcessor, seconds: float) -> bool:
    """Let the SDK's batching worker export what is queued for at most ``seconds``, then stop waiting for it (a
    daemon thread: it holds no exit). False for a processor of a shape not known (call its own shutdown)."""
    batching: Any = getattr(processor, "_batch_processor", None)  # SDK 1.34+: the batcher spans and logs share
    if batching is not None and "timeout_millis" in inspect.signature(batching.shutdown).parameters:
        # SDK 1.36 and later: it waits for its worker at most that long, then shuts the exporter down itself.
        batching.shutdown(timeout_millis=seconds * 1000)
        return True
    if batching is not None and hasattr(batching, "_worker_thread") and hasattr(batching, "_worker_awaken"):
        # SDK 1.34 and 1.35: its shutdown() does this, but then waits for the worker without a limit.
        batching._shutdown = True  # no span comes in; the worker exports what is queued, then ends
        batching._worker_awaken.set()
        batching._worker_thread.join(seconds)
        return True
    old: Any = processor
    if hasattr(old, "worker_thread") and hasattr(old, "condition"):
        # Before SDK 1.34 the processor had a worker of its own, stopped the same way.
        old.done = True
        with old.condition:
            old.condition.notify_all()
        old.worker_thread.join(seconds)
        return True
    return False


def shut_down_now(exporter: SpanExporter) -> None:
    """Shut an exporter down without waiting for the export it may be in: closing is what cancels that export."""
    if "timeout_millis" in inspect.signature(exporter.shutdown).parameters:
        shutdown: Any = exporter.shutdown  # the OTLP exporters' (SDK 1.36 and later), wider than SpanExporter's
        shutdown(timeout_millis=0)
        return
    try:
        from opentelemetry.exporter.otlp.proto.grpc.exporter import OTLPExporterMixin
    except ImportError:  # grpc not installed
        exporter.shutdown()
        return
    if isinstance(exporter, OTLPExporterMixin):
        # SDK 1.34's gRPC span exporter takes no timeout, and the shutdown it calls waits 30 s for the export in
        # flight before it closes the channel (1.42 closes it at once). Not waiting, 1.34 releases the lock that
        # export holds (opentelemetry-python#3398): the export then ends in a RuntimeError, which _export_run
        # catches.
        OTLPExporterMixin.shutdown(exporter, timeout_millis=0)
    else:
        exporter.shutdown()
