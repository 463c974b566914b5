"""Roll-ups and cost: every span above LLM calls carries their exact totals under crewai.usage.*."""

from __future__ import annotations

import pytest
from crewai import LLM, Agent, Crew, Process, Task
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace import attributes, crewai_releases
from crewtrace.demo.crew import NotebookTool, build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from crewtrace.usage.pricing import PriceTable
from crewtrace.usage.tokens import normalize_usage
from tests.helpers import analyst_crew, one_task_crew
from tests.openai_server import USAGE, OpenAIServer

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

ROLLUP_NAMES = (
    attributes.USAGE_INPUT_TOKENS,
    attributes.USAGE_OUTPUT_TOKENS,
    attributes.USAGE_TOTAL_TOKENS,
    attributes.USAGE_REQUESTS,
)


def _descendants(spans, root) -> list:
    children: dict[int, list] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop().context.span_id, []):
            found.append(child)
            todo.append(child)
    return found


def _llm_sum(spans, root) -> dict[str, int]:
    calls = [s for s in _descendants(spans, root) if s.attributes.get(attributes.GEN_AI_OPERATION_NAME) == "chat"]
    inputs = sum(s.attributes.get(attributes.GEN_AI_USAGE_INPUT_TOKENS, 0) for s in calls)
    outputs = sum(s.attributes.get(attributes.GEN_AI_USAGE_OUTPUT_TOKENS, 0) for s in calls)
    return {
        attributes.USAGE_INPUT_TOKENS: inputs,
        attributes.USAGE_OUTPUT_TOKENS: outputs,
        attributes.USAGE_TOTAL_TOKENS: inputs + outputs,
        attributes.USAGE_REQUESTS: len(calls),
    }


def test_every_level_carries_the_exact_sum_of_the_llm_calls_beneath_it(memory):
    _, exporter = memory
    llm = OfflineLLM()  # one LLM instance shared by both agents: CrewAI's own totals count it twice
    crew = build_demo_crew(llm)
    crew.kickoff()
    spans = exporter.get_finished_spans()
    true_input = sum(u["prompt_tokens"] for u in llm.usages)
    true_output = sum(u["completion_tokens"] for u in llm.usages)
    (root,) = [s for s in spans if s.parent is None]
    assert root.attributes[attributes.USAGE_INPUT_TOKENS] == true_input
    assert root.attributes[attributes.USAGE_OUTPUT_TOKENS] == true_output
    assert root.attributes[attributes.USAGE_REQUESTS] == len(llm.usages) == 4
    assert crew.usage_metrics.total_tokens != true_input + true_output  # the double count crewtrace avoids
    for span in spans:
        if span.attributes.get(attributes.GEN_AI_OPERATION_NAME) in ("invoke_workflow", "execute_task", "invoke_agent"):
            assert {k: span.attributes[k] for k in ROLLUP_NAMES} == _llm_sum(spans, span), span.name
    for span in spans:  # roll-ups never reuse the names backends sum per trace
        if span.attributes.get(attributes.GEN_AI_OPERATION_NAME) != "chat":
            assert not any(k.startswith("gen_ai.usage.") for k in span.attributes), span.name


def test_concurrent_tasks_roll_up_exactly(memory):
    _, exporter = memory
    agents = [Agent(role=f"A{i}", goal="g", backstory="b", llm=OfflineLLM()) for i in range(3)]
    tasks = [
        Task(name=f"t{i}", description=f"part {i}", expected_output="x", agent=agents[i], async_execution=i < 2)
        for i in range(3)
    ]
    Crew(name="parallel", agents=agents, tasks=tasks).kickoff()
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    assert {k: root.attributes[k] for k in ROLLUP_NAMES} == _llm_sum(spans, root)
    true_total = sum(u["total_tokens"] for agent in agents for u in agent.llm.usages)
    assert root.attributes[attributes.USAGE_TOTAL_TOKENS] == true_total


def test_offline_models_cost_zero_and_roll_up_as_zero(memory):
    _, exporter = memory
    build_demo_crew().kickoff()
    spans = exporter.get_finished_spans()
    assert all(s.attributes[attributes.LLM_COST_USD] == 0.0 for s in spans if s.name.startswith("chat "))
    (root,) = [s for s in spans if s.parent is None]
    assert root.attributes[attributes.USAGE_COST_USD] == 0.0
    assert attributes.USAGE_UNPRICED_REQUESTS not in root.attributes


