"""Spans as plain records, from the SDK or from OTLP/JSON (an OTLP-JSON-lines file, or Jaeger's answers).

The summary works on these, so the demo, a stored file and a trace in Jaeger render the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crewtrace import attributes
from crewtrace.masking import encodable, mask_secrets, shorten

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


class ShapeError(ValueError):
    """A value of the wrong JSON shape where OTLP/JSON has a fixed one."""


def _items(parent: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The objects of the list at ``parent[key]`` (absent: none)."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise ShapeError(f"{key} is not a list of objects")
    return value


def _text(parent: Mapping[str, Any], key: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ShapeError(f"{key} is not a string")
    return mask_secrets(encodable(value))


_MAX_NANOS_DIGITS = 20  # 2**64 has 20 digits
_MAX_NUMBER_CHARS = 400  # longer digit strings are refused before int() works on them


def _nanos(parent: Mapping[str, Any], key: str) -> int:
    """A time in nanoseconds since the epoch: OTLP's fixed64, written as a string or a number."""
    value = parent.get(key, 0)
    if isinstance(value, str) and value.isdigit() and len(value) <= _MAX_NANOS_DIGITS:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise ShapeError(f"{key} {str(value)[:40]!r} is not a time in nanoseconds")
    return value


def otlp_value(value: Any) -> Any:
    """An AnyValue in OTLP/JSON (lowerCamelCase) or protobuf's JSON with field names (snake_case) as Python."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ShapeError("an attribute value is not an object")
    for key, item in value.items():
        key = _CAMEL.get(key, key)
        if key == "arrayValue":
            return [otlp_value(v) for v in _items(item, "values")] if isinstance(item, Mapping) else []
        if key == "kvlistValue":
            return _attributes(_items(item, "values")) if isinstance(item, Mapping) else {}
        if key == "intValue":
            number = int(_number(item))
            if not -(2**63) <= number < 2**63:
                raise ShapeError(f"intValue {str(item)[:40]!r} is not a 64-bit integer")
            return number
        if key == "doubleValue":
            try:
                double = float(_number(item))
            except OverflowError:  # a JSON integer wider than any float
                raise ShapeError(f"doubleValue {str(item)[:40]!r} is not a 64-bit float") from None
            # protobuf JSON's "NaN" and "Infinity": kept as that text, since JSON output has no such number
            return double if math.isfinite(double) else str(item)
        if key == "boolValue":
            return bool(item)
        if isinstance(item, (Mapping, list)):
            raise ShapeError(f"{key} is not a scalar")
        if isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            raise ShapeError(f"{key} {str(item)[:40]!r} is not a 64-bit value")
        if isinstance(item, float) and not math.isfinite(item):
            return str(item)
        return mask_secrets(encodable(item)) if isinstance(item, str) else item
    return None


def _number(item: Any) -> str | int | float:
    """A number as OTLP/JSON writes one (int64 as a string), checked before int() or float() reads it."""
    if isinstance(item, bool) or not isinstance(item, (str, int, float)):
        raise ShapeError(f"{str(item)[:40]!r} is not a number")
    if isinstance(item, str) and len(item) > _MAX_NUMBER_CHARS:
        raise ShapeError(f"{item[:40]!r}… is not a number")
    if isinstance(item, float) and not math.isfinite(item):
        raise ShapeError(f"{item!r} is not a finite number")
    return item


_CAMEL = {f"{kind}_value": f"{kind}Value" for kind in ("string", "bool", "int", "double", "bytes")}
_CAMEL.update(array_value="arrayValue", kvlist_value="kvlistValue")


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kv in items:
        key = kv.get("key")
        if not isinstance(key, str):
            raise ShapeError("an attribute key is not a string")
        found[mask_secrets(encodable(key))] = otlp_value(kv.get("value"))
    return found


def _hex(value: Any, size: int, what: str) -> str:
    """An id of ``size`` bytes as lowercase hex: OTLP/JSON writes hex; protobuf's JSON mapping (some servers)
    writes base64. Anything else is refused: ids name the report's files and its HTML anchors."""
    if isinstance(value, str):
        if len(value) == size * 2 and all(c in string.hexdigits for c in value):
            return value.lower()
        try:
            raw = base64.b64decode(value, validate=True) if len(value) <= size * 2 else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == size:
            return raw.hex()
    raise ShapeError(f"{what} {str(value)[:40]!r} is not {size * 2} hex digits")


def _status(span: Mapping[str, Any]) -> tuple[str, str]:
    status = span.get("status") or {}
    if not isinstance(status, Mapping):
        raise ShapeError("status is not an object")
    code = status.get("code", 0)
    return _STATUS.get(code, "UNSET") if isinstance(code, (int, str)) else "UNSET", _text(status, "message")


def _span(span: Mapping[str, Any]) -> SpanRecord:
    parent = span.get("parentSpanId") or None
    status, message = _status(span)
    return SpanRecord(
        trace_id=_hex(span.get("traceId"), 16, "trace id"),
        span_id=_hex(span.get("spanId"), 8, "span id"),
        parent_id=_hex(parent, 8, "parent span id") if parent else None,
        name=_text(span, "name"),
        start_ns=_nanos(span, "startTimeUnixNano"),
        end_ns=_nanos(span, "endTimeUnixNano"),
        status=status,
        attributes=_attributes(_items(span, "attributes")),
        events=[
            EventRecord(_text(e, "name"), _nanos(e, "timeUnixNano"), _attributes(_items(e, "attributes")))
            for e in _items(span, "events")
        ],
        status_message=message,
    )


def records_from_otlp(message: Any) -> list[SpanRecord]:
    """Records from one OTLP/JSON ``TracesData`` / ``ExportTraceServiceRequest`` object; a ShapeError (a
    ValueError saying what is wrong) for anything else. Secrets are masked in every text read (crewtrace.masking):
    a trace written by another tool, or with masking off, shows none in a summary or a page either."""
    if not isinstance(message, Mapping):
        raise ShapeError(f"a {type(message).__name__}, not an object of resourceSpans")
    try:
        return [
            _span(span)
            for resource_spans in _items(message, "resourceSpans")
            for scope_spans in _items(resource_spans, "scopeSpans")
            for span in _items(scope_spans, "spans")
        ]
    except RecursionError:
        raise ShapeError("values nested too deep") from None


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
    """Every span in an OTLP-JSON-lines file (what ``exporter="file"`` and the Collector's file exporter write);
    a line that is not OTLP/JSON is a one-line ValueError naming the file and the line."""
    records: list[SpanRecord] = []
    with Path(path).open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.extend(records_from_otlp(json.loads(line.decode("utf-8"))))
            except RecursionError:
                raise ValueError(f"{path}:{number} is not an OTLP/JSON line: nested too deep") from None
            except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors too
                raise ValueError(f"{path}:{number} is not an OTLP/JSON line: {shorten(str(exc))}") from None
    return without_loops(records)
