"""Real OTLP backends for end-to-end tests: Arize Phoenix and the MLflow tracking server.

Each backend is installed by pip into a virtual environment of its own (never the project's), under
``$CREWTRACE_BACKENDS_CACHE`` if set, else ``<repo>/.cache/backends``, as ``<name>-<version>``. A marker
file in the environment records a successful install of that exact pin, so later runs reuse it. Servers
listen on 127.0.0.1 only, on free ports, with their data in a temporary directory and an environment
that turns off everything that would reach the internet. Every install, wait and stop is bounded in time.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 900.0  # one pip install of a backend (~65-90 s on this machine)
START_TIMEOUT = 120.0  # from launch to a healthy health endpoint (~10 s)
STOP_TIMEOUT = 20.0  # after SIGINT, before SIGTERM and then SIGKILL
MARKER = ".crewtrace-installed"
LOOPBACK = "127.0.0.1"


class BackendError(RuntimeError):
    """A backend could not be installed, started or read; the message says why, with its log's tail."""


@dataclass(frozen=True)
class Backend:
    """A pinned backend distribution and the console script that serves it."""

    name: str
    distribution: str
    version: str
    script: str

    @property
    def pin(self) -> str:
        return f"{self.distribution}=={self.version}"


PHOENIX = Backend("phoenix", "arize-phoenix", "20.26.1", "phoenix")
MLFLOW = Backend("mlflow", "mlflow", "3.17.2", "mlflow")


def cache_root() -> Path:
    configured = os.environ.get("CREWTRACE_BACKENDS_CACHE")
    return Path(configured).expanduser().resolve() if configured else REPO / ".cache" / "backends"


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    # pip's "Location ... is ignored" warnings for this machine's missing local indexes are noise.
    kept = [line for line in text.splitlines() if not (line.startswith("WARNING: Location ") and "ignored" in line)]
    return "\n".join(kept[-lines:])


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive lock on ``path`` (another pytest process may be installing the same backend)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackendError(f"timed out after {timeout:.0f} s waiting for the install lock {path}") from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bin(venv: Path, script: str) -> Path:
    return venv / "bin" / script


def _install_env() -> dict[str, str]:
    """This process's environment (pip's own settings included), minus what ties it to the project's venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    # tests/conftest.py points HOME at a temporary directory; keep pip's wheel cache in the real one, so
    # a fresh clone (CI) installs from cached wheels instead of downloading ~800 MB again.
    env.setdefault("PIP_CACHE_DIR", str(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "pip"))
    return env


def ensure_installed(backend: Backend, timeout: float = INSTALL_TIMEOUT) -> Path:
    """The backend's own virtual environment, created and pip-installed on first use; raises BackendError."""
    try:
        return _ensure_installed(backend, timeout)
    except OSError as error:
        raise BackendError(f"could not install {backend.pin} under {cache_root()}: {error}") from error


