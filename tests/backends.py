"""Arize Phoenix and the MLflow tracking server as real servers for end-to-end tests.

Servers listen on 127.0.0.1 only, on free ports, with their data in a temporary directory and an
environment that turns off everything that would reach the internet. Every install, wait and stop is
bounded in time. Installs are in tests/backend_installs.py, process control in tests/processes.py, the
API readers in tests/backend_readers.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.backend_installs import MLFLOW, PHOENIX, Backend, _bin, ensure_installed, server_env
from tests.processes import LOOPBACK, BackendError, Server, free_ports


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
