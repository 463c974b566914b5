"""End to end against real backends: crews traced by ``crewtrace.instrument()``, read back through each backend's API.

Arize Phoenix (OTLP gRPC and HTTP) and the MLflow tracking server (OTLP HTTP) run as real servers, each from
its own virtual environment (tests/backend_installs.py installs them once per machine). Each test runs a real crew,
flushes with ``handle.shutdown()`` and asserts what the backend stored and computed: the span tree by ids,
every LLM call's tokens (as sent and as the backend derived them), errors with their exception events, and
each per-trace token total the backend reports, which must equal the true sum of the calls' tokens.

The controls at the end replay a real run changed in two ways crewtrace avoids (roll-ups also named
``gen_ai.usage.*``; a second LLM span for one call) and pin what each backend's totals then show: which
kinds of double counting these assertions would catch (Phoenix: a duplicated LLM span) and which no total
of these backend versions can reveal (roll-ups on non-LLM spans, anything in MLflow).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from crewai import Crew
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM, OfflineLLMError
from tests import backends
from tests.backend_installs import MLFLOW, PHOENIX, Backend
from tests.backend_readers import MlflowReader, PhoenixReader, SeenSpan, TokenTotals, json_or_raw, phoenix_sessions
from tests.helpers import BrokenTool, failing_second_call_crew, one_task_crew, outline
from tests.processes import BackendError, Server, settle

pytestmark = [pytest.mark.usefixtures("fresh_global_provider"), pytest.mark.slow]
MODEL = "gpt-4o-mini"  # a model both backends (and crewtrace) have a price for
CHAT = f"chat {MODEL}"

DEMO_TREE = [
    "invoke_workflow tracing-note",
    "  execute_task research",
    "    invoke_agent Researcher",
    f"      {CHAT}",
    "      execute_tool notebook_lookup",
    f"      {CHAT}",
    "  execute_task outline",
    "    invoke_agent Writer",
    f"      {CHAT}",
    "  execute_task write",
    "    invoke_agent Writer",
    f"      {CHAT}",
]
BROKEN_TOOL_TREE = [
    "invoke_workflow single",
    "  execute_task job",
    "    invoke_agent Worker",
    f"      {CHAT}",
    "      execute_tool broken_lookup",
    "      execute_tool broken_lookup",
    "      execute_tool broken_lookup",
    f"      {CHAT}",
]
FAILING_LLM_TREE = [
    "invoke_workflow failing",
    "  execute_task first",
    "    invoke_agent Worker",
    f"      {CHAT}",
    "  execute_task second",
    "    invoke_agent Worker",
    f"      {CHAT}",
]


# --- servers, once per session -----------------------------------------------------------------------------------


@dataclass
class Started:
    """A session's backend server, or why it could not be had (each test using it then fails with that)."""

    server: Server | None = None
    error: str | None = None

    def get(self) -> Server:
        if self.server is None:
            pytest.fail(f"backend unavailable: {self.error}", pytrace=False)
        return self.server


def _serve(
    make: Callable[[Any, Any], Server], backend: Backend, workdir: Any, prepare: Callable[[Server], Any]
) -> Iterator[Started]:
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(backends.running(make, backend, workdir))
        prepare(server)
    except BackendError as error:
        stack.close()
        yield Started(error=str(error))
        return
    with stack:
        yield Started(server=server)


@pytest.fixture(scope="session")
def phoenix_server(tmp_path_factory) -> Iterator[Started]:
    yield from _serve(backends.phoenix_server, PHOENIX, tmp_path_factory.mktemp("phoenix"), lambda _: None)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[Started]:
    yield from _serve(backends.mlflow_server, MLFLOW, tmp_path_factory.mktemp("mlflow"), backends.mlflow_warm_up)


# --- where a test sends its trace and how it reads it back ------------------------------------------------------


@dataclass
class Read:
    spans: list[SeenSpan]
    totals: list[TokenTotals]
    raw: Any  # the backend's own trace-level answer, for assertion messages and backend-specific checks


