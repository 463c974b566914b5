"""The settings of ``crewtrace.instrument()``: each read from its argument or environment variable, and
checked, so that bad input is a one-line error at setup naming the setting and what is accepted."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.util.re import parse_env_headers

from crewtrace.delivery import DEFAULT_SHUTDOWN_TIMEOUT
from crewtrace.pricing import PRICES_ENV, PriceTable

DEFAULT_FILE_PATH = "crewtrace-traces.jsonl"
FILE_PATH_ENV = "CREWTRACE_FILE_PATH"
SHUTDOWN_TIMEOUT_ENV = "CREWTRACE_SHUTDOWN_TIMEOUT"
CREWAI_TELEMETRY_ENV = "CREWAI_DISABLE_TELEMETRY"
PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "file", "none")
PROTOCOL_ENV = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}
HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$")

SAMPLERS: dict[str, Callable[[float], Sampler]] = {
    "always_on": lambda _: sampling.ALWAYS_ON,
    "always_off": lambda _: sampling.ALWAYS_OFF,
    "traceidratio": sampling.TraceIdRatioBased,
    "parentbased_always_on": lambda _: sampling.ParentBased(sampling.ALWAYS_ON),
    "parentbased_always_off": lambda _: sampling.ParentBased(sampling.ALWAYS_OFF),
    "parentbased_traceidratio": lambda ratio: sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
}


def setting(name: str, value: str | None, env: tuple[str, ...], accepted: tuple[str, ...], default: str) -> str:
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


def exporter_names(exporter: str | None) -> list[str]:
    raw = exporter if exporter is not None else os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    source = "exporter" if exporter is not None else "OTEL_TRACES_EXPORTER"
    names = [n.strip().lower() for n in raw.split(",") if n.strip()] or ["otlp"]
    for name in names:
        if name not in EXPORTERS:
            raise ValueError(f"crewtrace: {source}={raw!r} is not supported; use one of: {', '.join(EXPORTERS)}")
    return [n for n in names if n != "none"]


def check_endpoint(endpoint: str, protocol: str) -> str:
    if "://" not in endpoint:
        if protocol == "grpc" and HOST_PORT.match(endpoint):
            return endpoint
        raise ValueError(f"crewtrace: endpoint={endpoint!r} is not a URL; expected e.g. {DEFAULT_ENDPOINTS[protocol]}")
    parsed = urlparse(endpoint)
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parsed = parsed._replace(netloc="")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"crewtrace: endpoint={endpoint!r} is not an http(s) URL with a host; "
            f"expected e.g. {DEFAULT_ENDPOINTS[protocol]}"
        )
    return endpoint


def http_traces_url(endpoint: str) -> str:
    """A base endpoint like OTEL_EXPORTER_OTLP_ENDPOINT gets ``/v1/traces``; a full traces URL is kept."""
    if urlparse(endpoint).path.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def check_headers(headers: str | Mapping[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        return {str(k).lower(): str(v) for k, v in headers.items()}
    items = [item for item in str(headers).split(",") if item.strip()]
    if any("=" not in item or not item.split("=", 1)[0].strip() for item in items):
        raise ValueError(f"crewtrace: headers={headers!r} is malformed; expected 'key1=value1,key2=value2'")
    return {k.lower(): v for k, v in parse_env_headers(str(headers), liberal=True).items()}


def env_endpoint(protocol: str) -> str:
    for var in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        if os.environ.get(var):
            return os.environ[var]
    return DEFAULT_ENDPOINTS[protocol]


def otlp_exporter(
    protocol: str, endpoint: str | None, headers: dict[str, str] | None, timeout: float | None
) -> tuple[SpanExporter, str]:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter: SpanExporter = GrpcExporter(endpoint=endpoint, headers=headers, timeout=timeout)
        return exporter, f"OTLP gRPC {endpoint or env_endpoint(protocol)}"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    url = http_traces_url(endpoint) if endpoint else None
    exporter = HttpExporter(endpoint=url, headers=headers, timeout=timeout)
    return exporter, f"OTLP HTTP {url or http_traces_url(env_endpoint(protocol))}"


def sampler(name: str | None, arg: float | str | None) -> Sampler:
    """The sampler for a TracerProvider crewtrace creates: argument, else OTEL_TRACES_SAMPLER(_ARG), checked."""
    name_source, arg_source = "sampler", "sampler_arg"
    if name is None:
        name, name_source = (
            os.environ.get("OTEL_TRACES_SAMPLER", "").strip() or "parentbased_always_on",
            "OTEL_TRACES_SAMPLER",
        )
    if arg is None and os.environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip():
        arg, arg_source = os.environ["OTEL_TRACES_SAMPLER_ARG"].strip(), "OTEL_TRACES_SAMPLER_ARG"
    key = str(name).strip().lower()
    if key not in SAMPLERS:
        raise ValueError(f"crewtrace: {name_source}={name!r} is not supported; use one of: {', '.join(SAMPLERS)}")
    ratio = 1.0
    if arg is not None:
        try:
            ratio = float(arg)
        except (TypeError, ValueError):
            ratio = -1.0
        if isinstance(arg, bool) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"crewtrace: {arg_source}={arg!r} must be a sampling ratio between 0 and 1")
    return SAMPLERS[key](ratio)


def shutdown_timeout(value: float | None) -> float:
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


def price_table(prices: str | os.PathLike[str] | Mapping[str, Any] | None) -> PriceTable:
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
