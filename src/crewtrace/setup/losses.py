"""Why spans were not delivered, told apart: each cause logged once with what to do, and counted by reason.

The SDK's exporters report only success or failure; the cause is in their log records (a gRPC status, an
HTTP status, an exception). ``ExporterLogs`` reads those records while crewtrace's own exports run, and keeps
them off the user's terminal unless logging is turned up to INFO. ``probe()`` asks the endpoint itself when
the record says no more than "unavailable": nothing listening, no answer, or a server of the other OTLP
protocol (4317 speaks gRPC, 4318 HTTP).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter as Tally
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from opentelemetry.metrics import Counter
from opentelemetry.sdk import environment_variables as sdk_env

from crewtrace import attributes
from crewtrace.masking import mask_secrets, redact_url, shorten

logger = logging.getLogger(__name__)

# The loggers the SDK's OTLP span exporters write their failures and retries to.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
UNREACHABLE = "unreachable"  # a connection failed; probe() says why

ADVICE = {
    attributes.DROPPED_NOTHING_LISTENING: "nothing is listening at {where}: start a collector "
    "(./scripts/run-stack, or docker compose up) or use exporter='file'",
    attributes.DROPPED_TOO_LARGE: "{where} refused a request as too large ({detail}): lower max_request_size, "
    "or raise the receiver's limit",
    attributes.DROPPED_TIMED_OUT: "{where} did not answer in time ({detail}): check the network, or raise timeout",
    attributes.DROPPED_REJECTED: "{where} rejected the spans ({detail}): check the endpoint's path and headers",
    attributes.DROPPED_WRONG_PROTOCOL: "{where} {detail}",
    attributes.DROPPED_FILE_UNWRITABLE: "could not write spans to {where} ({detail})",
    attributes.DROPPED_NOT_SENT: "{detail}",
    attributes.DROPPED_EXPORT_FAILED: "exporting to {where} failed ({detail}); turn logging up to INFO for the "
    "SDK's messages",
}


@dataclass(frozen=True)
class Failure:
    """Why one export failed: a ``crewtrace.drop.reason`` value, and what was seen."""

    reason: str
    detail: str = ""


def from_status(code: Any) -> Failure | None:
    """What a gRPC StatusCode, an HTTP status or an exception from an SDK exporter says went wrong."""
    name = getattr(code, "name", None)
    if name is not None and type(code).__module__.startswith("grpc"):
        if name == "RESOURCE_EXHAUSTED":
            return Failure(attributes.DROPPED_TOO_LARGE, "gRPC RESOURCE_EXHAUSTED")
        if name == "DEADLINE_EXCEEDED":
            return Failure(attributes.DROPPED_TIMED_OUT, "gRPC DEADLINE_EXCEEDED")
        if name == "UNAVAILABLE":
            return Failure(UNREACHABLE, "gRPC UNAVAILABLE")
        return Failure(attributes.DROPPED_REJECTED, f"gRPC {name}")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        if code == 413:
            return Failure(attributes.DROPPED_TOO_LARGE, "HTTP 413")
        if code in (408, 504):
            return Failure(attributes.DROPPED_TIMED_OUT, f"HTTP {code}")
        return Failure(attributes.DROPPED_REJECTED, f"HTTP {code}")
    if isinstance(code, BaseException):
        text = shorten(mask_secrets(f"{type(code).__name__}: {code}"))
        if "timeout" in type(code).__name__.lower() or isinstance(code, TimeoutError):
            return Failure(attributes.DROPPED_TIMED_OUT, text)
        return Failure(UNREACHABLE, text)
    return None


class ExporterLogs(logging.Filter):
    """Reads the SDK exporters' log records during crewtrace's exports (per thread); hides them unless the
    logger is enabled for INFO, since crewtrace reports each cause itself."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._users = 0
        self._exporting = 0  # exports under way: one that outlived its shutdown still has its records hidden
        self._attached = False
        self._lock = threading.Lock()

    def install(self) -> None:
        with self._lock:
            self._users += 1
            if not self._attached:
                self._attached = True
                for name in EXPORTER_LOGGERS:  # first: the SDK's DuplicateFilter would hide repeats from us
                    logging.getLogger(name).filters.insert(0, self)

    def uninstall(self) -> None:
        """One user fewer; the filter comes off when none is left and no export is under way."""
        with self._lock:
            self._users = max(self._users - 1, 0)
            self._detach_if_unused()

    def _detach_if_unused(self) -> None:
        if self._attached and self._users == 0 and self._exporting == 0:
            self._attached = False
            for name in EXPORTER_LOGGERS:
                logging.getLogger(name).removeFilter(self)

    def begin(self) -> None:
        """A crewtrace export starts on this thread."""
        self._local.active = True
        self._local.failure = None
        with self._lock:
            self._exporting += 1

    def end(self) -> Failure | None:
        """The export ended: the last failure its records showed, if any."""
        self._local.active = False
        with self._lock:
            self._exporting = max(self._exporting - 1, 0)
            self._detach_if_unused()
        return getattr(self._local, "failure", None)

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(self._local, "active", False):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        for arg in args:
            failure = from_status(arg)
            if failure is not None:
                self._local.failure = failure
                break
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


