"""Spans as plain records, from the SDK, from an OTLP-JSON-lines file, or from Jaeger's query API (v3).

The summary works on these, so the demo, a stored file and a trace in Jaeger render the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import string
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crewtrace import attributes

logger = logging.getLogger(__name__)

_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR", "STATUS_CODE_UNSET": "UNSET", "STATUS_CODE_OK": "OK"}
_STATUS["STATUS_CODE_ERROR"] = "ERROR"


@dataclass
class EventRecord:
    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpanRecord:
    """The parts of one span the summary needs."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status: str  # "UNSET" | "OK" | "ERROR"
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[EventRecord] = field(default_factory=list)
    status_message: str = ""

    @property
    def operation(self) -> str | None:
        return self.attributes.get(attributes.GEN_AI_OPERATION_NAME)

    @property
    def duration_s(self) -> float:
        return max(self.end_ns - self.start_ns, 0) / 1e9


def records_from_sdk(spans: Iterable[Any]) -> list[SpanRecord]:
    """Records from SDK ``ReadableSpan`` objects."""
    records = []
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        records.append(
            SpanRecord(
                trace_id=f"{span.context.trace_id:032x}",
                span_id=f"{span.context.span_id:016x}",
                parent_id=f"{parent:016x}" if parent is not None else None,
                name=span.name,
                start_ns=span.start_time or 0,
                end_ns=span.end_time or 0,
                status=span.status.status_code.name,
                attributes=dict(span.attributes or {}),
                events=[EventRecord(e.name, e.timestamp, dict(e.attributes or {})) for e in span.events],
                status_message=span.status.description or "",
            )
        )
    return records


def otlp_value(value: Mapping[str, Any]) -> Any:
    """An AnyValue in OTLP/JSON (lowerCamelCase) or protobuf's JSON with field names (snake_case) as Python."""
    for key, item in value.items():
        key = _CAMEL.get(key, key)
        if key == "arrayValue":
            return [otlp_value(v) for v in item.get("values", [])]
        if key == "kvlistValue":
            return {kv["key"]: otlp_value(kv.get("value", {})) for kv in item.get("values", [])}
        if key == "intValue":
            return int(item)
        if key == "doubleValue":
            return float(item)
        if key == "boolValue":
            return bool(item)
        return item
    return None


_CAMEL = {f"{kind}_value": f"{kind}Value" for kind in ("string", "bool", "int", "double", "bytes")}
_CAMEL.update(array_value="arrayValue", kvlist_value="kvlistValue")


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: otlp_value(kv.get("value", {})) for kv in items}


def _hex(value: Any, size: int, what: str) -> str:
    """An id of ``size`` bytes as lowercase hex: OTLP/JSON writes hex; protobuf's JSON mapping (some servers)
    writes base64. Anything else is refused: ids name the report's files and its HTML anchors."""
    if isinstance(value, str):
        if len(value) == size * 2 and all(c in string.hexdigits for c in value):
            return value.lower()
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw.hex()
    raise ValueError(f"{what} {str(value)[:40]!r} is not {size * 2} hex digits")


def _event(event: Mapping[str, Any]) -> EventRecord:
    return EventRecord(
        event.get("name", ""), int(event.get("timeUnixNano", 0)), _attributes(event.get("attributes", []))
    )


def records_from_otlp(message: Mapping[str, Any]) -> list[SpanRecord]:
    """Records from one OTLP/JSON ``TracesData`` / ``ExportTraceServiceRequest`` object."""
    records = []
    for resource_spans in message.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                status = span.get("status", {})
                parent = span.get("parentSpanId") or None
                records.append(
                    SpanRecord(
                        trace_id=_hex(span["traceId"], 16, "trace id"),
                        span_id=_hex(span["spanId"], 8, "span id"),
                        parent_id=_hex(parent, 8, "parent span id") if parent else None,
                        name=span.get("name", ""),
                        start_ns=int(span.get("startTimeUnixNano", 0)),
                        end_ns=int(span.get("endTimeUnixNano", 0)),
                        status=_STATUS.get(status.get("code", 0), "UNSET"),
                        attributes=_attributes(span.get("attributes", [])),
                        events=[
                            EventRecord(
                                e.get("name", ""), int(e.get("timeUnixNano", 0)), _attributes(e.get("attributes", []))
                            )
                            for e in span.get("events", [])
                        ],
                        status_message=status.get("message", ""),
                    )
                )
    return records


