"""CrewAI's native Bedrock provider (boto3 Converse) over real HTTP to a loopback Bedrock Runtime: tokens, cache
counts and cost on the spans.

boto3 finds the server through ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` and signs with fake credentials for us-east-1,
all set for the run only. Two runs: Converse (one tool call, then a final answer) and ConverseStream (event-stream
frames; two tasks, no tool). Each test checks one thing of a run against the usage the server sent for each call,
with every expected number computed here by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from crewai import LLM
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace import attributes
from crewtrace.report.records import records_from_sdk
from tests.bedrock_server import BedrockServer, Call
from tests.helpers import analyst_crew, outline, writer_crew
from tests.route_checks import RunSpans

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

# Converse runs the on-demand model id; ConverseStream the US cross-region inference profile of the same model.
MODELS = {False: "anthropic.claude-sonnet-4-20250514-v1:0", True: "us.anthropic.claude-sonnet-4-20250514-v1:0"}

# Claude Sonnet 4 on Amazon Bedrock, on demand, us-east-1, USD per million tokens, from
# https://aws.amazon.com/bedrock/pricing/ (Anthropic table, listed per 1,000 tokens: $0.003 input, $0.015 output,
# $0.00375 cache write, $0.0003 cache read), as of 2026-12-05. A cross-region profile costs the source region's price.
PRICE_INPUT = 3.00
PRICE_OUTPUT = 15.00
PRICE_CACHE_READ = 0.30
PRICE_CACHE_WRITE = 3.75

# The GenAI conventions' names (https://opentelemetry.io/docs/specs/semconv/registry/attributes/gen-ai/), written
# out here so that a wrong name in crewtrace fails; input_tokens includes cache reads and cache writes.
INPUT, OUTPUT = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
CACHE_READ, CACHE_WRITE = "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens"

# Each token cell: the LLM span's attribute, the crew's crewai.usage.* roll-up, and its value from Converse's
# TokenUsage (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html: inputTokens
# leaves out cacheReadInputTokens and cacheWriteInputTokens; totalTokens counts all of them and the output).
CELLS: dict[str, tuple[str, str, Callable[[dict[str, int]], int]]] = {
    "input_incl_cache": (
        INPUT,
        attributes.USAGE_INPUT_TOKENS,
        lambda u: u["inputTokens"] + u["cacheReadInputTokens"] + u["cacheWriteInputTokens"],
    ),
    "output": (OUTPUT, attributes.USAGE_OUTPUT_TOKENS, lambda u: u["outputTokens"]),
    "cache_read": (CACHE_READ, attributes.USAGE_CACHE_READ_INPUT_TOKENS, lambda u: u["cacheReadInputTokens"]),
    "cache_write": (
        CACHE_WRITE,
        attributes.USAGE_CACHE_CREATION_INPUT_TOKENS,
        lambda u: u["cacheWriteInputTokens"],
    ),
}


@dataclass
class Run(RunSpans):
    """One traced crew run against the server: its finished spans, the calls answered and the expected tree."""

    stream: bool
    spans: list[ReadableSpan]
    calls: list[Call]
    rejected: list[str]
    tree: list[str]

    @property
    def usages(self) -> list[dict[str, int]]:
        """The usage the server sent for each call, in order."""
        return [call.usage for call in self.calls]


def _aws_env(mp: pytest.MonkeyPatch, endpoint: str, nowhere: Path) -> None:
    """Fake credentials for us-east-1, the Bedrock Runtime endpoint on loopback, and no AWS file or other source."""
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION_NAME", "AWS_BEARER_TOKEN_BEDROCK"):
        mp.delenv(key, raising=False)
    mp.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")
    mp.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint)
    mp.setenv("AWS_ACCESS_KEY_ID", "AKIATESTNOTREAL00000")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-not-real")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("AWS_CONFIG_FILE", str(nowhere / "config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "credentials"))
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _kickoff(stream: bool, nowhere: Path) -> Run:
    """A crew on ``LLM(model="bedrock/...")`` traced by crewtrace into memory, against a fresh server."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = crewtrace.CrewAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    model = MODELS[stream]
    name = f"bedrock-{'stream' if stream else 'converse'}"
    try:
        with BedrockServer() as server, pytest.MonkeyPatch.context() as mp:
            _aws_env(mp, server.base_url, nowhere)
            llm = LLM(model=f"bedrock/{model}", stream=stream)
            # The streamed run has no tool: CrewAI's Bedrock stream handler drops a streamed toolUse.
            (writer_crew if stream else analyst_crew)(llm, name).kickoff()
    finally:
        instrumentor.uninstrument()
    if stream:
        tree = [f"invoke_workflow {name}"]
        for task in ("one", "two"):
            tree += [f"  execute_task {task}", "    invoke_agent Writer", f"      chat {model}"]
    else:
        steps = [f"chat {model}", "execute_tool notebook_lookup", f"chat {model}"]
        tree = [f"invoke_workflow {name}", "  execute_task analyse", "    invoke_agent Analyst"]
        tree += [f"      {step}" for step in steps]
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return Run(stream, spans, list(server.calls), list(server.rejected), tree)


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[bool, Run]]:
    """The runs made so far in this module, by streamed or not: each crew runs once."""
    yield {}