def test_a_priced_model_costs_what_the_table_says(memory):
    _, exporter = memory
    with OpenAIServer() as server:
        llm = LLM(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test-not-a-real-key")
        analyst_crew(llm, "priced").kickoff()
    spans = exporter.get_finished_spans()
    expected = PriceTable.load().find("gpt-4o-mini", "openai").cost(normalize_usage(USAGE))
    chats = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert len(chats) == 2
    assert all(s.attributes[attributes.LLM_COST_USD] == pytest.approx(expected) for s in chats)
    (root,) = [s for s in spans if s.parent is None]
    assert root.attributes[attributes.USAGE_COST_USD] == pytest.approx(2 * expected)
    assert root.attributes[attributes.USAGE_CACHE_READ_INPUT_TOKENS] == 2 * 64
    # CrewAI's OpenAI provider hands reasoning tokens on from 1.14 (1.14.7, with finish_reason, is the first
    # such release tested); before, it drops them and there are none to add up.
    if "finish_reason" in crewai_releases.completed_event_arguments():
        assert root.attributes[attributes.USAGE_REASONING_OUTPUT_TOKENS] == 2 * 12


def test_an_unknown_model_gets_no_cost_and_is_counted_as_unpriced(memory, caplog):
    _, exporter = memory
    one_task_crew(OfflineLLM(model="mystery-model", provider="acme")).kickoff()
    spans = exporter.get_finished_spans()
    (chat,) = [s for s in spans if s.name == "chat mystery-model"]
    assert attributes.LLM_COST_USD not in chat.attributes
    (root,) = [s for s in spans if s.parent is None]
    assert attributes.USAGE_COST_USD not in root.attributes
    assert root.attributes[attributes.USAGE_UNPRICED_REQUESTS] == 1
    assert any("mystery-model" in r.getMessage() for r in caplog.records)


def test_user_prices_price_an_unknown_model():

    from tests.helpers import one_task_crew

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    crewtrace.instrument(
        tracer_provider=provider, exporter="none", prices={"acme": {"mystery-model": {"input": 1e6, "output": 2e6}}}
    )
    llm = OfflineLLM(model="mystery-model", provider="acme")
    one_task_crew(llm).kickoff()
    (chat,) = [s for s in exporter.get_finished_spans() if s.name == "chat mystery-model"]
    usage = llm.usages[0]
    assert chat.attributes[attributes.LLM_COST_USD] == pytest.approx(
        usage["prompt_tokens"] + 2 * usage["completion_tokens"]
    )


@pytest.mark.parametrize(
    ("prices", "env", "named"),
    [
        ("/nonexistent/prices.json", None, "prices='/nonexistent/prices.json'"),
        ({"m": {"input": -1, "output": 1}}, None, "prices={...}"),
        (None, "/nonexistent/env-prices.json", "CREWTRACE_PRICES='/nonexistent/env-prices.json'"),
        (42, None, "prices=42"),
    ],
)
def test_bad_prices_are_one_clear_error_at_setup(monkeypatch, prices, env, named):
    if env:
        monkeypatch.setenv("CREWTRACE_PRICES", env)
    with pytest.raises(ValueError) as error:
        crewtrace.instrument(exporter="none", prices=prices)
    message = str(error.value)
    assert message.startswith(f"crewtrace: {named}") and "\n" not in message


def test_hierarchical_crew_totals_include_manager_and_coworker_calls(memory):
    _, exporter = memory
    manager_llm, worker_llm = OfflineLLM(), OfflineLLM()
    researcher = Agent(role="Researcher", goal="g", backstory="b", llm=worker_llm, tools=[NotebookTool()])
    task = Task(name="report", description="Research tracing.", expected_output="x")
    Crew(
        name="managed", agents=[researcher], tasks=[task], process=Process.hierarchical, manager_llm=manager_llm
    ).kickoff()
    spans = exporter.get_finished_spans()
    (root,) = [s for s in spans if s.parent is None]
    usages = manager_llm.usages + worker_llm.usages
    assert root.attributes[attributes.USAGE_TOTAL_TOKENS] == sum(u["total_tokens"] for u in usages)
    assert root.attributes[attributes.USAGE_REQUESTS] == len(usages)
    (delegation,) = [s for s in spans if s.name == "execute_tool delegate_work_to_coworker"]
    assert delegation.attributes[attributes.USAGE_TOTAL_TOKENS] == sum(u["total_tokens"] for u in worker_llm.usages)
    for span in spans:
        if attributes.USAGE_REQUESTS in span.attributes:
            assert {k: span.attributes[k] for k in ROLLUP_NAMES} == _llm_sum(spans, span), span.name


def test_usage_that_arrives_after_its_parent_closed_still_reaches_the_levels_still_open():
    from opentelemetry.trace import INVALID_SPAN

    from crewtrace.tracing import event_table
    from crewtrace.tracing.nodes import Node, Root
    from crewtrace.tracing.rollups import Accounting
    from crewtrace.usage.tokens import Usage

    root = Root("crew")
    crew = Node("crew", event_table.CREW, INVALID_SPAN, root, 0)
    task = Node("task", event_table.TASK, INVALID_SPAN, root, 1, crew)
    agent = Node("agent", event_table.AGENT, INVALID_SPAN, root, 2, task)
    early = Node("llm1", event_table.LLM, INVALID_SPAN, root, 3, agent, usage=Usage(100, 10))
    late = Node(
        "llm2", event_table.LLM, INVALID_SPAN, root, 5, agent, usage=Usage(7, 3)
    )  # after its agent's span ended
    accounts = Accounting(PriceTable.load(), None)
    for node in (early, agent, late, task, crew):
        accounts.closing(node, 10, {})
        node.closed = True
    assert (agent.totals.input_tokens, agent.totals.requests) == (100, 1)
    assert (task.totals.input_tokens, task.totals.output_tokens, task.totals.requests) == (107, 13, 2)
    assert (crew.totals.input_tokens, crew.totals.requests) == (107, 2)
