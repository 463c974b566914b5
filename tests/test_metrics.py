"""Metrics over OTLP, read by a real OTLP receiver: token usage, durations, cost and crew runs."""

from __future__ import annotations

import pytest

import crewtrace
from crewtrace import attributes, crewai_releases
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from crewtrace.tracing.metrics import DURATION_BUCKETS, TOKEN_BUCKETS
from crewtrace.usage.pricing import PriceTable
from crewtrace.usage.tokens import normalize_usage
from tests.helpers import BrokenTool, one_task_crew
from tests.receivers import GrpcReceiver, HttpReceiver

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


@pytest.mark.parametrize(("receiver_class", "protocol"), [(GrpcReceiver, "grpc"), (HttpReceiver, "http/protobuf")])
def test_metrics_arrive_with_the_runs_values(receiver_class, protocol):
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")  # priced by the shipped table
    with receiver_class() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint, protocol=protocol)
        build_demo_crew(llm).kickoff()
        handle.shutdown()  # flushes the metrics
        units = receiver.metric_units()
        tokens = receiver.metric_points(attributes.METRIC_TOKEN_USAGE)
        llm_durations = receiver.metric_points(attributes.METRIC_OPERATION_DURATION)
        agents = receiver.metric_points(attributes.METRIC_AGENT_DURATION)
        tools = receiver.metric_points(attributes.METRIC_TOOL_DURATION)
        cost = receiver.metric_points(attributes.METRIC_COST)
        runs = receiver.metric_points(attributes.METRIC_CREW_RUNS)

    assert units[attributes.METRIC_TOKEN_USAGE] == "{token}"
    assert units[attributes.METRIC_OPERATION_DURATION] == units[attributes.METRIC_AGENT_DURATION] == "s"
    assert units[attributes.METRIC_COST] == "USD"
    by_type = {attrs[attributes.GEN_AI_TOKEN_TYPE]: point for attrs, point in tokens}
    assert by_type["input"].sum == sum(u["prompt_tokens"] for u in llm.usages)
    assert by_type["output"].sum == sum(u["completion_tokens"] for u in llm.usages)
    assert by_type["input"].count == len(llm.usages) == 4
    assert list(by_type["input"].explicit_bounds) == list(TOKEN_BUCKETS)
    attrs = tokens[0][0]
    assert attrs[attributes.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    # Before crewai 1.13.0 a custom LLM's "openai" cannot be told from BaseLLM's default: no provider then.
    assert attrs.get(attributes.GEN_AI_PROVIDER_NAME) == ("openai" if crewai_releases.llm_is_pydantic() else None)
    assert attrs[attributes.GEN_AI_OPERATION_NAME] == "chat"
    ((_, llm_point),) = llm_durations
    assert llm_point.count == 4 and llm_point.sum > 0
    assert list(llm_point.explicit_bounds) == list(DURATION_BUCKETS)
    assert {a[attributes.GEN_AI_AGENT_NAME]: p.count for a, p in agents} == {"Researcher": 1, "Writer": 2}
    assert {a[attributes.GEN_AI_TOOL_NAME]: p.count for a, p in tools} == {"notebook_lookup": 1}
    price = PriceTable.load().find("gpt-4o-mini", "openai")
    expected_cost = sum(price.cost(normalize_usage(u)) for u in llm.usages)
    ((_, cost_point),) = cost
    assert cost_point.as_double == pytest.approx(expected_cost) and expected_cost > 0
    ((run_attrs, run_point),) = runs
    assert run_point.as_int == 1
    assert (
        run_attrs[attributes.CREW_RUN_STATUS] == "ok" and run_attrs[attributes.GEN_AI_WORKFLOW_NAME] == "tracing-note"
    )


def test_failures_are_split_by_error_type():
    with GrpcReceiver() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint)
        one_task_crew(OfflineLLM(), tools=[BrokenTool()]).kickoff()
        handle.shutdown()
        tools = receiver.metric_points(attributes.METRIC_TOOL_DURATION)
    ((attrs, point),) = tools
    assert attrs[attributes.ERROR_TYPE] == "ConnectionError" and point.count == 3


def test_metrics_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    with GrpcReceiver() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint)
        assert handle.meter_provider is None
        one_task_crew(OfflineLLM()).kickoff()
        handle.shutdown()
        assert receiver.metric_requests == []
        assert receiver.spans()
