"""The span exporters crewtrace builds: OTLP over gRPC or HTTP, and the OTLP-JSON-lines file.

The file holds one ExportTraceServiceRequest as JSON per line, the format the Collector's ``file`` exporter
writes and its ``otlpjsonfile`` receiver reads (trace and span ids as lowercase hex, field names in
lowerCamelCase, enums as integers).
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk import environment_variables as sdk_env
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from crewtrace import attributes
from crewtrace.masking import redact_url
from crewtrace.setup.losses import Failure

DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}


def http_traces_url(endpoint: str) -> str:
    """A base endpoint like OTEL_EXPORTER_OTLP_ENDPOINT gets ``/v1/traces``; a full traces URL is kept."""
    if urlparse(endpoint).path.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


def configured_endpoint() -> str | None:
    """The traces endpoint the environment sets (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then _ENDPOINT), if any."""
    for var in (sdk_env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, sdk_env.OTEL_EXPORTER_OTLP_ENDPOINT):
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    return None


def env_endpoint(protocol: str) -> str:
    """Where the SDK's exporter sends when no endpoint is passed: its variables, else the default."""
    return configured_endpoint() or DEFAULT_ENDPOINTS[protocol]


def otlp_exporter(
    protocol: str, endpoint: str | None, headers: dict[str, str] | None, timeout: float | None
) -> tuple[SpanExporter, str]:
    """The SDK's OTLP span exporter for ``protocol``, and where it sends (for the log and the demo; a password
    in the URL masked)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter: SpanExporter = GrpcExporter(endpoint=endpoint, headers=headers, timeout=timeout)
        return exporter, f"OTLP gRPC {redact_url(endpoint or env_endpoint(protocol))}"
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    url = http_traces_url(endpoint) if endpoint else None
    exporter = HttpExporter(endpoint=url, headers=headers, timeout=timeout)
    return exporter, f"OTLP HTTP {redact_url(url or http_traces_url(env_endpoint(protocol)))}"


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node: Any) -> None:
    """Rewrite protobuf-JSON's base64 ids as the hex OTLP/JSON requires, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)


def spans_to_otlp_json(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """One ExportTraceServiceRequest for ``spans`` in OTLP/JSON form."""
    message: dict[str, Any] = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    _hex_ids(message)
    return message


class OTLPJsonFileSpanExporter(SpanExporter):
    """Appends each exported batch to ``path`` as one line of OTLP/JSON."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._closed = False
        self.last_failure: Failure | None = None  # why the last export failed, read by delivery.py

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._closed:
            return SpanExportResult.FAILURE
        try:
            line = json.dumps(spans_to_otlp_json(spans), separators=(",", ":"), ensure_ascii=False)
            with self._lock:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # Only its owner may read it: it holds prompts and answers (a file made earlier keeps its mode).
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with open(descriptor, "a", encoding="utf-8") as out:
                    out.write(line + "\n")
        except Exception as exc:  # noqa: BLE001 - an exporter reports failure, it does not raise
            self.last_failure = Failure(attributes.DROPPED_FILE_UNWRITABLE, f"{type(exc).__name__}: {exc}")
            return SpanExportResult.FAILURE
        self.last_failure = None
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def read_otlp_json_lines(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Each span in an OTLP-JSON-lines file, with its resource attributes under ``"resource"``."""
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            for resource_spans in json.loads(line).get("resourceSpans", []):
                resource = resource_spans.get("resource", {})
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        yield {**span, "resource": resource}