@dataclass
class Target:
    backend: str
    protocol: str
    started: Started
    label: str  # unique per test: Phoenix's project name, a resource attribute for MLflow

    @property
    def server(self) -> Server:
        """The running server; a backend that could not be installed or started fails the test here."""
        return self.started.get()

    def instrument(self) -> crewtrace.Instrumentation:
        resource = {"crewtrace.test.run": self.label}
        if self.backend == "phoenix":
            resource["openinference.project.name"] = self.label
            endpoint = self.server.base_url("grpc" if self.protocol == "grpc" else "http")
            return crewtrace.instrument(endpoint=endpoint, protocol=self.protocol, resource_attributes=resource)
        return crewtrace.instrument(
            endpoint=self.server.base_url(),
            protocol=self.protocol,
            headers={"x-mlflow-experiment-id": "0"},
            resource_attributes=resource,
            timeout=30,
        )

    def read(self, trace_id: str, span_count: int, expected: tuple[int, int, int] | list[tuple[int, int, int]]) -> Read:
        """The stored trace, once ``span_count`` spans are readable and (Phoenix) its totals settled.

        ``expected`` is what every per-trace total should say, or a list of what each should say; the
        caller asserts, so a total that never gets there fails with what the backend last reported.
        """
        if self.backend == "phoenix":
            reader = PhoenixReader(self.server, self.label)
            spans = reader.wait_for_spans(trace_id, span_count)
            # Token totals are written as spans are inserted: read until they reach the expected figures.
            summary = settle(
                lambda: reader.trace_summary(trace_id),
                lambda s: _matches([_figures(t) for t in reader.token_totals(s)], expected),
                timeout=10.0,
            )
            return Read(spans, reader.token_totals(summary), summary)
        mlflow = MlflowReader(self.server)
        found = mlflow.wait_for_trace(trace_id, span_count)
        return Read(mlflow.spans(found), mlflow.token_totals(found), found)

    def llm_usage(self, span: SeenSpan) -> tuple[Any, Any, Any]:
        """The tokens the backend itself derived for one LLM span from crewtrace's gen_ai.usage.* attributes."""
        if self.backend == "phoenix":
            a = span.attributes
            return a.get("llm.token_count.prompt"), a.get("llm.token_count.completion"), a.get("llm.token_count.total")
        usage = json_or_raw(span.attributes.get("mlflow.chat.tokenUsage")) or {}
        return usage.get("input_tokens"), usage.get("output_tokens"), usage.get("total_tokens")

    def kinds(self) -> dict[str, str]:
        """How the backend classifies crewtrace's agent, LLM and tool spans (Phoenix's REST total counts LLM only)."""
        if self.backend == "phoenix":
            return {"invoke_agent": "AGENT", "chat": "LLM", "execute_tool": "TOOL"}
        return {"invoke_agent": "AGENT", "chat": "CHAT_MODEL", "execute_tool": "TOOL"}


TARGETS = {
    "phoenix-grpc": ("phoenix", "grpc"),
    "phoenix-http": ("phoenix", "http/protobuf"),
    "mlflow-http": ("mlflow", "http/protobuf"),
}


@pytest.fixture
def target(request) -> Target:
    backend, protocol = TARGETS[request.param]
    started: Started = request.getfixturevalue(f"{backend}_server")
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60]
    return Target(backend, protocol, started, f"crewtrace-{slug}-{uuid.uuid4().hex[:8]}")


@dataclass
class Run:
    sent: list[ReadableSpan]
    trace_id: str
    usages: list[dict[str, int]]
    error: BaseException | None

    @property
    def expected(self) -> tuple[int, int, int]:
        return (
            sum(u["prompt_tokens"] for u in self.usages),
            sum(u["completion_tokens"] for u in self.usages),
            sum(u["total_tokens"] for u in self.usages),
        )


def run_traced(target: Target, llm: OfflineLLM, crew: Crew) -> Run:
    """Instrument, kick the crew off, shut down (which flushes), and keep a copy of every span sent."""
    handle = target.instrument()
    sent = InMemorySpanExporter()
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(sent))
    error: BaseException | None = None
    try:
        crew.kickoff()
    except OfflineLLMError as raised:
        error = raised
    finally:
        handle.shutdown()
    spans = list(sent.get_finished_spans())
    trace_ids = {format(s.context.trace_id, "032x") for s in spans}
    assert len(trace_ids) == 1, f"one kickoff should be one trace, got {trace_ids}"
    return Run(spans, trace_ids.pop(), llm.usages, error)


# --- assertions ------------------------------------------------------------------------------------------------


def _hex(span_id: int) -> str:
    return format(span_id, "016x")


def _figures(totals: TokenTotals) -> tuple[Any, Any, Any]:
    return totals.input, totals.output, totals.total


def _matches(figures: list[tuple[Any, Any, Any]], expected: tuple[int, int, int] | list[tuple[int, int, int]]) -> bool:
    return figures == (expected if isinstance(expected, list) else [expected] * len(figures))


