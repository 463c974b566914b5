"""Span delivery that never holds the process and never loses spans without saying why.

``BoundedBatchSpanProcessor`` is the SDK's BatchSpanProcessor with three differences:
- each batch is split so that no export request exceeds ``max_request_size`` bytes (request_size.py);
- every span not delivered is counted by reason and each reason logged once (losses.py), and
  ``force_flush()`` returns False when something it flushed was lost;
- shutdown takes at most ``shutdown_timeout`` seconds and starts no thread: then the exporter is shut down,
  which aborts its retries, and what it was still exporting is counted as lost. When nothing listens at a local
  endpoint, it does not wait at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.metrics import Counter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from crewtrace import attributes
from crewtrace.setup import losses, request_size, sdk_releases
from crewtrace.setup.losses import EXPORTER_LOGS, Failure, Losses

logger = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 5.0
_ABORTED = Failure(attributes.DROPPED_NOT_SENT, "still being exported when shutdown_timeout ran out")
_HOPELESS = (attributes.DROPPED_NOTHING_LISTENING, attributes.DROPPED_WRONG_PROTOCOL)  # retrying cannot help
_QUEUE_FULL = Failure(attributes.DROPPED_NOT_SENT, "pushed out of the full queue (raise OTEL_BSP_MAX_QUEUE_SIZE)")


@dataclass(frozen=True)
class Target:
    """Where an OTLP exporter sends: probed to tell why an export failed."""

    endpoint: str
    protocol: str
    timeout: float = 10.0  # the exporter's: how long an export may wait for the endpoint to come back


class _CountingExporter(SpanExporter):
    """Wraps the real exporter: splits batches by size, and counts what it was handed and what it lost."""

    def __init__(self, inner: SpanExporter, losses_: Losses, target: Target | None, max_size: int | None) -> None:
        self.inner = inner
        self.losses = losses_
        self.target = target
        self.max_size = max_size
        self.handed = 0
        self._lock = threading.Lock()
        self._closed: Failure | None = None
        self.hopeless: Failure | None = None  # the endpoint was found unusable: ask it again before each export
        self._closing = threading.Event()
        self._in_flight = 0  # spans inside the real exporter's export(): counted by close() if it comes first
        self._sealed = False  # shutdown has counted every span not handed over yet as not sent

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            if self._sealed:  # a worker that outlived shutdown: these spans were counted as not sent
                return SpanExportResult.FAILURE
            self.handed += len(spans)
        runs = request_size.split(spans, self.max_size) if self.max_size else [spans]
        result = SpanExportResult.SUCCESS
        for run in runs:
            if self._closed is not None:
                self.losses.lost(len(run), self._closed)
                result = SpanExportResult.FAILURE
                continue
            if self._export_run(run) is not SpanExportResult.SUCCESS:
                result = SpanExportResult.FAILURE
        return result

    def _export_run(self, run: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.hopeless is not None and not self._back_within_timeout():
            self.losses.lost(len(run), self._closed or self.hopeless)
            return SpanExportResult.FAILURE
        with self._lock:
            closed = self._closed
            if closed is None:
                self._in_flight += len(run)
        if closed is not None:  # closed while the endpoint was being asked
            self.losses.lost(len(run), closed)
            return SpanExportResult.FAILURE
        EXPORTER_LOGS.begin()
        result = SpanExportResult.FAILURE
        raised: Failure | None = None
        try:
            result = self.inner.export(run)
        except Exception as exc:  # noqa: BLE001 - an exporter must report failure, not raise into the SDK
            # SDK 1.34's HTTP exporter lets the requests exception out (a timeout, a refused connection);
            # newer ones log it, where EXPORTER_LOGS reads it.
            logger.debug("crewtrace: exporter raised %r", exc)
            raised = losses.from_status(exc)
        finally:
            seen = EXPORTER_LOGS.end() or raised
            with self._lock:
                abandoned = self._closed is not None  # close() came meanwhile and counted this run as lost
                if not abandoned:
                    self._in_flight -= len(run)
        if abandoned:
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            failure = self._diagnose(seen)
            self.losses.lost(len(run), failure)
            if failure.reason in _HOPELESS:
                self.hopeless = failure
        return result

    def _back_within_timeout(self) -> bool:
        """The endpoint was unusable (nothing listening, the other protocol): ask it every half second within
        the exporter's timeout, rather than let the SDK's exporter retry (SDK 1.34, which crewai 1.10 to 1.14
        pin, sleeps through about a minute of retries whatever the timeout, and shutdown cannot cut that
        short). Closing stops asking."""
        assert self.hopeless is not None and self.target is not None
        deadline = time.monotonic() + self.target.timeout
        while True:
            probed = losses.probe(self.target.endpoint, self.target.protocol, timeout=0.2)
            if probed is None or probed.reason not in _HOPELESS:
                self.hopeless = None
                return True
            self.hopeless = probed
            if time.monotonic() >= deadline or self._closing.wait(0.5):
                return False

    def _diagnose(self, seen: Failure | None) -> Failure:
        """Why the last export failed: what the SDK logged, refined by asking the endpoint."""
        if self._closed is not None:
            return self._closed
        own = getattr(self.inner, "last_failure", None)  # crewtrace's own exporters say it themselves
        if isinstance(own, Failure):
            return own
        if self.target is not None and (seen is None or seen.reason == losses.UNREACHABLE):
            probed = losses.probe(self.target.endpoint, self.target.protocol)
            if probed is not None and probed.reason != losses.UNREACHABLE:
                return probed
        if seen is None or seen.reason == losses.UNREACHABLE:
            return Failure(attributes.DROPPED_EXPORT_FAILED, seen.detail if seen else "no cause reported")
        return seen

    def close(self, why: Failure = _ABORTED) -> None:
        """Shut the real exporter down (once) without waiting for it: aborts its retries, and the spans it is
        still exporting are counted as lost now, not whenever its export returns."""
        with self._lock:
            if self._closed is not None:
                return
            self._closed = why
            abandoned, self._in_flight = self._in_flight, 0
        self._closing.set()
        self.losses.lost(abandoned, why)
        try:
            sdk_releases.shut_down_now(self.inner)
        except Exception as exc:  # noqa: BLE001
            logger.debug("crewtrace: exporter shutdown raised %r", exc)

    def seal(self) -> int:
        """Shutdown counts what was never handed over as not sent: from now on nothing more is handed over.
        Returns how many spans were."""
        with self._lock:
            self._sealed = True
            return self.handed

    @property
    def closed(self) -> Failure | None:
        """Why the exporter was closed, once it is."""
        return self._closed

    def shutdown(self) -> None:
        self.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class BoundedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batching processor, with size-bounded requests, named losses and a bounded shutdown."""

    def __init__(
        self,
        exporter: SpanExporter,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        dropped: Counter | None = None,
        local: bool = False,
        where: str = "the exporter",
        target: Target | None = None,
        max_request_size: int | None = None,
    ) -> None:
        self.local = local  # its exporter writes on this machine (a file, the console): quick, never retried
        self.losses = Losses(where, dropped)
        self._counting = _CountingExporter(exporter, self.losses, target, max_request_size)
        self._shutdown_timeout = shutdown_timeout
        self._ended = 0
        self._ended_lock = threading.Lock()
        self._stopping = False
        self._reported = False
        EXPORTER_LOGS.install()
        super().__init__(self._counting)

    def on_end(self, span: ReadableSpan) -> None:
        with self._ended_lock:
            self._ended += 1
        super().on_end(span)

    def undelivered(self) -> tuple[int, int]:
        """(spans the exporter lost, spans pushed out of the full queue or left in it) so far."""
        return self.losses.total(), max(self._ended_count() - self._counting.handed, 0)

    def _ended_count(self) -> int:
        with self._ended_lock:
            return self._ended

    def found_unusable(self, failure: Failure) -> None:
        """Setup found the endpoint unusable (nothing listening, the other protocol): exports ask it again first."""
        if failure.reason in _HOPELESS:
            self._counting.hopeless = failure

    @property
    def hopeless(self) -> bool:
        """Shutdown found nothing listening at the endpoint, or the other protocol, and did not wait for it."""
        closed = self._counting.closed
        return closed is not None and closed.reason in _HOPELESS

    def force_flush(self, timeout_millis: int | None = 30_000) -> bool:
        """Export every ended span now; False if that did not finish, or lost any of them."""
        before = self.losses.total()
        done = super().force_flush(timeout_millis)
        return bool(done) and self.losses.total() == before

    def shutdown(self) -> None:
        self.shutdown_within(self._shutdown_timeout)

    def shutdown_within(self, seconds: float) -> None:
        """Flush and stop, once; after ``seconds`` the exporter is shut down, aborting retries to a dead collector.
        Never raises: it runs in the user's code and at exit."""
        with self._ended_lock:
            if self._stopping:  # the TracerProvider's own exit handler comes after crewtrace's
                return
            self._stopping = True
        deadline = time.monotonic() + max(seconds, 0.0)
        self.losses.quiet = True
        try:
            target = self._counting.target
            if target is not None and (losses.is_loopback(target.endpoint, target.protocol) or self.losses.total()):
                probed = losses.probe(target.endpoint, target.protocol, timeout=0.2)
                if probed is not None and probed.reason in _HOPELESS:
                    self._counting.close(probed)  # nothing to wait for: what is queued is lost now, not in 5 s
            self._stop_worker(max(deadline - time.monotonic(), 0.0))
        except Exception as exc:  # noqa: BLE001
            logger.debug("crewtrace: span processor shutdown raised %r", exc)
        finally:
            self._counting.close()
            self._report()

    def _stop_worker(self, seconds: float) -> None:
        """Let the SDK's worker export what is queued for at most ``seconds``, then stop waiting for it. No thread
        of crewtrace's own: Python 3.12 and later refuse one at exit."""
        if not sdk_releases.stop_batch_worker(self, seconds):  # a shape not known: the SDK's own shutdown
            super().shutdown()  # type: ignore[no-untyped-call]  # (the SDK leaves it unannotated)

    def _report(self) -> None:
        if self._reported:
            return
        self._reported = True
        EXPORTER_LOGS.uninstall()
        not_sent = max(self._ended_count() - self._counting.seal(), 0)
        if not_sent:
            self.losses.lost(not_sent, _QUEUE_FULL)
        summary = self.losses.summary()
        if summary:
            logger.warning(summary)
