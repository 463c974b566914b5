"""The names crewtrace writes: the schema URL it claims is true of every GenAI name it uses."""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.schemas import Schemas

from crewtrace import attributes
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM

METRIC_NAMES = {attributes.METRIC_TOKEN_USAGE, attributes.METRIC_OPERATION_DURATION}


def _registry(module: object) -> set[str]:
    return {value for name, value in vars(module).items() if name.isupper() and isinstance(value, str)}


def _gen_ai_names() -> set[str]:
    return {
        value
        for name, value in vars(attributes).items()
        if name.isupper() and isinstance(value, str) and value.startswith("gen_ai.")
    }


def test_the_schema_url_is_a_published_semantic_conventions_release():
    assert attributes.SCHEMA_URL in {schema.value for schema in Schemas}


def test_every_gen_ai_name_is_in_the_claimed_release():
    registered = _registry(gen_ai_attributes) | _registry(gen_ai_metrics)
    outside = _gen_ai_names() - registered
    assert outside == set(), outside
    assert _registry(gen_ai_metrics) >= METRIC_NAMES


def test_operation_names_are_the_conventions_values():
    values = {member.value for member in gen_ai_attributes.GenAiOperationNameValues}
    ops = {attributes.OP_INVOKE_WORKFLOW, attributes.OP_INVOKE_AGENT, attributes.OP_CHAT, attributes.OP_EXECUTE_TOOL}
    assert ops <= values
    # execute_task is crewtrace's own operation: no convention has a task unit.
    assert attributes.OP_EXECUTE_TASK not in values


def test_spans_carry_the_schema_url(memory):
    _, exporter = memory
    build_demo_crew(OfflineLLM()).kickoff()
    scopes = {
        (span.instrumentation_scope.name, span.instrumentation_scope.schema_url)
        for span in exporter.get_finished_spans()
    }
    assert scopes == {("crewtrace", attributes.SCHEMA_URL)}
