"""``crewtrace.instrument()``: the one setup call (Resource, TracerProvider, BatchSpanProcessor, exporter, hooks).

Settings come from keyword arguments first, then the standard ``OTEL_*`` environment variables, then
defaults. Endpoint, headers, timeout and compression that are not passed are left to the SDK's exporters,
which read their own ``OTEL_EXPORTER_OTLP_*`` variables.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from crewtrace import settings
from crewtrace.content import DEFAULT_MAX_LENGTH, ContentPolicy, capture_setting, compile_patterns
from crewtrace.delivery import DEFAULT_SHUTDOWN_TIMEOUT, BoundedBatchSpanProcessor
from crewtrace.exporters import OTLPJsonFileSpanExporter
from crewtrace.instrumentor import CrewAIInstrumentor
from crewtrace.metrics import build_meter_provider, spans_dropped_counter

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "crewai"

_lock = threading.Lock()
_active: Instrumentation | None = None


@dataclass
class Instrumentation:
    """What ``instrument()`` set up. Keep it to flush or shut down; calling ``instrument()`` again returns it."""

    tracer_provider: TracerProvider
    destinations: list[str]
    processors: list[BoundedBatchSpanProcessor] = field(default_factory=list)
    meter_provider: SdkMeterProvider | None = None
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    _closed: bool = field(default=False, init=False, repr=False)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every ended span and the metrics now; False if an exporter did not finish within the timeout."""
        done = all(p.force_flush(timeout_millis) for p in self.processors)
        if self.meter_provider is not None:
            done = self.meter_provider.force_flush(timeout_millis) and done
        return done

    def shutdown(self) -> None:
        """Remove the CrewAI hooks, flush and stop crewtrace's exporters, each within ``shutdown_timeout``
        seconds even when the collector is unreachable. ``instrument()`` may be called again."""
        global _active
        with _lock:
            if self._closed:
                return
            self._closed = True
            CrewAIInstrumentor().uninstrument()
            deadline = time.monotonic() + self.shutdown_timeout  # one budget for all of it
            for processor in self.processors:
                processor.shutdown_within(deadline - time.monotonic())
            if self.meter_provider is not None:
                self.meter_provider.shutdown(timeout_millis=max(deadline - time.monotonic(), 0.1) * 1000)
            if _active is self:
                _active = None


def _resource(service_name: str | None, resource_attributes: Mapping[str, Any] | None) -> Resource:
    attributes: dict[str, Any] = dict(resource_attributes or {})
    if service_name:
        attributes[SERVICE_NAME] = service_name
    resource = Resource.create(attributes)
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def instrument(
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: str | Mapping[str, str] | None = None,
    timeout: float | None = None,
    service_name: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    exporter: str | None = None,
    file_path: str | os.PathLike[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    capture_content: bool | None = None,
    max_content_length: int = DEFAULT_MAX_LENGTH,
    redact: Callable[[str], str] | str | Sequence[str] | None = None,
    mask_secrets: bool = True,
    prices: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    meter_provider: MeterProvider | None = None,
    shutdown_timeout: float | None = None,
    crewai_telemetry: bool | None = None,
    sampler: str | None = None,
    sampler_arg: float | str | None = None,
) -> Instrumentation:
    """Trace every CrewAI crew run and export it; returns a handle with ``force_flush()`` and ``shutdown()``.

    If ``tracer_provider`` is given, or the application already installed an SDK TracerProvider globally,
    crewtrace adds its exporter to that provider (its resource and sampler stay as they are); otherwise it
    creates one and installs it globally. Bad settings raise ``ValueError`` naming the setting.
    """
    global _active
    with _lock:
        if _active is not None:
            logger.info("crewtrace is already instrumented; returning the existing handle")
            return _active
        chosen = settings.exporter_names(exporter)
        proto = settings.setting(
            "protocol",
            protocol,
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
            settings.PROTOCOLS,
            "grpc",
        )
        if endpoint is not None:
            settings.check_endpoint(endpoint, proto)
        checked_headers = settings.check_headers(headers)
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"crewtrace: timeout={timeout!r} must be a positive number of seconds")
        if not isinstance(max_content_length, int) or max_content_length < 1:
            raise ValueError(f"crewtrace: max_content_length={max_content_length!r} must be a positive integer")
        price_table = settings.price_table(prices)
        exit_after = settings.shutdown_timeout(shutdown_timeout)
        chosen_sampler = settings.sampler(sampler, sampler_arg)
        if crewai_telemetry is not None and not isinstance(crewai_telemetry, bool):
            raise ValueError(f"crewtrace: crewai_telemetry={crewai_telemetry!r} must be True, False or None")
        if crewai_telemetry is False:
            # CrewAI checks this on every telemetry call, so it also stops telemetry that already started.
            os.environ[settings.CREWAI_TELEMETRY_ENV] = "true"
        policy = ContentPolicy(
            capture=capture_setting(capture_content),
            max_length=max_content_length,
            mask_secrets=bool(mask_secrets),
            patterns=() if callable(redact) else compile_patterns(redact),
            redact=redact if callable(redact) else None,
        )

        provider = tracer_provider
        if provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                provider = current
                if service_name or resource_attributes:
                    logger.warning("crewtrace: keeping the existing TracerProvider's resource; service_name ignored")
            else:
                provider = TracerProvider(resource=_resource(service_name, resource_attributes), sampler=chosen_sampler)
                trace.set_tracer_provider(provider)

        handle = Instrumentation(provider, [], shutdown_timeout=exit_after)
        if meter_provider is None:
            handle.meter_provider = build_meter_provider(
                chosen, proto, endpoint, checked_headers, timeout, provider.resource
            )
            meter_provider = handle.meter_provider
        dropped = spans_dropped_counter(meter_provider)
        for name in chosen:
            if name == "otlp":
                span_exporter, where = settings.otlp_exporter(proto, endpoint, checked_headers, timeout)
            elif name == "console":
                span_exporter, where = ConsoleSpanExporter(out=sys.stdout), "console"
            else:
                path = os.path.abspath(
                    file_path or os.environ.get(settings.FILE_PATH_ENV) or settings.DEFAULT_FILE_PATH
                )
                span_exporter, where = OTLPJsonFileSpanExporter(path), f"file {path}"
            processor = BoundedBatchSpanProcessor(span_exporter, exit_after, dropped)
            provider.add_span_processor(processor)
            handle.processors.append(processor)
            handle.destinations.append(where)

        CrewAIInstrumentor().instrument(
            tracer_provider=provider, meter_provider=meter_provider, content_policy=policy, prices=price_table
        )
        _active = handle
        atexit.register(handle.shutdown)  # bounded: a process never hangs on an unreachable collector
        return handle