def _ensure_installed(backend: Backend, timeout: float) -> Path:
    root = cache_root()
    venv = root / f"{backend.name}-{backend.version}"
    marker = venv / MARKER
    with _locked(root / f"{backend.name}-{backend.version}.lock", timeout):
        if marker.is_file() and marker.read_text().strip() == backend.pin and _bin(venv, backend.script).exists():
            return venv
        if venv.exists():
            shutil.rmtree(venv)  # a half-made environment from an interrupted or failed install
        started = time.monotonic()
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                env=_install_env(),
            )
        except (subprocess.SubprocessError, OSError) as error:
            detail = getattr(error, "stderr", "") or ""
            raise BackendError(
                f"could not create a virtual environment for {backend.pin} at {venv}: {error}\n{detail}"
            ) from error
        log = venv / "install.log"
        command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", backend.pin]
        try:
            with log.open("w") as out:
                done = subprocess.run(
                    command,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    env=_install_env(),
                )
        except subprocess.TimeoutExpired:
            raise BackendError(
                f"`pip install {backend.pin}` into {venv} did not finish within {timeout:.0f} s; "
                f"log {log}:\n{tail(log)}"
            ) from None
        if done.returncode != 0 or not _bin(venv, backend.script).exists():
            raise BackendError(
                f"`pip install {backend.pin}` into {venv} failed (exit {done.returncode}); log {log}:\n{tail(log)}"
            )
        marker.write_text(f"{backend.pin}\n")
        (venv / "install-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        return venv


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (bound to port 0, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def server_env(venv: Path, home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a server: its venv first on PATH, a temporary HOME, no telemetry, no proxies."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.defpath}",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "DO_NOT_TRACK": "true",
        "NO_PROXY": "*",
        "no_proxy": "*",
    }
    env.update(extra)
    return env


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET ``url`` (loopback only); returns (status, body), HTTP error statuses included."""
    _check_loopback(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_json(url: str, payload: Any = None, timeout: float = 10.0) -> Any:
    """GET (or POST ``payload`` as JSON to) a loopback URL and decode the JSON answer; raises BackendError."""
    _check_loopback(url)
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise BackendError(f"{url}: HTTP {error.code}: {error.read()[:2000]!r}") from None


def _check_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in (LOOPBACK, "localhost"):
        raise ValueError(f"backends are only reached on loopback, not {url}")


def poll(check: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy (returned) or ``timeout`` passes (BackendError)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise BackendError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


@dataclass
class Server:
    """A backend server process: started in its own process group, stopped by SIGINT, then harder."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    health_url: str
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0

    def base_url(self, port: str = "http") -> str:
        return f"http://{LOOPBACK}:{self.ports[port]}"

    def start(self, timeout: float = START_TIMEOUT) -> Server:
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: its workers are stopped with it
            )
        deadline = started + timeout
        while True:
            if self.process.poll() is not None:
                raise BackendError(
                    f"{self.name} exited with code {self.process.returncode} before it was healthy; "
                    f"log {self.log}:\n{tail(self.log)}"
                )
            with contextlib.suppress(OSError):
                status, _ = http_get(self.health_url, timeout=2.0)
                if status == 200:
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise BackendError(
                    f"{self.name} was not healthy at {self.health_url} within {timeout:.0f} s; "
                    f"log {self.log}:\n{tail(self.log)}"
                )
            time.sleep(0.25)
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)  # the group this server was started in, and nothing else
            try:
                process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers left behind in the group after the leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log, lines)


def phoenix_server(venv: Path, workdir: Path) -> Server:
    """Phoenix on free ports: UI, REST, GraphQL and OTLP/HTTP on ``http``, OTLP/gRPC on ``grpc``."""
    http_port, grpc_port = free_ports(2)
    data = workdir / "phoenix"
    data.mkdir(parents=True, exist_ok=True)
    env = server_env(
        venv,
        workdir / "home",
        PHOENIX_WORKING_DIR=str(data),
        PHOENIX_HOST=LOOPBACK,
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
    )
    return Server(
        name=f"phoenix {PHOENIX.version}",
        argv=[str(_bin(venv, PHOENIX.script)), "serve"],
        env=env,
        cwd=workdir,
        log=workdir / "phoenix.log",
        health_url=f"http://{LOOPBACK}:{http_port}/healthz",
        ports={"http": http_port, "grpc": grpc_port},
    )


