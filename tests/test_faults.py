"""Faults inside crewtrace (or in what it calls) are contained: same crew result, spans still ended, one log line."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from crewtrace import CrewAIInstrumentor
from crewtrace.offline_llm import OfflineLLM
from crewtrace.tracing import event_table, metrics
from crewtrace.tracing.builders import task as task_builders
from tests.helpers import BrokenTool, one_task_crew

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def _plain_result() -> str:
    return one_task_crew(OfflineLLM(), tools=[BrokenTool()]).kickoff().raw


def _boom(*args, **kwargs):
    raise RuntimeError("injected fault")


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (task_builders, "task_start"),  # describing a span at its start
        (event_table._ENDS, event_table.LLM),  # reading an LLM call's end
        (event_table._ENDS, event_table.TOOL),  # reading a tool attempt's end
        (metrics.CrewMetrics, "record_llm"),  # recording metrics as a span ends
    ],
    ids=["task start", "llm end", "tool end", "metrics"],
)
def test_a_fault_in_crewtrace_leaves_the_crew_and_the_tree_whole(memory_provider, monkeypatch, caplog, target, name):
    plain = _plain_result()
    provider, exporter = memory_provider
    CrewAIInstrumentor().instrument(tracer_provider=provider)
    if isinstance(target, dict):
        monkeypatch.setitem(target, name, _boom)
    else:
        monkeypatch.setattr(target, name, _boom)
    with caplog.at_level(logging.WARNING, logger="crewtrace"):
        traced = _plain_result()
        _plain_result()
    assert traced == plain
    tracker = CrewAIInstrumentor().tracker
    assert tracker.open_span_count() == 0
    spans_ = exporter.get_finished_spans()
    roots = [s for s in spans_ if s.parent is None]
    assert len(roots) == 2
    assert len(spans_) == 2 * 8  # crew, task, agent, 2 LLM calls, 3 tool attempts: none missing
    ids = {s.context.span_id for s in spans_}
    assert all(s.parent is None or s.parent.span_id in ids for s in spans_)
    faults = [r for r in caplog.records if "injected fault" in r.getMessage()]
    assert len(faults) == 1  # logged once, not once per event or per run


class RaisingExporter(SpanExporter):
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        raise ConnectionResetError("exporter bug")

    def shutdown(self) -> None:
        pass


def test_a_raising_exporter_never_reaches_the_crew():
    plain = _plain_result()
    exporter = RaisingExporter()
    provider = TracerProvider()
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    CrewAIInstrumentor().instrument(tracer_provider=provider)
    assert _plain_result() == plain
    processor.force_flush(5_000)
    assert exporter.calls >= 1
    provider.shutdown()
