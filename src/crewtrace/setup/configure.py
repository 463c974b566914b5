"""``crewtrace.instrument()``: the one setup call (Resource, TracerProvider, BatchSpanProcessor, exporter, hooks).

Settings come from keyword arguments first, then the standard ``OTEL_*`` environment variables, then
defaults, all read and checked by ``settings.resolve()``. An endpoint and headers that are not passed are
left to the SDK's exporters, which read their own ``OTEL_EXPORTER_OTLP_*`` variables (already checked).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from crewtrace.instrumentor import CrewAIInstrumentor
from crewtrace.setup import losses, settings
from crewtrace.setup.checked import Checked
from crewtrace.setup.delivery import DEFAULT_SHUTDOWN_TIMEOUT, BoundedBatchSpanProcessor, Target
from crewtrace.setup.exporters import OTLPJsonFileSpanExporter, env_endpoint, otlp_exporter
from crewtrace.setup.metric_export import QuietMetricExporter, build_meter_provider
from crewtrace.tracing.content import ContentPolicy
from crewtrace.tracing.metrics import spans_dropped_counter

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "crewai"

_lock = threading.Lock()
_active: Instrumentation | None = None


class _Slot(SpanProcessor):
    """crewtrace's one place in a TracerProvider, added once: instrument() fills it, shutdown() empties it. The
    SDK cannot take a processor out of a provider, so each instrument/shutdown cycle would leave one in it."""

    def __init__(self) -> None:
        self.processors: tuple[BoundedBatchSpanProcessor, ...] = ()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self.processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self.processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all([processor.force_flush(timeout_millis) for processor in self.processors])


_slots: weakref.WeakKeyDictionary[TracerProvider, _Slot] = weakref.WeakKeyDictionary()


def _slot_in(provider: TracerProvider) -> _Slot:
    """The provider's crewtrace slot, added to it the first time (call with ``_lock`` held)."""
    slot = _slots.get(provider)
    if slot is None:
        slot = _slots[provider] = _Slot()
        provider.add_span_processor(slot)
    return slot


@dataclass
class Instrumentation:
    """What ``instrument()`` set up. Keep it to flush or shut down; calling ``instrument()`` again returns it."""

    tracer_provider: TracerProvider
    destinations: list[str]
    processors: list[BoundedBatchSpanProcessor] = field(default_factory=list)
    meter_provider: SdkMeterProvider | None = None
    metric_exporters: list[QuietMetricExporter] = field(default_factory=list, repr=False)
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    arguments: dict[str, Any] = field(default_factory=dict, repr=False)  # what instrument() was given
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
            atexit.unregister(self.shutdown)  # else every handle ever made would live until exit
            if CrewAIInstrumentor().is_instrumented_by_opentelemetry:  # not when crewai was unsupported
                CrewAIInstrumentor().uninstrument()
            deadline = time.monotonic() + self.shutdown_timeout  # one budget for all of it
            # Local exporters first: an unreachable collector must not use up the time a file needs.
            for processor in sorted(self.processors, key=lambda p: not p.local):
                processor.shutdown_within(deadline - time.monotonic())
            slot = _slots.get(self.tracer_provider)
            if slot is not None:
                slot.processors = tuple(p for p in slot.processors if p not in self.processors)
            if any(p.hopeless for p in self.processors):
                for exporter in self.metric_exporters:  # the same endpoint: abort its retries up front
                    exporter.shutdown(timeout_millis=0)
            if self.meter_provider is not None:
                try:
                    self.meter_provider.shutdown(timeout_millis=max(deadline - time.monotonic(), 0.1) * 1000)
                except Exception as exc:  # noqa: BLE001 - it raises when a reader ran out of time
                    logger.debug("crewtrace: MeterProvider shutdown raised %r", exc)
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
    resource_attributes: str | Mapping[str, Any] | None = None,
    exporter: str | Sequence[str] | None = None,
    file_path: str | os.PathLike[str] | None = None,
    tracer_provider: TracerProvider | None = None,
    capture_content: bool | None = None,
    max_content_length: int | None = None,
    redact: Callable[[str], str] | str | Sequence[str] | None = None,
    mask_secrets: bool | None = None,
    prices: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    meter_provider: MeterProvider | None = None,
    metrics_exporter: str | None = None,
    shutdown_timeout: float | None = None,
    max_request_size: int | None = None,
    crewai_telemetry: bool | None = None,
    sampler: str | None = None,
    sampler_arg: float | None = None,
) -> Instrumentation:
    """Trace every CrewAI crew run and export it; returns a handle with ``force_flush()`` and ``shutdown()``.

    If ``tracer_provider`` is given, or the application already installed an SDK TracerProvider globally,
    crewtrace adds its exporter to that provider (its resource and sampler stay as they are); otherwise it
    creates one and installs it globally. A bad setting, given or from the environment, raises
    ``crewtrace.SettingError`` (a ``ValueError``) in one line naming it. A second call returns the first
    handle; settings that differ from the first call's are named in a warning and not applied.
    """
    global _active
    arguments = {k: v for k, v in locals().items() if v is not None}
    with _lock:
        if _active is not None:
            differ = sorted(k for k in arguments.keys() | _active.arguments.keys() if not _same(k, arguments, _active))
            if differ:
                logger.warning(
                    "crewtrace is already instrumented; the settings of this call that differ are not applied: "
                    "%s (call shutdown() on the handle first to change them)",
                    ", ".join(differ),
                )
            return _active
        values, sources = settings.resolve(arguments)
        return _setup(Checked.of(values, sources), arguments)


