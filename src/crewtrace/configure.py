"""``crewtrace.instrument()``: the one setup call (Resource, TracerProvider, BatchSpanProcessor, exporter, hooks).

Settings come from keyword arguments first, then the standard ``OTEL_*`` environment variables, then
defaults. Endpoint, headers, timeout and compression that are not passed are left to the SDK's exporters,
which read their own ``OTEL_EXPORTER_OTLP_*`` variables.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.util.re import parse_env_headers

from crewtrace.content import DEFAULT_MAX_LENGTH, ContentPolicy, capture_setting, compile_patterns
from crewtrace.delivery import DEFAULT_SHUTDOWN_TIMEOUT, BoundedBatchSpanProcessor
from crewtrace.exporters import OTLPJsonFileSpanExporter
from crewtrace.instrumentor import CrewAIInstrumentor
from crewtrace.metrics import build_meter_provider, spans_dropped_counter
from crewtrace.pricing import PRICES_ENV, PriceTable

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "crewai"
DEFAULT_FILE_PATH = "crewtrace-traces.jsonl"
FILE_PATH_ENV = "CREWTRACE_FILE_PATH"
SHUTDOWN_TIMEOUT_ENV = "CREWTRACE_SHUTDOWN_TIMEOUT"
PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "file", "none")
_PROTOCOL_ENV = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
_DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$")

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


def _setting(name: str, value: str | None, env: tuple[str, ...], accepted: tuple[str, ...], default: str) -> str:
    """A choice from a keyword argument or the first set env var, checked against what is accepted."""
    source = name
    if value is None:
        for var in env:
            if os.environ.get(var, "").strip():
                value, source = os.environ[var].strip(), var
                break
    chosen = (value or default).strip().lower()
    if chosen not in accepted:
        raise ValueError(f"crewtrace: {source}={value!r} is not supported; use one of: {', '.join(accepted)}")
    return chosen


def _exporter_names(exporter: str | None) -> list[str]:
    raw = exporter if exporter is not None else os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    source = "exporter" if exporter is not None else "OTEL_TRACES_EXPORTER"
    names = [n.strip().lower() for n in raw.split(",") if n.strip()] or ["otlp"]
    for name in names:
        if name not in EXPORTERS:
            raise ValueError(f"crewtrace: {source}={raw!r} is not supported; use one of: {', '.join(EXPORTERS)}")
    return [n for n in names if n != "none"]


def _check_endpoint(endpoint: str, protocol: str) -> str:
    if "://" not in endpoint:
        if protocol == "grpc" and _HOST_PORT.match(endpoint):
            return endpoint
        raise ValueError(f"crewtrace: endpoint={endpoint!r} is not a URL; expected e.g. {_DEFAULT_ENDPOINTS[protocol]}")
    parsed = urlparse(endpoint)
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"crewtrace: endpoint={endpoint!r} is not an http(s) URL with a host; "
            f"expected e.g. {_DEFAULT_ENDPOINTS[protocol]}"
        )
    return endpoint


def _http_traces_url(endpoint: str) -> str:
    """A base endpoint like OTEL_EXPORTER_OTLP_ENDPOINT gets ``/v1/traces``; a full traces URL is kept."""
    if urlparse(endpoint).path.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def _check_headers(headers: str | Mapping[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        return {str(k).lower(): str(v) for k, v in headers.items()}
    items = [item for item in str(headers).split(",") if item.strip()]
    if any("=" not in item or not item.split("=", 1)[0].strip() for item in items):
        raise ValueError(f"crewtrace: headers={headers!r} is malformed; expected 'key1=value1,key2=value2'")
    return {k.lower(): v for k, v in parse_env_headers(str(headers), liberal=True).items()}


def _env_endpoint(protocol: str) -> str:
    for var in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if os.environ.get(var):
            return os.environ[var]
    return _DEFAULT_ENDPOINTS[protocol]


def _otlp_exporter(
    protocol: str, endpoint: str | None, headers: dict[str, str] | None, timeout: float | None
) -> tuple[SpanExporter, str]:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter: SpanExporter = GrpcExporter(endpoint=endpoint, headers=headers, timeout=timeout)
        return exporter, f"OTLP gRPC {endpoint or _env_endpoint(protocol)}"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    url = _http_traces_url(endpoint) if endpoint else None
    exporter = HttpExporter(endpoint=url, headers=headers, timeout=timeout)
    return exporter, f"OTLP HTTP {url or _http_traces_url(_env_endpoint(protocol))}"


def _shutdown_timeout(value: float | None) -> float:
    source, raw = "shutdown_timeout", value
    if raw is None and os.environ.get(SHUTDOWN_TIMEOUT_ENV, "").strip():
        source, raw = SHUTDOWN_TIMEOUT_ENV, os.environ[SHUTDOWN_TIMEOUT_ENV].strip()
    if raw is None:
        return DEFAULT_SHUTDOWN_TIMEOUT
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(raw, bool) or not 0 < seconds < float("inf"):
        raise ValueError(f"crewtrace: {source}={raw!r} must be a positive number of seconds")
    return seconds


def _price_table(prices: str | os.PathLike[str] | Mapping[str, Any] | None) -> PriceTable:
    """The shipped price table with the user's prices (argument, else CREWTRACE_PRICES file) on top."""
    source, name = prices, "prices"
    if source is None and os.environ.get(PRICES_ENV, "").strip():
        source, name = os.environ[PRICES_ENV].strip(), PRICES_ENV
    if source is not None and not isinstance(source, (str, os.PathLike, Mapping)):
        raise ValueError(f"crewtrace: prices={source!r} must be a JSON file path or a dict of model prices")
    try:
        return PriceTable.load(source if isinstance(source, Mapping) else (os.fspath(source) if source else None))
    except ValueError as exc:
        shown = "{...}" if isinstance(source, Mapping) else repr(os.fspath(source)) if source else "None"
        raise ValueError(f"crewtrace: {name}={shown}: {exc}") from None


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
        chosen = _exporter_names(exporter)
        proto = _setting(
            "protocol",
            protocol,
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
            PROTOCOLS,
            "grpc",
        )
        if endpoint is not None:
            _check_endpoint(endpoint, proto)
        checked_headers = _check_headers(headers)
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"crewtrace: timeout={timeout!r} must be a positive number of seconds")
        if not isinstance(max_content_length, int) or max_content_length < 1:
            raise ValueError(f"crewtrace: max_content_length={max_content_length!r} must be a positive integer")
        price_table = _price_table(prices)
        exit_after = _shutdown_timeout(shutdown_timeout)
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
                provider = TracerProvider(resource=_resource(service_name, resource_attributes))
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
                span_exporter, where = _otlp_exporter(proto, endpoint, checked_headers, timeout)
            elif name == "console":
                span_exporter, where = ConsoleSpanExporter(out=sys.stdout), "console"
            else:
                path = os.path.abspath(file_path or os.environ.get(FILE_PATH_ENV) or DEFAULT_FILE_PATH)
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
