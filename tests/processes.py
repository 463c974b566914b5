"""Processes and HTTP on loopback for end-to-end tests: free ports, a server process started in its own
process group and stopped however the test ends, bounded polling, and GET/POST to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 120.0  # from launch to a healthy health endpoint (~10 s)
STOP_TIMEOUT = 20.0  # after SIGINT, before SIGTERM and then SIGKILL


class BackendError(RuntimeError):
    """A backend could not be installed, started or read; the message says why, with its log's tail."""


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    # pip's "Location ... is ignored" warnings for this machine's missing local indexes are noise.
    kept = [line for line in text.splitlines() if not (line.startswith("WARNING: Location ") and "ignored" in line)]
    return "\n".join(kept[-lines:])


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


def run_zero_code(
    env: dict[str, str], endpoint: str, *command: str, metrics: str = "none", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``opentelemetry-instrument python COMMAND…`` as a user runs it, exporting over OTLP/gRPC to ``endpoint``
    (traces, and metrics unless ``metrics`` is ``none``); bounded by ``timeout`` seconds."""
    run_env = {
        **env,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": metrics,
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
    }
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    return subprocess.run(
        [str(instrument), sys.executable, *command],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