def _check_reachable(target: Target, where: str, processor: BoundedBatchSpanProcessor) -> None:
    """Say at setup, not at exit, when a local endpoint has nothing listening or speaks the other protocol."""
    if not losses.is_loopback(target.endpoint, target.protocol):
        return  # a remote collector is not probed: that could take a while, and it may be firewalled to probes
    found = losses.probe(target.endpoint, target.protocol, timeout=0.2)
    if found is not None and found.reason in losses.ADVICE:
        advice = losses.ADVICE[found.reason].format(where=where, detail=found.detail)
        logger.warning("crewtrace: spans will be lost until this changes: %s", advice)
        processor.found_unusable(found)


def _same(name: str, arguments: Mapping[str, Any], active: Instrumentation) -> bool:
    try:
        return bool(arguments.get(name) == active.arguments.get(name))
    except Exception:  # noqa: BLE001 - a value whose == raises counts as different
        return False


def _setup(values: Checked, arguments: dict[str, Any]) -> Instrumentation:
    global _active
    if values.crewai_telemetry is False:
        # CrewAI checks this on every telemetry call, so it also stops telemetry that already started.
        os.environ[settings.CREWAI_TELEMETRY_ENV] = "true"
    patterns, redact_hook = values.redact
    policy = ContentPolicy(
        capture=values.capture_content,
        max_length=values.max_content_length,
        mask_secrets=values.mask_secrets,
        patterns=patterns,
        redact=redact_hook,
    )
    provider = _tracer_provider(values)
    handle = Instrumentation(provider, [], shutdown_timeout=values.shutdown_timeout, arguments=arguments)
    meter_provider = _add_exporters(handle, values)
    logger.info("crewtrace: tracing CrewAI runs; spans go to %s", ", ".join(handle.destinations) or "nowhere")
    CrewAIInstrumentor().instrument(
        tracer_provider=provider, meter_provider=meter_provider, content_policy=policy, prices=values.prices
    )
    _active = handle
    atexit.register(handle.shutdown)  # bounded: a process never hangs on an unreachable collector
    return handle


def _tracer_provider(values: Checked) -> TracerProvider:
    """The provider given, else the global SDK provider if there is one, else a new one made global."""
    provider = values.tracer_provider
    if provider is not None:
        return provider
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        if values.given("service_name") or values.given("resource_attributes"):
            logger.warning("crewtrace: keeping the existing TracerProvider's resource; service_name ignored")
        return current
    resource = _resource(
        values.service_name if values.given("service_name") else None,
        values.resource_attributes if values.given("resource_attributes") else None,
    )
    provider = TracerProvider(resource=resource, sampler=settings.make_sampler(values.sampler, values.sampler_arg))
    trace.set_tracer_provider(provider)
    return provider


def _add_exporters(handle: Instrumentation, values: Checked) -> MeterProvider | None:
    """One bounded batching processor per chosen exporter on the handle's provider, and the meter provider
    (built to export where the spans go, unless one was given or metrics are off)."""
    protocol, chosen = values.protocol, values.exporter
    endpoint = values.endpoint if values.given("endpoint") else None
    headers = values.headers if values.given("headers") else None
    timeout = values.timeout
    meter_provider = values.meter_provider
    if meter_provider is None and values.metrics_exporter != "none":
        built = build_meter_provider(chosen, protocol, endpoint, headers, timeout, handle.tracer_provider.resource)
        handle.meter_provider, handle.metric_exporters = built
        meter_provider = handle.meter_provider
    dropped = spans_dropped_counter(meter_provider)
    for name in chosen:
        target = None
        if name == "otlp":
            span_exporter, where = otlp_exporter(protocol, endpoint, headers, timeout)
            target = Target(endpoint or env_endpoint(protocol), protocol, timeout or 10.0)
        elif name == "console":
            span_exporter, where = ConsoleSpanExporter(out=sys.stdout), "console"
        else:
            span_exporter, where = OTLPJsonFileSpanExporter(values.file_path), f"file {values.file_path}"
        processor = BoundedBatchSpanProcessor(
            span_exporter,
            handle.shutdown_timeout,
            dropped,
            local=name != "otlp",
            where=where,
            target=target,
            max_request_size=values.max_request_size if name == "otlp" else None,
        )
        slot = _slot_in(handle.tracer_provider)
        slot.processors = (*slot.processors, processor)
        handle.processors.append(processor)
        handle.destinations.append(where)
        if target is not None:
            _check_reachable(target, where, processor)
    return meter_provider
