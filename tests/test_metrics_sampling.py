"""Metrics count every run whatever the trace sampler keeps: the same crews give the same metric totals when
their traces are all kept, none is kept, or their parent was not sampled."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.util._once import Once

import crewtrace
from crewtrace import attributes
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import BrokenTool, one_task_crew
from tests.openai_server import USAGE, OpenAIServer
from tests.receivers import GrpcReceiver
from tests.test_export_wire import APPS

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

# Histograms: their count, and their sum where it does not depend on timing (token counts).
_COUNTED = (
    attributes.METRIC_OPERATION_DURATION,
    attributes.METRIC_AGENT_DURATION,
    attributes.METRIC_TOOL_DURATION,
)
_SUMMED = (attributes.METRIC_TOKEN_USAGE, attributes.METRIC_COST, attributes.METRIC_CREW_RUNS)

Totals = dict[tuple[str, frozenset[tuple[str, Any]]], tuple[int, float]]


def _run_crews() -> None:
    """A run that succeeds (with priced LLM calls and a tool) and one whose tool fails three times."""
    build_demo_crew(OfflineLLM(model="gpt-4o-mini", provider="openai")).kickoff()
    one_task_crew(OfflineLLM(model="gpt-4o-mini", provider="openai"), tools=[BrokenTool()]).kickoff()


def _point_value(point: Any) -> tuple[int, float]:
    """(count, sum) of a histogram point, (1, value) of a counter's."""
    if hasattr(point, "bucket_counts"):
        return int(point.count), float(point.sum)
    return 1, float(point.value if hasattr(point, "value") else point.as_double or point.as_int)


def _totals(points: Callable[[str], list[tuple[dict[str, Any], Any]]]) -> Totals:
    """The metrics that must not depend on sampling, by name and attributes."""
    totals: Totals = {}
    for name in (*_COUNTED, *_SUMMED):
        for attrs, point in points(name):
            count, total = _point_value(point)
            totals[(name, frozenset(attrs.items()))] = (count, 0.0 if name in _COUNTED else round(total, 12))
    return totals


def _in_memory_points(reader: InMemoryMetricReader) -> Callable[[str], list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                found.setdefault(metric.name, []).extend((dict(p.attributes), p) for p in metric.data.data_points)
    return lambda name: found.get(name, [])


def _traced(sampler: Sampler, parent: SpanContext | None = None) -> tuple[Totals, int]:
    """The metric totals of the crews under a user-built TracerProvider with ``sampler``, and the spans kept."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler)
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    instrumentor = crewtrace.CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(parent))) if parent else None
    try:
        _run_crews()
    finally:
        if token is not None:
            otel_context.detach(token)
        instrumentor.uninstrument()
    return _totals(_in_memory_points(reader)), len(exporter.get_finished_spans())


def test_metric_totals_are_the_same_whether_traces_are_kept_or_not():
    kept, kept_spans = _traced(TraceIdRatioBased(1.0))
    dropped, dropped_spans = _traced(TraceIdRatioBased(0.0))
    unsampled_parent = SpanContext(0x5A * 2**120, 0x5A, is_remote=True, trace_flags=TraceFlags(0))
    under_parent, parent_spans = _traced(ParentBased(ALWAYS_ON), unsampled_parent)
    assert kept_spans > 0 and dropped_spans == parent_spans == 0
    names = {name for name, _ in kept}
    assert names == {*_COUNTED, *_SUMMED}
    token_points = {k: v for k, v in kept.items() if k[0] == attributes.METRIC_TOKEN_USAGE}
    assert sum(count for count, _ in token_points.values()) == 2 * 6  # input and output of 6 LLM calls
    assert dropped == kept
    assert under_parent == kept


def test_the_setup_calls_sampler_leaves_the_metrics_whole(monkeypatch):
    """As a user who keeps no trace sets it up: instrument(sampler="traceidratio", sampler_arg=0.0) over OTLP."""
    results = []
    for ratio in (1.0, 0.0):
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)  # each setup makes its own provider, with its sampler
        monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
        with GrpcReceiver() as receiver:
            handle = crewtrace.instrument(endpoint=receiver.endpoint, sampler="traceidratio", sampler_arg=ratio)
            _run_crews()
            handle.shutdown()
            results.append((_totals(receiver.metric_points), len(receiver.spans())))
    (kept, kept_spans), (dropped, dropped_spans) = results
    assert kept_spans > 0 and dropped_spans == 0
    assert kept and dropped == kept


def test_with_the_openai_sdk_instrumentation_each_call_counts_once_sampled_or_not(subprocess_env):
    """openai-v2 makes the LLM spans and records their durations; crewtrace records their tokens. When the trace
    is not sampled crewtrace cannot see openai-v2's spans, and still counts each call once. In a fresh process,
    as an application starts (openai-v2 instruments the SDK for the whole process)."""
    results = []
    for ratio in ("1.0", "0.0"):
        with OpenAIServer() as server:
            done = subprocess.run(
                [sys.executable, str(APPS / "openai_sdk_metrics.py"), server.base_url, ratio],
                env=subprocess_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        assert done.returncode == 0, done.stderr[-3000:]
        results.append((json.loads(done.stdout.splitlines()[-1]), len(server.requests)))
    (kept, kept_calls), (dropped, dropped_calls) = results
    assert kept["spans"] > 0 and dropped["spans"] == 0
    assert kept_calls == dropped_calls == 2
    tokens = kept["metrics"][attributes.METRIC_TOKEN_USAGE]
    assert tokens["input"] == [kept_calls, kept_calls * USAGE["prompt_tokens"]]
    assert tokens["output"] == [kept_calls, kept_calls * USAGE["completion_tokens"]]
    assert kept["metrics"][attributes.METRIC_OPERATION_DURATION][""][0] == kept_calls
    assert dropped["metrics"] == kept["metrics"]


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch):
    for key in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_METRICS_EXPORTER"):
        monkeypatch.delenv(key, raising=False)
