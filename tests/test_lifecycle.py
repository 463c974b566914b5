"""Lifecycle: uninstrument removes every hook, cycles leak nothing, a forked worker keeps tracing,
CrewAI's own telemetry can be turned off from instrument()."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from crewai.events.event_bus import CrewAIEventsBus, crewai_event_bus
from crewai.telemetry.telemetry import Telemetry

import crewtrace
from crewtrace import CrewAIInstrumentor
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import read_otlp_file
from tests.helpers import one_task_crew

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

ROOT = Path(__file__).resolve().parent.parent


def _handler_count() -> int:
    return sum(len(handlers) for handlers in crewai_event_bus._sync_handlers.values())


def test_instrument_uninstrument_cycles_leave_crewai_as_it_was(memory_provider):
    import crewai.crew
    import litellm

    provider, exporter = memory_provider
    handlers, emit, kickoff = _handler_count(), CrewAIEventsBus.emit, crewai.crew.Crew.kickoff
    completion = litellm.completion
    for _ in range(3):
        CrewAIInstrumentor().instrument(tracer_provider=provider)
        assert CrewAIEventsBus.emit is not emit and crewai.crew.Crew.kickoff is not kickoff
        one_task_crew(OfflineLLM()).kickoff()
        CrewAIInstrumentor().uninstrument()
        assert (CrewAIEventsBus.emit, crewai.crew.Crew.kickoff, litellm.completion) == (emit, kickoff, completion)
        assert _handler_count() == handlers  # crewtrace never registers bus handlers
    assert len(exporter.get_finished_spans()) == 3 * 4
    one_task_crew(OfflineLLM()).kickoff()
    assert len(exporter.get_finished_spans()) == 3 * 4  # nothing traced once uninstrumented


@pytest.mark.parametrize("exporter", ["none", "file"])
def test_many_cycles_do_not_grow_memory(memory_provider, tmp_path, exporter):
    """crewtrace's own growth: what CrewAI itself keeps of as many runs is measured apart and taken off
    (crewai 1.10 to 1.12 keep every event of every run even with their tracing off: about 0.5 MB in 40 runs)."""
    provider, memory = memory_provider
    where = {"file_path": tmp_path / "traces.jsonl"} if exporter == "file" else {}

    def kickoff() -> None:
        one_task_crew(OfflineLLM()).kickoff()  # a new crew: up to 1.13, a crew run again keeps its old messages

    def cycle() -> None:
        handle = crewtrace.instrument(tracer_provider=provider, exporter=exporter, **where)
        kickoff()
        handle.shutdown()
        memory.clear()  # the test's own exporter keeps every span: not crewtrace's memory

    def grown(run: Callable[[], None]) -> int:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(40):
            run()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before

    for _ in range(5):  # warm up caches and lazy imports
        cycle()
    tracemalloc.start()
    try:
        crewai_own = grown(kickoff)
        growth = grown(cycle) - crewai_own
    finally:
        tracemalloc.stop()
    assert growth < 2_000_000, growth  # bytes; a leak of even one span tree per cycle would pass this fast


def test_a_forked_worker_keeps_tracing(subprocess_env, tmp_path):
    path = tmp_path / "traces.jsonl"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "apps" / "forked.py"), str(path)],
        env={**subprocess_env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert pids["parent"] != pids["child"]
    records = read_otlp_file(path)
    roots = sorted(r.name for r in records if r.parent_id is None)
    assert roots == ["invoke_workflow child", "invoke_workflow parent"]  # the child's run was exported by the child
    for root in (r for r in records if r.parent_id is None):
        assert len([r for r in records if r.trace_id == root.trace_id]) == 4


def test_crewai_telemetry_can_be_turned_off_from_instrument(monkeypatch):
    monkeypatch.delenv("CREWAI_DISABLE_TELEMETRY", raising=False)
    monkeypatch.delenv("CREWAI_DISABLE_TRACKING", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    assert not Telemetry._is_telemetry_disabled()
    crewtrace.instrument(exporter="none", crewai_telemetry=False)
    assert Telemetry._is_telemetry_disabled()


def test_suppressed_instrumentation_records_nothing_and_leaves_nothing_behind(memory):
    """Inside OpenTelemetry's suppress_instrumentation(), as contrib instrumentations do: no span, no state."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    _, exporter = memory
    with suppress_instrumentation():
        result = one_task_crew(OfflineLLM()).kickoff()
    assert result.raw and exporter.get_finished_spans() == ()
    tracker = CrewAIInstrumentor()._tracker
    assert tracker is not None and tracker.open_span_count() == 0
    one_task_crew(OfflineLLM()).kickoff()  # and tracing resumes after it
    assert {s.name for s in exporter.get_finished_spans()} >= {"invoke_workflow single", "execute_task job"}
