"""Installs of the third-party backends (Arize Phoenix, MLflow) for end-to-end tests.

Each backend is installed by pip into a virtual environment of its own (never the project's), under
``$CREWTRACE_BACKENDS_CACHE`` if set, else ``<repo>/.cache/backends``, as ``<name>-<version>``. A marker
file in the environment records a successful install of that exact pin, so later runs reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.processes import BackendError, tail

REPO = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT = 900.0  # one pip install of a backend (~65-90 s on this machine)
MARKER = ".crewtrace-installed"


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
