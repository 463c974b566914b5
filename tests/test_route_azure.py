"""CrewAI's native Azure provider (azure-ai-inference) over real HTTP to a loopback Azure OpenAI deployment.

The analyst crew runs once per (deployment, mode): gpt-4o-mini (native tool calls) and o4-mini (a reasoning
deployment; CrewAI gives it the ReAct text protocol), each non-streamed and streamed (usage in the last chunk).
Each test checks one thing of that run against what the server sent for each call, computed here by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from crewai import LLM
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace import attributes
from crewtrace.demo.crew import NotebookTool
from crewtrace.report.records import records_from_sdk
from tests.azure_server import AzureRequest, AzureServer
from tests.helpers import analyst_crew, outline
from tests.route_checks import RunSpans, clear_event_scope

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

API_KEY = "test-not-real"
API_VERSION = "2024-10-21"
_TOOL_RESULT = json.dumps(NotebookTool()._run("tracing"))[1:-1]  # as it appears inside a JSON request body

# Azure OpenAI, global deployments, USD per million tokens (input, cached input, output; output includes
# reasoning tokens), from https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/
# (figures as of 2026-12-05).
PRICES = {
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "o4-mini": (1.10, 0.275, 4.40),
}

# Each token cell: the span's gen_ai.usage.* attribute, the crew's crewai.usage.* roll-up, and its value from
# the response's usage (prompt_tokens includes cached_tokens; completion_tokens includes reasoning_tokens).
CELLS: dict[str, tuple[str, str, Callable[[dict[str, Any]], int]]] = {
    "input_incl_cache": (
        attributes.GEN_AI_USAGE_INPUT_TOKENS,
        attributes.USAGE_INPUT_TOKENS,
        lambda u: u["prompt_tokens"],
    ),
    "output_incl_reasoning": (
        attributes.GEN_AI_USAGE_OUTPUT_TOKENS,
        attributes.USAGE_OUTPUT_TOKENS,
        lambda u: u["completion_tokens"],
    ),
    "cache_read": (
        attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        attributes.USAGE_CACHE_READ_INPUT_TOKENS,
        lambda u: u["prompt_tokens_details"]["cached_tokens"],
    ),
    "reasoning": (
        attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        attributes.USAGE_REASONING_OUTPUT_TOKENS,
        lambda u: u["completion_tokens_details"]["reasoning_tokens"],
    ),
}

# (deployment, stream, how the endpoint is given): as LLM(...) arguments, or as AZURE_* environment variables.
ROUTES = [
    ("gpt-4o-mini", False, "arguments"),
    ("gpt-4o-mini", True, "environment"),
    ("o4-mini", False, "environment"),
    ("o4-mini", True, "arguments"),
]


@dataclass
class Run(RunSpans):
    """One crew run against the server: the finished spans, and every request it received and answered."""

    deployment: str
    stream: bool
    spans: list[ReadableSpan]
    paths: list[str]
    requests: list[AzureRequest]

    @property
    def usages(self) -> list[dict[str, Any]]:
        return [request.usage for request in self.requests]


def _llm(server: AzureServer, deployment: str, stream: bool, given_as: str, env: pytest.MonkeyPatch) -> LLM:
    """``LLM(model="azure/<deployment>")`` aimed at the loopback deployment, by arguments or by environment."""
    if given_as == "arguments":
        return LLM(
            model=f"azure/{deployment}",
            endpoint=server.endpoint,
            api_key=API_KEY,
            api_version=API_VERSION,
            stream=stream,
        )
    env.setenv("AZURE_ENDPOINT", server.endpoint)
    env.setenv("AZURE_API_KEY", API_KEY)
    env.setenv("AZURE_API_VERSION", API_VERSION)
    return LLM(model=f"azure/{deployment}", stream=stream)


@pytest.fixture(scope="module", params=ROUTES, ids=lambda r: f"{r[0]}-{'stream' if r[1] else 'complete'}")
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The analyst crew on CrewAI's Azure provider pointed at the loopback deployment, traced."""
    deployment, stream, given_as = request.param
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    clear_event_scope()
    instrumentor = crewtrace.CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with pytest.MonkeyPatch.context() as env, AzureServer(deployment, reasoning=deployment == "o4-mini") as server:
            for name in ("AZURE_ENDPOINT", "AZURE_OPENAI_ENDPOINT", "AZURE_API_BASE", "AZURE_API_KEY"):
                env.delenv(name, raising=False)
            llm = _llm(server, deployment, stream, given_as, env)
            assert type(llm).__name__ == "AzureCompletion"
            analyst_crew(llm, "azure-crew").kickoff()
    finally:
        instrumentor.uninstrument()
    yield Run(deployment, stream, list(exporter.get_finished_spans()), list(server.paths), list(server.requests))
    provider.shutdown()


