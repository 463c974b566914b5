"""The real OpenTelemetry Collector and Jaeger v2 for end-to-end tests, built by ``scripts/build-stack``.

Each process runs on 127.0.0.1 with free ports and a temporary data directory, from the repository's own
config files with only their env placeholders set (addresses, paths, and shorter timings); it is stopped
afterwards. Readers for Jaeger's query APIs
(v3 and the UI's ``/api/traces``) and the Prometheus exporter's text format live here too.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crewtrace.report.records import SpanRecord, records_from_otlp
from tests.processes import LOOPBACK, BackendError, Server, free_ports, http_get, poll

REPO = Path(__file__).resolve().parent.parent
COLLECTOR_CONFIG = REPO / "collector-config.yaml"
GATEWAY_CONFIG = REPO / "collector-tier" / "gateway.yaml"
SAMPLER_CONFIG = REPO / "collector-tier" / "sampler.yaml"
JAEGER_CONFIG = REPO / "jaeger-config.yaml"
BUILD_TIMEOUT = 3600.0  # a cold build of both is about 15 minutes on 2 cores
START_TIMEOUT = 60.0
INGEST_TIMEOUT = 60.0

# Timings shortened through the configs' env placeholders, so that the tests take seconds, not minutes.
FAST = {"OTELCOL_DECISION_WAIT": "2s", "OTELCOL_SPAN_METRICS_INTERVAL": "1s"}
JAEGER_RETRY = "exporters::otlp_grpc/jaeger::retry_on_failure::initial_interval=1s"
JAEGER_RETRY_MAX = "exporters::otlp_grpc/jaeger::retry_on_failure::max_interval=2s"


@dataclass(frozen=True)
class Binaries:
    otelcol: Path
    jaeger: Path


@functools.cache
def binaries() -> Binaries:
    """The built Collector and Jaeger (``scripts/build-stack`` builds them once per machine); BackendError."""
    try:
        done = subprocess.run(
            [str(REPO / "scripts" / "build-stack")],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackendError(f"scripts/build-stack did not finish within {BUILD_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise BackendError(f"scripts/build-stack failed ({done.returncode}):\n{done.stderr[-3000:]}")
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return Binaries(Path(found["OTELCOL"]), Path(found["JAEGER"]))


def _env(workdir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.defpath, "HOME": str(home), "TMPDIR": str(home), "NO_PROXY": "*", **extra}


def _addr(port: int) -> str:
    return f"{LOOPBACK}:{port}"


def jaeger_server(workdir: Path, ports: Mapping[str, int] | None = None) -> Server:
    """Jaeger v2 with ``jaeger-config.yaml``: ``grpc`` (OTLP) and ``query`` ports; pass ``ports`` to reuse."""
    chosen = (
        dict(ports)
        if ports
        else dict(zip(("grpc", "http", "query", "query_grpc", "metrics"), free_ports(5), strict=True))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    env = _env(
        workdir,
        {
            "JAEGER_OTLP_GRPC_ENDPOINT": _addr(chosen["grpc"]),
            "JAEGER_OTLP_HTTP_ENDPOINT": _addr(chosen["http"]),
            "JAEGER_QUERY_ENDPOINT": _addr(chosen["query"]),
            "JAEGER_QUERY_GRPC_ENDPOINT": _addr(chosen["query_grpc"]),
            "JAEGER_METRICS_HOST": LOOPBACK,
            "JAEGER_METRICS_PORT": str(chosen["metrics"]),
        },
    )
    return Server(
        name="jaeger",
        argv=[str(binaries().jaeger), "--config", str(JAEGER_CONFIG)],
        env=env,
        cwd=workdir,
        log=workdir / "jaeger.log",
        health_url=f"http://{_addr(chosen['query'])}/api/services",
        ports=chosen,
    )


def collector_server(
    config: Path,
    workdir: Path,
    env: Mapping[str, str] = (),  # type: ignore[assignment]
    sets: tuple[str, ...] = (),
    ports: Mapping[str, int] | None = None,
    name: str = "otelcol",
) -> Server:
    """The built Collector running ``config`` as shipped: ports ``grpc``, ``http``, ``health``, ``prometheus``."""
    chosen = (
        dict(ports)
        if ports
        else dict(zip(("grpc", "http", "health", "prometheus", "telemetry"), free_ports(5), strict=True))
    )
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    variables = {
        "OTELCOL_GRPC_ENDPOINT": _addr(chosen["grpc"]),
        "OTELCOL_HTTP_ENDPOINT": _addr(chosen["http"]),
        "OTELCOL_HEALTH_ENDPOINT": _addr(chosen["health"]),
        "OTELCOL_PROMETHEUS_ENDPOINT": _addr(chosen["prometheus"]),
        "OTELCOL_TELEMETRY_HOST": LOOPBACK,
        "OTELCOL_TELEMETRY_PORT": str(chosen["telemetry"]),
        "OTELCOL_DATA_DIR": str(data),
        **FAST,
        **dict(env),
    }
    argv = [str(binaries().otelcol), "--config", str(config), *(f"--set={s}" for s in sets)]
    return Server(
        name=name,
        argv=argv,
        env=_env(workdir, variables),
        cwd=workdir,
        log=workdir / f"{name}.log",
        health_url=f"http://{_addr(chosen['health'])}/",
        ports=chosen,
    )


@contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    """Start the servers in order, stop them all (in reverse) afterwards, whatever happens."""
    started: list[Server] = []
    try:
        for server in servers:
            started.append(server)
            server.start(START_TIMEOUT)
        yield servers
    finally:
        for server in reversed(started):
            server.stop()


def validate(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``otelcol-crewtrace validate --config FILE`` with the given placeholders set."""
    return subprocess.run(
        [str(binaries().otelcol), "validate", "--config", str(config)],
        env={"PATH": os.defpath, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- Jaeger's query APIs -------------------------------------------------------------------------------------------


@dataclass
class JaegerTrace:
    """One trace as Jaeger's v3 API returns it: records, plus span kinds by span id (1 = internal, 3 = client)."""

    records: list[SpanRecord]
    kinds: dict[str, int]
    raw: dict[str, Any]


class JaegerReader:
    def __init__(self, server: Server) -> None:
        self.base = server.base_url("query")

    def v3(self, trace_id: str) -> JaegerTrace | None:
        status, body = http_get(f"{self.base}/api/v3/traces/{trace_id}")
        if status == 404:
            return None
        if status != 200:
            raise BackendError(f"Jaeger v3 answered {status} for {trace_id}: {body[:500]!r}")
        raw = json.loads(body)
        result = raw.get("result", raw)
        kinds = {
            span["spanId"]: int(span.get("kind", 0))
            for resource in result.get("resourceSpans", [])
            for scope in resource.get("scopeSpans", [])
            for span in scope.get("spans", [])
        }
        return JaegerTrace(records_from_otlp(result), kinds, raw)

    def ui(self, trace_id: str) -> dict[str, Any]:
        """The older JSON the Jaeger UI reads: ``{"data": [{"traceID", "spans", "processes"}]}``."""
        status, body = http_get(f"{self.base}/api/traces/{trace_id}")
        if status != 200:
            raise BackendError(f"Jaeger /api/traces answered {status} for {trace_id}: {body[:500]!r}")
        return json.loads(body)

    def wait(self, trace_id: str, count: int, timeout: float = INGEST_TIMEOUT) -> JaegerTrace:
        """The trace once it holds ``count`` spans; BackendError with what was there if it never does."""

        def check() -> JaegerTrace | None:
            found = self.v3(trace_id)
            return found if found is not None and len(found.records) >= count else None

        return poll(check, timeout, interval=0.5, what=f"{count} spans of trace {trace_id} in Jaeger")

    def absent(self, trace_id: str) -> bool:
        return self.v3(trace_id) is None


# --- Prometheus text exposition --------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(url: str) -> list[Sample]:
    """Every sample of a Prometheus text-format endpoint (comments skipped)."""
    status, body = http_get(url, timeout=10.0)
    if status != 200:
        raise BackendError(f"{url} answered {status}")
    samples = []
    for line in body.decode().splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _LABEL.findall(match.group(2) or "")}
            samples.append(Sample(match.group(1), labels, float(match.group(3))))
    return samples


def total(samples: list[Sample], name: str, where: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    return sum(s.value for s in samples if s.name == name and where(s.labels))
