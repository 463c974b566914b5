"""Every benchmark process runs CrewAI offline and away from the user's home: no telemetry, no CrewAI
tracing, test mode, and its storage and HOME in temporary directories. Apply before importing crewai:
``os.environ.update(environment())``."""

from __future__ import annotations

import functools
import tempfile


@functools.cache
def environment() -> dict[str, str]:
    """CrewAI's switches, and its storage and HOME in temporary directories (made once per process)."""
    return {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_TESTING": "true",
        "CREWAI_STORAGE_DIR": tempfile.mkdtemp(prefix="crewtrace-bench-"),
        "HOME": tempfile.mkdtemp(prefix="crewtrace-bench-home-"),
    }