def mlflow_server(venv: Path, workdir: Path) -> Server:
    """The MLflow tracking server on a free port (OTLP/HTTP at ``/v1/traces``), its store in SQLite."""
    (port,) = free_ports(1)
    data = workdir / "mlflow"
    (data / "artifacts").mkdir(parents=True, exist_ok=True)
    env = server_env(
        venv,
        workdir / "home",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    argv = [
        str(_bin(venv, MLFLOW.script)),
        "server",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{data / 'mlflow.db'}",
        "--default-artifact-root",
        str(data / "artifacts"),
    ]
    return Server(
        name=f"mlflow {MLFLOW.version}",
        argv=argv,
        env=env,
        cwd=workdir,
        log=workdir / "mlflow.log",
        health_url=f"http://{LOOPBACK}:{port}/health",
        ports={"http": port},
    )


@contextlib.contextmanager
def running(make: Callable[[Path, Path], Server], backend: Backend, workdir: Path) -> Iterator[Server]:
    """Install (or reuse) ``backend``, start its server in ``workdir``, and stop it however the block ends.

    A port taken between choosing and binding it makes the server exit at once; that is retried once on
    fresh ports.
    """
    venv = ensure_installed(backend)
    for attempt in (1, 2):
        server = make(venv, workdir)
        try:
            server.start()
            break
        except BackendError:
            server.stop()
            if attempt == 2 or "address already in use" not in server.log_tail(200).lower():
                raise
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------------------------
# Reading traces back through each backend's own API


@dataclass(frozen=True)
class SeenSpan:
    """A span as a backend stored it, in one shape for every backend."""

    span_id: str  # 16 hex digits
    parent_id: str | None
    name: str
    start_ns: int
    status: str  # UNSET, OK or ERROR
    status_message: str
    kind: str  # the backend's own classification: Phoenix's span_kind, MLflow's span type
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]

    def exception_events(self) -> list[dict[str, Any]]:
        return [attributes for name, attributes in self.events if name == "exception"]


@dataclass(frozen=True)
class TokenTotals:
    """One per-trace token total as a backend computes it, with where it came from."""

    source: str
    input: int | None
    output: int | None
    total: int | None


INGEST_TIMEOUT = 60.0  # from the exporter's flush to every span readable through the backend's API


