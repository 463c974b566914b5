"""Test-wide setup: CrewAI offline and quiet, its storage in a temporary directory, crewtrace torn down."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Before anything imports crewai: no telemetry, no tracing prompt, nothing written to the user's home.
_HOME = tempfile.mkdtemp(prefix="crewtrace-tests-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.update(
    CREWAI_DISABLE_TELEMETRY="true",
    CREWAI_TRACING_ENABLED="false",
    CREWAI_TESTING="true",
    LITELLM_LOCAL_MODEL_COST_MAP="True",  # litellm would fetch its price map from the internet at import
    CREWAI_STORAGE_DIR=_HOME,
    HOME=_HOME,
)

import pytest  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import crewtrace  # noqa: E402
from crewtrace.setup import configure  # noqa: E402

TEST_ENV = {
    key: os.environ[key]
    for key in ("CREWAI_DISABLE_TELEMETRY", "CREWAI_TRACING_ENABLED", "CREWAI_TESTING", "LITELLM_LOCAL_MODEL_COST_MAP")
}


@pytest.fixture(autouse=True)
def _clean_crewtrace():
    """Every test starts and ends uninstrumented, with an empty CrewAI event scope stack.

    CrewAI leaves a scope on its stack when a step's end event is never emitted (a failed knowledge query
    rewrite); the next kickoff in the same thread then names it as its parent. crewtrace copes with that
    (tests/test_lookups.py), but each test must start from a clean stack to be independent of the others.
    """
    from crewai.events import event_context

    if hasattr(event_context, "restore_event_scope"):  # crewai 1.14.1
        event_context.restore_event_scope(())
    else:
        event_context._event_id_stack.set(())
    yield
    if configure._active is not None:
        configure._active.shutdown()
    if crewtrace.CrewAIInstrumentor().is_instrumented_by_opentelemetry:
        crewtrace.CrewAIInstrumentor().uninstrument()


@pytest.fixture
def memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A TracerProvider that keeps finished spans in memory (not instrumented: pass it to instrument())."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def memory(memory_provider) -> tuple[TracerProvider, InMemorySpanExporter]:
    """A TracerProvider that keeps finished spans in memory, instrumented by crewtrace."""
    provider, _ = memory_provider
    crewtrace.CrewAIInstrumentor().instrument(tracer_provider=provider)
    return memory_provider


@pytest.fixture
def subprocess_env(tmp_path) -> dict[str, str]:
    """Environment for a child process: CrewAI offline, home and storage in this test's tmp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(TEST_ENV, HOME=str(tmp_path), CREWAI_STORAGE_DIR=str(tmp_path / "crewai"))
    return env


@pytest.fixture
def fresh_global_provider(monkeypatch):
    """Each ``instrument()`` in the test makes its own global TracerProvider, from a clean OTEL_* environment.

    OpenTelemetry sets the global provider once per process; an earlier test's provider would make
    crewtrace keep that provider's resource. Restored after the test.
    """
    from opentelemetry import trace as otel_trace
    from opentelemetry.util._once import Once

    monkeypatch.setattr(otel_trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(otel_trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