EXPORTER_LOGS = ExporterLogs()

_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS
_HTTP1_REQUEST = b"GET / HTTP/1.1\r\nHost: otlp\r\nConnection: close\r\n\r\n"


def host_port(endpoint: str, protocol: str) -> tuple[str, int] | None:
    """The host and port an OTLP endpoint (URL, or host:port for gRPC) connects to."""
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parsed.hostname:
        return None
    default = 443 if parsed.scheme == "https" else (4317 if protocol == "grpc" else 4318)
    try:
        return parsed.hostname, parsed.port or default
    except ValueError:
        return None


def is_loopback(endpoint: str, protocol: str) -> bool:
    target = host_port(endpoint, protocol)
    return target is not None and target[0] in ("localhost", "127.0.0.1", "::1", "[::1]")


def probe(endpoint: str, protocol: str, timeout: float = 0.5) -> Failure | None:
    """Ask the endpoint why it cannot be exported to: None when it accepts connections in ``protocol``."""
    target = host_port(endpoint, protocol)
    if target is None:
        return None
    where = f"{target[0]}:{target[1]}"
    try:
        conn = socket.create_connection(target, timeout=timeout)
    except ConnectionRefusedError:
        return Failure(attributes.DROPPED_NOTHING_LISTENING, f"connection to {where} refused")
    except TimeoutError:
        return Failure(attributes.DROPPED_TIMED_OUT, f"no connection to {where} within {timeout:g}s")
    except OSError as exc:
        return Failure(UNREACHABLE, f"{where}: {exc.strerror or exc}")
    with conn:
        if endpoint.startswith("https://") and protocol != "grpc":
            return None  # TLS: the protocol cannot be read without a handshake
        try:
            conn.sendall(_H2_PREFACE if protocol == "grpc" else _HTTP1_REQUEST)
            reply = conn.recv(16)
        except TimeoutError:
            return Failure(attributes.DROPPED_TIMED_OUT, f"{where} accepts connections but does not answer")
        except OSError:
            return None  # it accepted the connection; nothing more can be told
    return _heard(reply, endpoint, protocol, where)