def without_loops(records: Sequence[SpanRecord]) -> list[SpanRecord]:
    """The records with a repeated (trace, span) id left out and each parent link that closes a loop cut (that
    span becomes a root): a trace is hostile input, and every walk up or down its tree must end. Says so."""
    unique: dict[tuple[str, str], SpanRecord] = {}
    for record in records:
        unique.setdefault((record.trace_id, record.span_id), record)
    state: dict[tuple[str, str], bool] = {}  # True: on the walk in progress; False: known to reach a root
    cut: list[SpanRecord] = []
    for start in unique:
        path: list[tuple[str, str]] = []
        node: tuple[str, str] | None = start
        while node is not None and node in unique and node not in state:
            state[node] = True
            path.append(node)
            parent = unique[node].parent_id
            node = (node[0], parent) if parent else None
        if node is not None and state.get(node):  # back onto its own walk: the last link closes a loop
            last = unique[path[-1]]
            last.parent_id = None
            cut.append(last)
        for key in path:
            state[key] = False
    repeated = len(records) - len(unique)
    if repeated or cut:
        logger.warning(
            "crewtrace: %d span(s) with a repeated id left out, %d parent link(s) that formed a loop cut",
            repeated,
            len(cut),
        )
    return list(unique.values())


def read_otlp_file(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Every span in an OTLP-JSON-lines file (what ``exporter="file"`` and the Collector's file exporter write)."""
    records: list[SpanRecord] = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.extend(records_from_otlp(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number} is not an OTLP/JSON line: {exc}") from None
    return without_loops(records)


def jaeger_get(base_url: str, path: str, timeout: float) -> tuple[int, str]:
    """GET ``path`` from Jaeger's query API: (status, body); a Jaeger that cannot be reached is a ValueError."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}{path}", timeout=timeout) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise ValueError(f"cannot reach Jaeger at {base_url.rstrip('/')}: {exc}") from None


def jaeger_records(body: str) -> list[SpanRecord]:
    """The spans of a Jaeger API v3 answer: the gateway streams one {"result": TracesData} object per chunk."""
    records: list[SpanRecord] = []
    for chunk in json_chunks(body):
        if "error" in chunk:
            raise ValueError(f"Jaeger: {chunk['error'].get('message', chunk['error'])}")
        records.extend(records_from_otlp(chunk.get("result", chunk)))
    return without_loops(records)


def fetch_jaeger(base_url: str, trace_id: str, timeout: float = 10.0) -> list[SpanRecord]:
    """One trace from Jaeger's query API v3 (``GET {base}/api/v3/traces/{trace id}``, OTLP/JSON in ``result``)."""
    status, body = jaeger_get(base_url, f"/api/v3/traces/{trace_id}", timeout)
    if status != 200:
        raise ValueError(f"Jaeger at {base_url} answered {status} for trace {trace_id}")
    return jaeger_records(body)


def json_chunks(body: str) -> list[dict[str, Any]]:
    """The JSON objects of a body that may hold several, one after the other (Jaeger's streamed answers)."""
    decoder, chunks, index = json.JSONDecoder(), [], 0
    while index < len(body):
        while index < len(body) and body[index].isspace():
            index += 1
        if index >= len(body):
            break
        chunk, index = decoder.raw_decode(body, index)
        chunks.append(chunk)
    return chunks
