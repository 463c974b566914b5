"""CrewAI's event quirks: lost start or end events, events without ids, stale scopes, never a leak or a crash."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace.offline_llm import OfflineLLM
from crewtrace.tracing.event_hook import scope_starting_types
from crewtrace.tracing.tracker import SpanTracker
from tests.helpers import BrokenTool, one_task_crew
from tests.test_out_of_order import RUNS, recorded_run

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def _live_replay(events, caplog) -> tuple[SpanTracker, list]:
    """Hand events to a live tracker (as the listener does) inside one kickoff's run scope."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracker = SpanTracker(provider.get_tracer("robust"), transparent_types=scope_starting_types(), live=True)
    with caplog.at_level(logging.WARNING, logger="crewtrace.tracing.tracker"), tracker.run_scope():
        for source, event in events:
            tracker.handle(source, event)
    return tracker, list(exporter.get_finished_spans())


@pytest.mark.parametrize("kind", sorted(RUNS))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_lost_events_never_leave_a_span_open_or_break_handling(kind, data, caplog):
    events = list(recorded_run(kind))
    lost = data.draw(st.sets(st.integers(0, len(events) - 1), max_size=max(1, len(events) // 3)))
    kept = [pair for i, pair in enumerate(events) if i not in lost]
    caplog.clear()  # caplog is shared by the examples: start each one empty
    tracker, spans = _live_replay(kept, caplog)
    assert tracker.open_span_count() == 0
    assert not [r for r in caplog.records if "could not" in r.getMessage()]  # quirks are noticed, not faults
    ids = {s.context.span_id for s in spans}
    for span in spans:
        assert span.end_time >= span.start_time
        # A span's parent is in this run, unless it is a root: the caller's context (none here).
        assert span.parent is None or span.parent.span_id in ids


def test_a_lost_end_event_is_an_incomplete_span_ended_by_the_run(caplog):
    events = list(recorded_run("failing_tool"))
    lost = next(i for i, (_, e) in enumerate(events) if e.type == "agent_execution_completed")
    tracker, spans = _live_replay(events[:lost] + events[lost + 1 :], caplog)
    (agent,) = [s for s in spans if s.name == "invoke_agent Worker"]
    assert agent.attributes["crewai.span.incomplete"] is True
    (task,) = [s for s in spans if s.name == "execute_task job"]
    assert agent.end_time <= task.end_time
    assert tracker.open_span_count() == 0


def test_a_lost_crew_start_still_ends_every_span_of_the_run(caplog):
    events = list(recorded_run("failing_tool"))
    kept = [pair for pair in events if pair[1].type != "crew_kickoff_started"]
    tracker, spans = _live_replay(kept, caplog)
    assert tracker.open_span_count() == 0
    (task,) = [s for s in spans if s.name == "execute_task job"]
    assert task.parent is None  # its parent never came: it is the root of the run's trace


def test_events_without_ids_are_ignored_with_a_notice(caplog):
    events = list(recorded_run("failing_tool"))
    tool_start = next(e for _, e in events if e.type == "tool_usage_started")
    stripped = [
        (source, event.model_copy(update={"event_id": None}) if event is tool_start else event)
        for source, event in events
    ]
    tracker, spans = _live_replay(stripped, caplog)
    assert tracker.open_span_count() == 0
    assert len([s for s in spans if s.name == "execute_tool broken_lookup"]) == 2
    assert any("without an event_id" in r.getMessage() for r in caplog.records)


def test_a_long_running_process_retains_nothing_of_finished_runs(memory):
    """Live, every span and scope of a finished run is forgotten: memory does not grow with the number of runs."""
    tracker = crewtrace.CrewAIInstrumentor().tracker
    for _ in range(5):
        one_task_crew(OfflineLLM(), tools=[BrokenTool()]).kickoff()
        assert tracker.retained() == {"open": 0, "closed": 0, "aliases": 0, "waiting": 0}
    _, exporter = memory
    assert len([s for s in exporter.get_finished_spans() if s.parent is None]) == 5