def settle(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, interval: float = 0.25) -> Any:
    """Read until ``done(value)`` or until ``timeout`` passes; returns the last value read either way.

    For asynchronous ingestion: the caller asserts on the value, so a backend that never gets there fails
    the test with what it last reported instead of a bare timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class PhoenixReader:
    """Phoenix's REST API (``/v1/projects/{project}/spans``, ``/traces``) and its GraphQL API."""

    def __init__(self, server: Server, project: str) -> None:
        self.base = server.base_url()
        self.project = project

    def spans(self, trace_id: str) -> list[SeenSpan]:
        """Every stored span of the trace (404, an unknown project, counts as none yet)."""
        query = urllib.parse.urlencode({"trace_id": trace_id, "limit": 1000})
        status, body = http_get(f"{self.base}/v1/projects/{self.project}/spans?{query}")
        if status == 404:
            return []
        if status != 200:
            raise BackendError(f"phoenix spans: HTTP {status}: {body[:2000]!r}")
        return [self._span(raw) for raw in json.loads(body)["data"]]

    def wait_for_spans(self, trace_id: str, count: int, timeout: float = INGEST_TIMEOUT) -> list[SeenSpan]:
        return settle(lambda: self.spans(trace_id), lambda spans: len(spans) >= count, timeout)

    @staticmethod
    def _span(raw: dict[str, Any]) -> SeenSpan:
        start = datetime.fromisoformat(raw["start_time"]).astimezone(UTC)
        return SeenSpan(
            span_id=raw["context"]["span_id"],
            parent_id=raw.get("parent_id") or None,
            name=raw["name"],
            start_ns=(start - _EPOCH) // _MICROSECOND * 1000,
            status=raw["status_code"],
            status_message=raw.get("status_message") or "",
            kind=raw["span_kind"],
            attributes=raw.get("attributes") or {},
            events=[(event["name"], event.get("attributes") or {}) for event in raw.get("events") or []],
        )

    def trace_summary(self, trace_id: str) -> dict[str, Any]:
        """The REST trace record (``token_count_*``) and GraphQL's trace and root-span figures, raw."""
        traces = http_json(f"{self.base}/v1/projects/{self.project}/traces?limit=1000")["data"]
        rest = next((t for t in traces if t["trace_id"] == trace_id), None)
        projects = http_json(f"{self.base}/v1/projects?limit=1000")["data"]
        project_id = next((p["id"] for p in projects if p["name"] == self.project), None)
        query = """
        query ($project: ID!, $trace: ID!) {
          node(id: $project) {
            ... on Project {
              tokenCountTotal tokenCountPrompt tokenCountCompletion
              trace(traceId: $trace) {
                numSpans errorCount
                errorsByType { exceptionType count }
                costSummary { prompt { tokens cost } completion { tokens cost } total { tokens cost } }
                rootSpan {
                  name spanId
                  cumulativeTokenCountTotal cumulativeTokenCountPrompt cumulativeTokenCountCompletion
                  propagatedStatusCode
                }
              }
            }
          }
        }"""
        answer = http_json(
            f"{self.base}/graphql", {"query": query, "variables": {"project": project_id, "trace": trace_id}}
        )
        if answer.get("errors"):
            raise BackendError(f"phoenix graphql errors: {answer['errors']}")
        return {"rest": rest, "project": answer["data"]["node"]}

    @staticmethod
    def token_totals(summary: dict[str, Any]) -> list[TokenTotals]:
        """Phoenix's own per-trace token totals, each from a different query path."""
        rest, project = summary["rest"] or {}, summary["project"] or {}
        graph = project.get("trace") or {}
        root = graph.get("rootSpan") or {}
        cost = graph.get("costSummary") or {}
        return [
            TokenTotals(
                "REST /v1/projects/{p}/traces token_count_* (sum over the trace's LLM-kind spans)",
                _int(rest.get("token_count_prompt")),
                _int(rest.get("token_count_completion")),
                _int(rest.get("token_count_total")),
            ),
            TokenTotals(
                "GraphQL trace.rootSpan.cumulativeTokenCount* (the root's own plus its descendants' LLM-kind counts)",
                _int(root.get("cumulativeTokenCountPrompt")),
                _int(root.get("cumulativeTokenCountCompletion")),
                _int(root.get("cumulativeTokenCountTotal")),
            ),
            TokenTotals(
                "GraphQL trace.costSummary.*.tokens (priced tokens of the trace)",
                _int((cost.get("prompt") or {}).get("tokens")),
                _int((cost.get("completion") or {}).get("tokens")),
                _int((cost.get("total") or {}).get("tokens")),
            ),
            TokenTotals(
                "GraphQL project.tokenCount* (LLM-kind spans without an LLM child; one trace per project here)",
                _int(project.get("tokenCountPrompt")),
                _int(project.get("tokenCountCompletion")),
                _int(project.get("tokenCountTotal")),
            ),
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _int(value: Any) -> int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number  # a fractional count is reported as is


class MlflowReader:
    """The MLflow tracking server's REST API: ``GET /api/3.0/mlflow/traces/get`` (trace info and spans)."""

    def __init__(self, server: Server) -> None:
        self.base = server.base_url()

    @staticmethod
    def request_id(trace_id: str) -> str:
        return f"tr-{trace_id}"

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        query = urllib.parse.urlencode({"trace_id": self.request_id(trace_id)})
        status, body = http_get(f"{self.base}/api/3.0/mlflow/traces/get?{query}")
        if status == 404:
            return None
        if status != 200:
            raise BackendError(f"mlflow traces/get: HTTP {status}: {body[:2000]!r}")
        return json.loads(body)["trace"]

    def wait_for_trace(self, trace_id: str, count: int, timeout: float = INGEST_TIMEOUT) -> dict[str, Any] | None:
        return settle(
            lambda: self.trace(trace_id), lambda t: t is not None and len(t.get("spans", [])) >= count, timeout
        )

    @staticmethod
    def spans(trace: dict[str, Any] | None) -> list[SeenSpan]:
        return [MlflowReader._span(raw) for raw in (trace or {}).get("spans", [])]

    @staticmethod
    def _span(raw: dict[str, Any]) -> SeenSpan:
        attributes = {item["key"]: _any_value(item.get("value", {})) for item in raw.get("attributes", [])}
        status = raw.get("status") or {}
        code = str(status.get("code") or "STATUS_CODE_UNSET").rsplit("_", 1)[-1]
        return SeenSpan(
            span_id=_hex_id(raw["span_id"]),
            parent_id=_hex_id(raw["parent_span_id"]) if raw.get("parent_span_id") else None,
            name=raw["name"],
            start_ns=int(raw["start_time_unix_nano"]),
            status=code,
            status_message=status.get("message") or "",
            kind=json_or_raw(attributes.get("mlflow.spanType")) or "",
            attributes=attributes,
            events=[
                (event.get("name", ""), {i["key"]: _any_value(i.get("value", {})) for i in event.get("attributes", [])})
                for event in raw.get("events", [])
            ],
        )

    @staticmethod
    def token_totals(trace: dict[str, Any] | None) -> list[TokenTotals]:
        """The trace info's ``mlflow.trace.tokenUsage`` metadata (absent when no span reported usage)."""
        metadata = ((trace or {}).get("trace_info") or {}).get("trace_metadata") or {}
        raw = metadata.get("mlflow.trace.tokenUsage")
        usage = json.loads(raw) if raw else {}
        return [
            TokenTotals(
                f"trace_info.trace_metadata['mlflow.trace.tokenUsage'] = {raw!r}",
                usage.get("input_tokens"),
                usage.get("output_tokens"),
                usage.get("total_tokens"),
            )
        ]


def _hex_id(value: str) -> str:
    """MLflow returns ids as protobuf JSON bytes (base64); 16 or 32 hex digits pass through."""
    if len(value) in (16, 32) and all(c in "0123456789abcdef" for c in value):
        return value
    return base64.b64decode(value).hex()


def _any_value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue in protobuf JSON (either field-name spelling)."""
    for key in ("string_value", "stringValue"):
        if key in value:
            return value[key]
    for key in ("int_value", "intValue"):
        if key in value:
            return int(value[key])
    for key in ("double_value", "doubleValue"):
        if key in value:
            return float(value[key])
    for key in ("bool_value", "boolValue"):
        if key in value:
            return bool(value[key])
    for key in ("array_value", "arrayValue"):
        if key in value:
            return [_any_value(v) for v in value[key].get("values", [])]
    for key in ("kvlist_value", "kvlistValue"):
        if key in value:
            return {item["key"]: _any_value(item.get("value", {})) for item in value[key].get("values", [])}
    return None


def json_or_raw(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def mlflow_warm_up(server: Server, experiment_id: str = "0", timeout: float = 90.0) -> float:
    """Send one tiny OTLP/JSON LLM span, and return how long MLflow took to take it.

    The first span MLflow sees with a model and token usage takes ~8 s here (it loads its price catalogue
    to cost the call); a span without a model does not. Without this, the first test's export would pay
    that, close to the exporter's timeout.
    """
    now = time.time_ns()
    payload = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "warm-up"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "crewtrace-tests"},
                        "spans": [
                            {
                                "traceId": os.urandom(16).hex(),
                                "spanId": os.urandom(8).hex(),
                                "name": "chat warm-up",
                                "kind": 3,
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "1"}},
                                ],
                                "startTimeUnixNano": str(now - 1_000_000),
                                "endTimeUnixNano": str(now),
                            }
                        ],
                    }
                ],
            }
        ]
    }
    request = urllib.request.Request(
        f"{server.base_url()}/v1/traces",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "x-mlflow-experiment-id": experiment_id},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, OSError) as error:
        raise BackendError(
            f"mlflow warm-up OTLP request failed: {error}; log {server.log}:\n{server.log_tail()}"
        ) from error
    return time.monotonic() - started
