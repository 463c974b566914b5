"""Reading runs from Jaeger's query API (v3), with every answer bounded in size and the whole read in time.

A Jaeger URL may point at any server: an answer larger than ``CREWTRACE_JAEGER_MAX_BYTES`` or a read that
takes longer than ``CREWTRACE_JAEGER_TIMEOUT`` seconds in all (every request of one command together) is
abandoned with a one-line error, and an answer of the wrong shape is a one-line error too.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crewtrace.masking import redact_url, shorten
from crewtrace.report.env import positive
from crewtrace.report.records import SpanRecord, records_from_otlp, without_loops

MAX_BYTES_ENV = "CREWTRACE_JAEGER_MAX_BYTES"
TIMEOUT_ENV = "CREWTRACE_JAEGER_TIMEOUT"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # per answer
DEFAULT_TIMEOUT = 120.0  # seconds for all of one command's requests
READ_TIMEOUT = 30.0  # seconds one connect or one read of the socket may take (at most what is left)
JAEGER_SEARCH_DEPTH = 1000  # traces asked of Jaeger per service (its newest first)
_CHUNK = 64 * 1024


@dataclass
class Jaeger:
    """One command's reads from the Jaeger at ``base_url``, sharing one deadline."""

    base_url: str
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT
    _deadline: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._deadline = time.monotonic() + self.timeout

    @classmethod
    def from_env(cls, base_url: str) -> Jaeger:
        """Limits from CREWTRACE_JAEGER_MAX_BYTES and CREWTRACE_JAEGER_TIMEOUT (one-line error when bad)."""
        max_bytes = positive(MAX_BYTES_ENV, DEFAULT_MAX_BYTES, "a number of bytes above 0", int)
        timeout = positive(TIMEOUT_ENV, DEFAULT_TIMEOUT, "a number of seconds above 0", float)
        return cls(base_url, int(max_bytes), timeout)

    @property
    def shown(self) -> str:
        """The base URL as errors show it: a password in it is masked."""
        return redact_url(self.base_url)

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise ValueError(f"crewtrace: Jaeger at {self.shown} did not answer within {self.timeout:g} s in all")
        return left

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path``: (status, the JSON objects of the body); unreachable, too big or too slow is a ValueError."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=min(READ_TIMEOUT, self._left())) as answer:
                return answer.status, self._json(self._body(answer))
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ValueError(f"crewtrace: cannot reach Jaeger at {self.shown}: {reason}") from None

    def _body(self, answer: Any) -> bytes:
        """The body, read a socket read at a time, so both the size cap and the deadline hold between reads."""
        parts: list[bytes] = []
        size = 0
        while part := answer.read1(_CHUNK):
            size += len(part)
            if size > self.max_bytes:
                raise ValueError(
                    f"crewtrace: Jaeger at {self.shown} answered more than {self.max_bytes} bytes "
                    f"(raise {MAX_BYTES_ENV} to read it)"
                )
            parts.append(part)
            self._left()
        return b"".join(parts)

    def _json(self, body: bytes) -> list[Any]:
        try:
            return json_objects(body.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"crewtrace: Jaeger at {self.shown} answered something that is not JSON: {exc}") from None

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """One trace (``GET /api/v3/traces/{trace id}``)."""
        status, chunks = self.get(f"/api/v3/traces/{trace_id}")
        if status != 200:
            raise ValueError(f"crewtrace: Jaeger at {self.shown} answered {status} for trace {trace_id}")
        return without_loops(self._records(chunks))

    def recent(self, since_ns: int | None = None, service: str | None = None) -> list[SpanRecord]:
        """The spans of the newest traces (``/api/v3/services``, then ``/api/v3/traces`` per service, started
        since ``since_ns``, at most JAEGER_SEARCH_DEPTH traces per service)."""
        services = [service] if service is not None else self._services()
        start = datetime.fromtimestamp((since_ns or 0) / 1e9, UTC)
        end = datetime.now(UTC) + timedelta(days=1)  # a little ahead: clocks differ
        seen: dict[tuple[str, str], SpanRecord] = {}
        for name in services:
            query = urllib.parse.urlencode(
                {
                    "query.service_name": name,
                    "query.start_time_min": start.isoformat().replace("+00:00", "Z"),
                    "query.start_time_max": end.isoformat().replace("+00:00", "Z"),
                    "query.num_traces": JAEGER_SEARCH_DEPTH,
                }
            )
            status, chunks = self.get(f"/api/v3/traces?{query}")
            if status == 404:  # "No traces found"
                continue
            if status != 200:
                raise ValueError(f"crewtrace: Jaeger at {self.shown} answered {status} for service {name!r}")
            for record in self._records(chunks):
                seen[(record.trace_id, record.span_id)] = record  # a trace of several services comes back twice
        return without_loops(list(seen.values()))

    def _services(self) -> list[str]:
        status, chunks = self.get("/api/v3/services")
        if status != 200:
            raise ValueError(f"crewtrace: Jaeger at {self.shown} answered {status} for its services")
        services = chunks[0].get("services") if len(chunks) == 1 and isinstance(chunks[0], Mapping) else None
        if not isinstance(services, list) or not all(isinstance(name, str) for name in services):
            raise ValueError(f"crewtrace: Jaeger at {self.shown} answered no list of services")
        return sorted(services)

    def _records(self, chunks: list[Any]) -> list[SpanRecord]:
        """The spans of a traces answer: the gateway streams one {"result": TracesData} object per chunk."""
        records: list[SpanRecord] = []
        for chunk in chunks:
            if not isinstance(chunk, Mapping):
                raise ValueError(f"crewtrace: Jaeger at {self.shown} answered a {type(chunk).__name__}, not traces")
            if "error" in chunk:
                error = chunk["error"]
                message = error.get("message", error) if isinstance(error, Mapping) else error
                raise ValueError(f"crewtrace: Jaeger at {self.shown} answered an error: {shorten(str(message))}")
            try:
                records.extend(records_from_otlp(chunk.get("result", chunk)))
            except ValueError as exc:
                raise ValueError(f"crewtrace: Jaeger at {self.shown} answered unreadable spans: {exc}") from None
        return records


def json_objects(body: str) -> list[Any]:
    """The JSON values of a body that may hold several, one after the other (Jaeger's streamed answers)."""
    decoder, index = json.JSONDecoder(), 0
    values: list[Any] = []
    while True:
        while index < len(body) and body[index].isspace():
            index += 1
        if index >= len(body):
            return values
        value, index = decoder.raw_decode(body, index)
        values.append(value)