def _heard(reply: bytes, endpoint: str, protocol: str, where: str) -> Failure | None:
    """What the first bytes the endpoint answered tell about it, against what the exporter will speak."""
    speaks_http1 = reply.startswith(b"HTTP/")
    speaks_h2 = len(reply) >= 4 and reply[3] == 0x04  # an HTTP/2 server opens with a SETTINGS frame
    speaks_tls = reply[:1] == b"\x15"  # a TLS server answers plaintext with an alert record
    if protocol == "grpc" and speaks_h2 and grpc_uses_tls(endpoint):
        return Failure(
            attributes.DROPPED_WRONG_PROTOCOL,
            f"speaks gRPC without TLS, but the exporter uses TLS for {redact_url(endpoint)} (the SDK's rule for an "
            f"endpoint without http://): write it as http://{where}, or set {sdk_env.OTEL_EXPORTER_OTLP_INSECURE}=true",
        )
    if protocol == "grpc" and speaks_tls:
        return None  # TLS on both sides, or a plaintext exporter the TLS server will refuse: the SDK says which
    if protocol == "grpc" and reply and not speaks_h2:
        return Failure(attributes.DROPPED_WRONG_PROTOCOL, f"answers in HTTP/1 (it may be OTLP/HTTP), not gRPC{_PORTS}")
    if protocol != "grpc" and not speaks_http1:
        heard = "in HTTP/2 (OTLP/gRPC)" if speaks_h2 else "not in HTTP/1.1 (it may be OTLP/gRPC)"
        return Failure(attributes.DROPPED_WRONG_PROTOCOL, f"answers {heard}, not OTLP/HTTP{_PORTS}")
    return None


_PORTS = " (OTLP's ports: 4317 speaks gRPC, 4318 HTTP): set protocol or the port to match"


def grpc_uses_tls(endpoint: str) -> bool:
    """Whether the SDK's gRPC exporter speaks TLS to ``endpoint``: always for https://; else unless
    OTEL_EXPORTER_OTLP_TRACES_INSECURE or OTEL_EXPORTER_OTLP_INSECURE (the first set) is true; without those,
    only http:// means plaintext, so a bare host:port means TLS."""
    scheme = endpoint.split("://", 1)[0].lower() if "://" in endpoint else ""
    if scheme == "https":
        return True
    for variable in (sdk_env.OTEL_EXPORTER_OTLP_TRACES_INSECURE, sdk_env.OTEL_EXPORTER_OTLP_INSECURE):
        value = os.environ.get(variable)
        if value is not None:
            return value.strip().lower() != "true"
    return scheme != "http"


class Losses:
    """Spans one destination did not deliver: counted by reason on ``crewtrace.spans.dropped``, each reason
    logged once with what to do, and all of them summed up at shutdown."""

    def __init__(self, where: str, counter: Counter | None) -> None:
        self.where = where
        self._counter = counter
        self._lock = threading.Lock()
        self.by_reason: Tally[str] = Tally()
        self._untold: dict[str, str] = {}  # reason -> advice not logged yet
        self.quiet = False  # shutting down: the summary tells the rest, in one line

    def lost(self, count: int, failure: Failure) -> None:
        if count <= 0:
            return
        advice = ADVICE.get(failure.reason, ADVICE[attributes.DROPPED_EXPORT_FAILED])
        advice = advice.format(where=self.where, detail=failure.detail)
        with self._lock:
            first = failure.reason not in self.by_reason
            self.by_reason[failure.reason] += count
            if first and self.quiet:
                self._untold[failure.reason] = advice
        if self._counter is not None:
            self._counter.add(count, {attributes.SPANS_DROPPED_REASON: failure.reason})
        if first and not self.quiet:
            logger.warning("crewtrace: spans lost: %s", advice)

    def total(self) -> int:
        with self._lock:
            return sum(self.by_reason.values())

    def summary(self) -> str | None:
        """One line of what was lost, by reason, with the advice not given yet; None when nothing was lost."""
        with self._lock:
            if not self.by_reason:
                return None
            parts = ", ".join(f"{count} {reason}" for reason, count in sorted(self.by_reason.items()))
            total = sum(self.by_reason.values())
            advice = "".join(f"; {text}" for text in self._untold.values())
        return f"crewtrace: {total} spans were not delivered to {self.where} ({parts}){advice}"
