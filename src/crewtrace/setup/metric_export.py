"""Where crewtrace's metrics go: a MeterProvider exporting to the same place as the spans (OTLP or console).

Each OTLP metric exporter is wrapped so that the SDK's retry warnings are read by crewtrace, not printed
(as for spans, see losses.py), and so that shutdown can abort its retries when nothing is listening.
"""

from __future__ import annotations

import logging
import sys
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from crewtrace.setup.losses import EXPORTER_LOGS

logger = logging.getLogger(__name__)


class QuietMetricExporter(MetricExporter):
    """An OTLP metric exporter whose SDK log records go through crewtrace's reader instead of the terminal."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner = inner
        self._closed = False
        EXPORTER_LOGS.install()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        if self._closed:
            return MetricExportResult.FAILURE
        EXPORTER_LOGS.begin()
        try:
            return self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the SDK's reader would print its traceback
            # SDK 1.34's gRPC exporter, shut down during an export, raises from it (a closed channel, or the
            # lock its shutdown released: opentelemetry-python#3398, #4465).
            logger.debug("crewtrace: metric exporter raised %r", exc)
            return MetricExportResult.FAILURE
        finally:
            EXPORTER_LOGS.end()

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the real exporter down once, within the time given; aborts a retry in progress."""
        if self._closed:
            return
        self._closed = True
        # The SDK's PeriodicExportingMetricReader passes what is left of its own timeout as ``timeout`` (ms),
        # not ``timeout_millis``; SDK 1.34's gRPC exporter would otherwise wait 30 s for an export in flight.
        limit = kwargs.pop("timeout", None)
        if isinstance(limit, (int, float)):
            timeout_millis = min(timeout_millis, limit)
        EXPORTER_LOGS.begin()
        try:
            self.inner.shutdown(timeout_millis=max(timeout_millis, 0.0), **kwargs)
        except Exception as exc:  # noqa: BLE001
            logger.debug("crewtrace: metric exporter shutdown raised %r", exc)
        finally:
            EXPORTER_LOGS.end()
            EXPORTER_LOGS.uninstall()


def build_meter_provider(
    exporters: list[str],
    protocol: str,
    endpoint: str | None,
    headers: dict[str, str] | None,
    timeout: float | None,
    resource: Resource,
) -> tuple[SdkMeterProvider | None, list[QuietMetricExporter]]:
    """A MeterProvider exporting where the traces go (OTLP or console), or None when they go nowhere a
    metric can (a file); and its OTLP exporters. instrument() does not call it when OTEL_METRICS_EXPORTER
    is ``none``."""
    readers: list[PeriodicExportingMetricReader] = []
    otlp: list[QuietMetricExporter] = []
    for name in exporters:
        if name == "otlp" and protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

            otlp.append(QuietMetricExporter(Grpc(endpoint=endpoint, headers=headers, timeout=timeout)))
            readers.append(PeriodicExportingMetricReader(otlp[-1]))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

            url = _metrics_url(endpoint) if endpoint else None
            otlp.append(QuietMetricExporter(Http(endpoint=url, headers=headers, timeout=timeout)))
            readers.append(PeriodicExportingMetricReader(otlp[-1]))
        elif name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stdout)))
    if not readers:
        return None, []
    # Shut down by crewtrace's own exit handler, within the shutdown timeout (the SDK's would wait 30 s).
    return SdkMeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False), otlp


def _metrics_url(endpoint: str) -> str:
    """The OTLP/HTTP metrics URL for the endpoint given for traces (a base URL or a /v1/traces URL)."""
    base = endpoint.rstrip("/")
    if urlparse(base).path.endswith("/v1/traces"):
        base = base[: -len("/v1/traces")]
    return base + "/v1/metrics"