def _cost(deployment: str, usage: dict[str, Any]) -> float:
    """One call's price by Azure's table: uncached input, cached input, and output with reasoning."""
    price_input, price_cached, price_output = PRICES[deployment]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    fresh = usage["prompt_tokens"] - cached
    return (fresh * price_input + cached * price_cached + usage["completion_tokens"] * price_output) / 1_000_000


def _count(attrs: Any, key: str) -> int:
    """A count attribute; absent is 0 (crewtrace leaves counts of 0 out of roll-ups)."""
    return int(attrs.get(key, 0))


def test_every_request_has_one_llm_span_in_the_crew_tree(run: Run) -> None:
    """Each chat completion the deployment answered is one ``chat`` span under the agent: none lost, none doubled;
    every request reached the loopback deployment with the key and API version given."""
    assert run.paths == [f"/openai/deployments/{run.deployment}/chat/completions?api-version={API_VERSION}"] * 2
    assert [(r.api_key, r.api_version, r.body.get("stream")) for r in run.requests] == [
        (API_KEY, API_VERSION, run.stream)
    ] * 2
    assert len(run.requests) == len(run.chats()) == 2
    # The round worked: the second request hands the model the notebook's fact (tool message or Observation).
    assert _TOOL_RESULT in json.dumps(run.requests[1].body)
    assert outline(records_from_sdk(run.spans)) == [
        "invoke_workflow azure-crew",
        "  execute_task analyse",
        "    invoke_agent Analyst",
        f"      chat {run.deployment}",
        "      execute_tool notebook_lookup",
        f"      chat {run.deployment}",
    ]
    for span, request in zip(run.chats(), run.requests, strict=True):
        assert span.attributes[attributes.GEN_AI_REQUEST_MODEL] == request.body["model"] == run.deployment
    assert run.crew().attributes[attributes.USAGE_REQUESTS] == len(run.requests)


@pytest.mark.parametrize("cell", CELLS)
def test_llm_span_tokens_are_what_azure_reported(run: Run, cell: str) -> None:
    """Each LLM span's gen_ai.usage.* count is the one its own response's usage gave."""
    key, _, expected = CELLS[cell]
    assert [_count(span.attributes, key) for span in run.chats()] == [expected(u) for u in run.usages]


@pytest.mark.parametrize("cell", CELLS)
def test_crew_rollup_sums_the_calls(run: Run, cell: str) -> None:
    """The crew's crewai.usage.* count is the sum over every call the deployment answered."""
    _, key, expected = CELLS[cell]
    assert _count(run.crew().attributes, key) == sum(expected(u) for u in run.usages)


def test_azure_reports_no_cache_writes_and_none_are_made_up(run: Run) -> None:
    """Azure OpenAI's usage has no cache-write count (prompt caching is automatic): no span claims any."""
    for span in [*run.chats(), run.crew()]:
        assert not [key for key in span.attributes if "cache_creation" in key or "cache_write" in key], span.name


def test_cost_is_azures_price_of_each_bucket(run: Run) -> None:
    """Each call costs its uncached input, cached input and output with reasoning at Azure's prices; the crew
    costs their sum."""
    expected = [_cost(run.deployment, u) for u in run.usages]
    costs = [span.attributes.get(attributes.LLM_COST_USD) for span in run.chats()]
    assert costs == [pytest.approx(cost, rel=5e-3, abs=1e-9) for cost in expected]
    crew = run.crew().attributes
    assert crew.get(attributes.USAGE_COST_USD) == pytest.approx(sum(expected), rel=5e-3, abs=1e-9)
    assert attributes.USAGE_UNPRICED_REQUESTS not in crew


def test_cost_prices_the_spans_own_tokens_at_azures_table(run: Run) -> None:
    """crewtrace's price for each call is Azure's table applied to the tokens on the span itself: the price
    database agrees with Azure, whatever the tokens (a wrong count is the token tests' failure, not this)."""
    price_input, price_cached, price_output = PRICES[run.deployment]
    for span in run.chats():
        attrs = span.attributes
        cached = _count(attrs, attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        fresh = _count(attrs, attributes.GEN_AI_USAGE_INPUT_TOKENS) - cached
        output = _count(attrs, attributes.GEN_AI_USAGE_OUTPUT_TOKENS)
        expected = (fresh * price_input + cached * price_cached + output * price_output) / 1_000_000
        assert attrs.get(attributes.LLM_COST_USD) == pytest.approx(expected, rel=5e-3, abs=1e-9)


def test_provider_name_is_crewais(run: Run) -> None:
    """gen_ai.provider.name is the LLM's CrewAI provider, ``azure``, as docs/span-model.md says (the price
    lookup maps it to Azure's prices)."""
    assert [span.attributes.get(attributes.GEN_AI_PROVIDER_NAME) for span in run.chats()] == ["azure"] * 2