@pytest.fixture(params=[False, True], ids=["converse", "converse-stream"])
def run(request: pytest.FixtureRequest, runs: dict[bool, Run], tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The run for this mode, made in the first test that needs it (after conftest's per-test clean-up)."""
    if request.param not in runs:
        runs[request.param] = _kickoff(request.param, tmp_path_factory.mktemp("no-aws-files"))
    return runs[request.param]


def _cost(usage: dict[str, int]) -> float:
    """One call's price by Bedrock's table, bucket by bucket."""
    return (
        usage["inputTokens"] * PRICE_INPUT
        + usage["cacheReadInputTokens"] * PRICE_CACHE_READ
        + usage["cacheWriteInputTokens"] * PRICE_CACHE_WRITE
        + usage["outputTokens"] * PRICE_OUTPUT
    ) / 1_000_000


def test_every_call_is_one_llm_span_in_the_crew_tree(run: Run) -> None:
    """Each Converse(Stream) call the server answered is one ``chat`` span under its agent: none lost, none
    doubled. Whatever CountTokens requests CrewAI makes are no LLM call: they get no span."""
    assert run.rejected == []
    assert len(run.calls) == len(run.chats()) == 2
    assert [call.stream for call in run.calls] == [run.stream] * 2
    assert outline(records_from_sdk(run.spans)) == run.tree
    models = [span.attributes.get(attributes.GEN_AI_REQUEST_MODEL) for span in run.chats()]
    assert models == [call.model_id for call in run.calls] == [MODELS[run.stream]] * 2
    assert [span.attributes.get(attributes.LLM_STREAM) for span in run.chats()] == [run.stream] * 2
    assert run.crew().attributes[attributes.USAGE_REQUESTS] == len(run.calls)


def test_requests_are_signed_for_bedrock_in_us_east_1(run: Run) -> None:
    """boto3 signed every call (SigV4) with the test's fake key for bedrock in us-east-1: no other credentials."""
    for call in run.calls:
        assert call.authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIATESTNOTREAL00000/"), call.authorization
        assert "/us-east-1/bedrock/aws4_request" in call.authorization


def test_the_tool_round_reaches_the_server(run: Run) -> None:
    """Converse: the first answer is a toolUse, the tool runs, and the second request carries its toolResult.
    ConverseStream (no tool): neither request offers or answers a tool."""
    results = [b["toolResult"] for m in run.calls[1].body["messages"] for b in m["content"] if "toolResult" in b]
    if run.stream:
        assert results == [] and all("toolConfig" not in call.body for call in run.calls)
    else:
        assert [r["toolUseId"] for r in results] == ["tooluse_01"]
        assert "tree of spans" in str(results[0]["content"])


@pytest.mark.parametrize("cell", CELLS)
def test_llm_span_tokens_are_what_bedrock_reported(run: Run, cell: str) -> None:
    """Each LLM span's gen_ai.usage.* count is its own response's, input counted with the cache once."""
    key, _, expected = CELLS[cell]
    assert [span.attributes.get(key) for span in run.chats()] == [expected(u) for u in run.usages]


@pytest.mark.parametrize("cell", CELLS)
def test_crew_rollup_sums_the_calls(run: Run, cell: str) -> None:
    """The crew's crewai.usage.* count is the sum over every call the server answered."""
    _, key, expected = CELLS[cell]
    assert run.crew().attributes.get(key) == sum(expected(u) for u in run.usages)


def test_crew_total_is_bedrocks_total(run: Run) -> None:
    """crewai.usage.total_tokens is the sum of Bedrock's own totalTokens (inclusive input plus output)."""
    assert run.crew().attributes.get(attributes.USAGE_TOTAL_TOKENS) == sum(u["totalTokens"] for u in run.usages)


def test_no_reasoning_count_is_made_up(run: Run) -> None:
    """Converse's usage has no reasoning count: no span claims one."""
    for span in [*run.chats(), run.crew()]:
        assert not [key for key in span.attributes if "reasoning" in key], span.name


def test_cost_is_bedrocks_price_of_each_bucket(run: Run) -> None:
    """Each call costs uncached input, cache reads, cache writes and output at Bedrock's on-demand prices; the
    crew costs their sum."""
    expected = [_cost(u) for u in run.usages]
    costs = [span.attributes.get(attributes.LLM_COST_USD) for span in run.chats()]
    assert costs == [pytest.approx(cost, rel=5e-3, abs=1e-9) for cost in expected]
    crew = run.crew().attributes
    assert crew.get(attributes.USAGE_COST_USD) == pytest.approx(sum(expected), rel=5e-3, abs=1e-9)
    assert attributes.USAGE_UNPRICED_REQUESTS not in crew


def test_provider_name_is_crewais(run: Run) -> None:
    """gen_ai.provider.name is the LLM's CrewAI provider, ``bedrock``, as docs/span-model.md says (the price
    lookup maps it to AWS's prices)."""
    assert [span.attributes.get(attributes.GEN_AI_PROVIDER_NAME) for span in run.chats()] == ["bedrock"] * 2