def assert_tree(read: Read, run: Run, expected_outline: list[str]) -> dict[str, SeenSpan]:
    seen = {s.span_id: s for s in read.spans}
    sent = {_hex(s.context.span_id): s for s in run.sent}
    assert set(seen) == set(sent), f"stored span ids differ from those sent: {outline(read.spans)}"
    for span_id, span in sent.items():
        parent = _hex(span.parent.span_id) if span.parent else None
        assert (seen[span_id].name, seen[span_id].parent_id) == (span.name, parent), span_id
    assert outline(read.spans) == expected_outline
    return seen


def assert_tokens(target: Target, read: Read, run: Run) -> None:
    """Each LLM span's tokens are the reported usage; the backend's own trace totals are their exact sum."""
    chats = sorted((s for s in read.spans if s.name == CHAT), key=lambda s: s.start_ns)
    succeeded = [s for s in chats if s.status != "ERROR"]
    assert len(succeeded) == len(run.usages)
    for span, usage in zip(succeeded, run.usages, strict=True):
        want = (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"])
        got = (span.attributes.get("gen_ai.usage.input_tokens"), span.attributes.get("gen_ai.usage.output_tokens"))
        assert got == want[:2], span.span_id
        assert target.llm_usage(span) == want, f"{target.backend}'s own count for LLM span {span.span_id}"
    for span in read.spans:
        if span.name != CHAT:
            assert not [k for k in span.attributes if k.startswith("gen_ai.usage.")], span.name
    root = next(s for s in read.spans if s.parent_id is None)
    assert root.attributes.get("crewai.usage.total_tokens", 0) == run.expected[2]
    assert root.attributes.get("crewai.usage.requests") == len(chats)
    for totals in read.totals:
        assert _figures(totals) == run.expected, (
            f"{target.backend} per-trace tokens from {totals.source}: {_figures(totals)}, "
            f"true (input, output, total) = {run.expected}"
        )


def assert_kinds(target: Target, read: Read) -> None:
    for span in read.spans:
        operation = span.name.split(" ", 1)[0]
        if operation in target.kinds():
            assert span.kind == target.kinds()[operation], span.name


def assert_failed(span: SeenSpan, message: str, exception_type: str | None) -> None:
    assert span.status == "ERROR", span.name
    assert message in span.status_message, span.name
    (event,) = span.exception_events()
    assert message in event.get("exception.message", ""), span.name
    assert event.get("exception.type") == exception_type, span.name


def assert_cost(target: Target, read: Read, root: SeenSpan) -> None:
    """The backend prices the calls itself (its own table); it must agree with crewtrace's roll-up."""
    ours = root.attributes.get("crewai.usage.cost_usd")
    assert ours and ours > 0
    if target.backend == "phoenix":
        theirs = read.raw["project"]["trace"]["costSummary"]["total"]["cost"]
    else:
        theirs = json.loads(read.raw["trace_info"]["trace_metadata"]["mlflow.trace.cost"])["total_cost"]
    assert theirs == pytest.approx(ours, rel=1e-9)


def assert_trace_record(target: Target, read: Read, errors: int, errors_by_type: dict[str | None, int]) -> None:
    """What the backend says about the trace as a whole: its error count, state, resource."""
    if target.backend == "phoenix":
        graph = read.raw["project"]["trace"]
        assert graph["numSpans"] == len(read.spans)
        assert graph["errorCount"] == errors
        assert {e["exceptionType"]: e["count"] for e in graph["errorsByType"]} == errors_by_type
        assert graph["rootSpan"]["propagatedStatusCode"] == ("ERROR" if errors else "OK")
    else:
        info = read.raw["trace_info"]
        root = next(s for s in read.spans if s.parent_id is None)
        assert info["state"] == ("ERROR" if root.status == "ERROR" else "OK")
        assert info["trace_location"]["mlflow_experiment"]["experiment_id"] == "0"
        assert info["tags"]["crewtrace.test.run"] == target.label  # resource attributes become trace tags
        assert info["tags"]["service.name"] == "crewai"
        assert sum(1 for s in read.spans if s.status == "ERROR") == errors


# --- tests -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["phoenix-grpc", "phoenix-http", "mlflow-http"], indirect=True)
def test_demo_crew_tree_tokens_and_backend_totals(target):
    llm = OfflineLLM(model=MODEL, provider="openai")
    run = run_traced(target, llm, build_demo_crew(llm))
    assert run.error is None
    assert len(run.usages) == 4
    read = target.read(run.trace_id, len(run.sent), run.expected)

    seen = assert_tree(read, run, DEMO_TREE)
    assert_tokens(target, read, run)
    assert_kinds(target, read)
    root = next(s for s in seen.values() if s.parent_id is None)
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["crewai.crew.final_output"].startswith("Offline answer")
    tool = next(s for s in seen.values() if s.name == "execute_tool notebook_lookup")
    assert "OTLP" in tool.attributes["gen_ai.tool.call.result"]
    assert all(s.status == "UNSET" for s in seen.values())
    assert_cost(target, read, root)
    assert_trace_record(target, read, errors=0, errors_by_type={})


@pytest.mark.parametrize("target", ["phoenix-http", "mlflow-http"], indirect=True)
def test_failing_tool_attempts_are_error_spans_with_exception_events(target):
    llm = OfflineLLM(model=MODEL, provider="openai")
    run = run_traced(target, llm, one_task_crew(llm, tools=[BrokenTool()]))
    assert run.error is None  # CrewAI hands the tool's error to the agent, which answers anyway
    read = target.read(run.trace_id, len(run.sent), run.expected)

    seen = assert_tree(read, run, BROKEN_TOOL_TREE)
    assert_tokens(target, read, run)
    assert_kinds(target, read)
    tools = sorted((s for s in seen.values() if s.name == "execute_tool broken_lookup"), key=lambda s: s.start_ns)
    assert [t.attributes["crewai.tool.attempt"] for t in tools] == [1, 2, 3]
    for span in tools:
        assert_failed(span, "backend unreachable", "ConnectionError")
        assert span.attributes["error.type"] == "ConnectionError"
    assert all(s.status == "UNSET" for s in seen.values() if s not in tools)
    assert_trace_record(target, read, errors=3, errors_by_type={"ConnectionError": 3})


@pytest.mark.parametrize("target", ["phoenix-grpc", "mlflow-http"], indirect=True)
def test_failing_llm_call_fails_the_crew_and_counts_only_reported_tokens(target):
    llm = OfflineLLM(model=MODEL, provider="openai", fail_calls=[2])
    run = run_traced(target, llm, failing_second_call_crew(llm))
    assert isinstance(run.error, OfflineLLMError)
    assert len(run.usages) == 1  # the failed call reported nothing
    read = target.read(run.trace_id, len(run.sent), run.expected)

    seen = assert_tree(read, run, FAILING_LLM_TREE)
    assert_tokens(target, read, run)
    by_name = {}
    for span in sorted(seen.values(), key=lambda s: s.start_ns):
        by_name.setdefault(span.name, []).append(span)
    message = "offline LLM call 2 failed on purpose"
    failed_chat = by_name[CHAT][1]
    assert_failed(failed_chat, message, None)  # CrewAI reports LLM failures as text: no exception.type
    assert failed_chat.attributes["error.type"] == "_OTHER"
    assert_failed(by_name["invoke_agent Worker"][1], message, None)
    for name in ("execute_task second", "invoke_workflow failing"):
        (span,) = by_name[name]
        assert_failed(span, message, "crewtrace.offline_llm.OfflineLLMError")
    assert [
        s.status for s in (by_name[CHAT][0], by_name["invoke_agent Worker"][0], by_name["execute_task first"][0])
    ] == ["UNSET"] * 3
    assert_trace_record(target, read, errors=4, errors_by_type={None: 2, "crewtrace.offline_llm.OfflineLLMError": 2})


# --- controls: what the backends' totals can and cannot catch -------------------------------------------------------


def replay(run: Run, target: Target, label: str, mutation: str) -> str:
    """Send the run's spans again under fresh ids, changed as crewtrace deliberately does not; the new trace id.

    ``rollups_as_gen_ai``: the roll-ups on crew, task and agent spans also named ``gen_ai.usage.*``.
    ``duplicate_llm_spans``: each LLM call shown twice, the second span a child of the first carrying the same
    usage (as when a provider SDK's instrumentation and crewtrace both made a span for one call).
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.trace import SpanContext, SpanKind

    def new_id(bits: int) -> int:
        return int.from_bytes(os.urandom(bits // 8), "big")

    trace_id = new_id(128)
    ids = {s.context.span_id: new_id(64) for s in run.sent}
    resource = Resource({"service.name": "crewai", "openinference.project.name": label, "crewtrace.test.run": label})
    replayed = []
    for span in run.sent:
        attributes = dict(span.attributes or {})
        context = SpanContext(trace_id, ids[span.context.span_id], is_remote=False)
        if mutation == "rollups_as_gen_ai":
            for key in ("input_tokens", "output_tokens"):
                if f"crewai.usage.{key}" in attributes:
                    attributes[f"gen_ai.usage.{key}"] = attributes[f"crewai.usage.{key}"]
        elif span.name == CHAT and "gen_ai.usage.input_tokens" in attributes:
            copied = {
                k: v
                for k, v in attributes.items()
                if k.startswith(("gen_ai.usage.", "gen_ai.request.", "gen_ai.provider."))
            }
            replayed.append(
                ReadableSpan(
                    name=span.name,
                    context=SpanContext(trace_id, new_id(64), is_remote=False),
                    parent=context,
                    resource=resource,
                    attributes={**copied, "gen_ai.operation.name": "chat"},
                    kind=SpanKind.CLIENT,
                    start_time=span.start_time,
                    end_time=span.end_time,
                    instrumentation_scope=span.instrumentation_scope,
                )
            )
        replayed.append(
            ReadableSpan(
                name=span.name,
                context=context,
                parent=SpanContext(trace_id, ids[span.parent.span_id], is_remote=False) if span.parent else None,
                resource=resource,
                attributes=attributes,
                events=span.events,
                kind=span.kind,
                status=span.status,
                start_time=span.start_time,
                end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope,
            )
        )
    headers = {"x-mlflow-experiment-id": "0"} if target.backend == "mlflow" else None
    exporter = OTLPSpanExporter(endpoint=f"{target.server.base_url()}/v1/traces", headers=headers, timeout=30)
    try:
        assert exporter.export(replayed) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    return format(trace_id, "032x")


# How many times each per-trace total (in the readers' order) counts the true total after each change.
# Phoenix 20.26.1 takes tokens from LLM-kind spans only (crew and task spans are UNKNOWN, agents AGENT), so
# roll-ups never count there, whatever their names; a second LLM span for one call counts again in its trace
# list (REST), the root's cumulative count and the cost summary, but not in the project's count, which skips
# LLM spans that have an LLM child. MLflow 3.17.2 skips usage below any span that has some, so it counts
# neither: no MLflow total can show double counting.
CONTROLS = {
    ("phoenix", "rollups_as_gen_ai"): [1, 1, 1, 1],
    ("phoenix", "duplicate_llm_spans"): [2, 2, 2, 1],
    ("mlflow", "rollups_as_gen_ai"): [1],
    ("mlflow", "duplicate_llm_spans"): [1],
}


@pytest.mark.parametrize("target", ["phoenix-http", "mlflow-http"], indirect=True)
def test_control_what_each_backend_total_would_show_for_double_counted_tokens(target):
    llm = OfflineLLM(model=MODEL, provider="openai")
    run = run_traced(target, llm, build_demo_crew(llm))
    for mutation in ("rollups_as_gen_ai", "duplicate_llm_spans"):
        label = f"{target.label[:60]}-{mutation.split('_')[0]}"
        replayed = Target(target.backend, target.protocol, target.started, label)
        count = len(run.sent) + (len(run.usages) if mutation == "duplicate_llm_spans" else 0)
        wanted = [tuple(times * n for n in run.expected) for times in CONTROLS[target.backend, mutation]]
        read = replayed.read(replay(run, target, label, mutation), count, wanted)
        assert len(read.spans) == count
        got = [(t.source, _figures(t)) for t in read.totals]
        assert [figures for _, figures in got] == wanted, f"{mutation}: {got}"


@pytest.mark.parametrize("target", ["phoenix-http"], indirect=True)
def test_phoenix_groups_the_runs_of_a_session_in_its_sessions_view(target):
    handle = target.instrument()
    sent = InMemorySpanExporter()
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(sent))
    chat, other = f"{target.label}-chat", f"{target.label}-other"
    with crewtrace.context(session_id=chat, user_id="user-7"):
        one_task_crew(OfflineLLM(), name="first").kickoff()
        one_task_crew(OfflineLLM(), name="second").kickoff()
    with crewtrace.context(session_id=other):
        one_task_crew(OfflineLLM(), name="third").kickoff()
    one_task_crew(OfflineLLM(), name="unlabelled").kickoff()
    handle.shutdown()
    traces: dict[str, str] = {}
    for span in sent.get_finished_spans():
        if span.parent is None:
            traces[span.name.split()[-1]] = format(span.context.trace_id, "032x")
    sessions = settle(
        lambda: phoenix_sessions(target.server, target.label),
        lambda found: sum(s["num_traces"] for s in found.values()) >= 3,
        timeout=30.0,
    )
    assert sessions == {
        chat: {"user_id": "user-7", "num_traces": 2, "traces": sorted([traces["first"], traces["second"]])},
        other: {"user_id": None, "num_traces": 1, "traces": [traces["third"]]},
    }
