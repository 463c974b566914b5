"""Span delivery that never holds the process: the SDK's BatchSpanProcessor, with a bounded shutdown and a
count of the spans that never reached the collector.

The SDK's processor waits up to 30 s at shutdown while an unreachable collector is retried. Here, once
``shutdown_timeout`` has passed, the exporter is shut down, which aborts its retries, and what is still
queued is counted as undelivered. Spans that could not be exported, or were pushed out of the full queue,
are counted too: reported once in the log at shutdown, and on a metric as they happen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.metrics import Counter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from crewtrace import attributes

logger = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 5.0


class _CountingExporter(SpanExporter):
    """Wraps the real exporter: counts what it was handed and what it failed to deliver."""

    def __init__(self, inner: SpanExporter, dropped: Counter | None) -> None:
        self.inner = inner
        self.handed = 0
        self.failed = 0
        self._dropped = dropped
        self._lock = threading.Lock()
        self._closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.handed += len(spans)
        result = SpanExportResult.FAILURE
        if not self._closed:
            try:
                result = self.inner.export(spans)
            except Exception as exc:  # noqa: BLE001 - an exporter must report failure, not raise into the SDK
                logger.debug("crewtrace: exporter raised %r", exc)
        if result is not SpanExportResult.SUCCESS:
            with self._lock:
                self.failed += len(spans)
            if self._dropped is not None:
                self._dropped.add(len(spans), {attributes.SPANS_DROPPED_REASON: attributes.DROPPED_EXPORT_FAILED})
        return result

    def shutdown(self) -> None:
        """Shut the real exporter down (once): aborts its retries, so a pending export returns soon."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.inner.shutdown()
        except Exception as exc:  # noqa: BLE001
            logger.debug("crewtrace: exporter shutdown raised %r", exc)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class BoundedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batching processor whose shutdown returns within about ``shutdown_timeout`` seconds."""

    def __init__(
        self,
        exporter: SpanExporter,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        dropped: Counter | None = None,
        local: bool = False,
    ) -> None:
        self.local = local  # its exporter writes on this machine (a file, the console): quick, never retried
        self._counting = _CountingExporter(exporter, dropped)
        self._shutdown_timeout = shutdown_timeout
        self._dropped_counter = dropped
        self._ended = 0
        self._ended_lock = threading.Lock()
        self._reported = False
        super().__init__(self._counting)

    def on_end(self, span: ReadableSpan) -> None:
        with self._ended_lock:
            self._ended += 1
        super().on_end(span)

    def undelivered(self) -> tuple[int, int]:
        """(spans whose export failed, spans pushed out of the full queue or left in it) so far."""
        with self._ended_lock:
            ended = self._ended
        return self._counting.failed, max(ended - self._counting.handed, 0)

    def shutdown(self) -> None:
        self.shutdown_within(self._shutdown_timeout)

    def shutdown_within(self, seconds: float) -> None:
        """Flush and stop; after ``seconds`` the exporter is shut down, aborting retries to a dead collector."""
        abort = threading.Timer(max(seconds, 0.0), self._counting.shutdown)
        abort.daemon = True
        abort.start()
        try:
            super().shutdown()
        finally:
            abort.cancel()
            self._counting.shutdown()
            self._report()

    def _report(self) -> None:
        if self._reported:
            return
        self._reported = True
        failed, not_sent = self.undelivered()
        if not_sent and self._dropped_counter is not None:
            self._dropped_counter.add(not_sent, {attributes.SPANS_DROPPED_REASON: attributes.DROPPED_NOT_SENT})
        if failed or not_sent:
            logger.warning(
                "crewtrace: %d spans were not delivered (%d failed to export, %d dropped from the full queue "
                "or still queued at shutdown); is the collector reachable?",
                failed + not_sent,
                failed,
                not_sent,
            )
