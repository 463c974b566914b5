"""Every way CrewAI runs gives one complete, correctly parented trace per kickoff."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
from crewai import Agent, Crew, Task
from crewai.events import crewai_event_bus

from crewtrace import CrewAIInstrumentor, attributes
from crewtrace.demo.crew import NotebookTool, build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import records_from_sdk
from tests.helpers import ReportFlow, hierarchical_crew, outline
from tests.test_span_tree import EXPECTED_TREE

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

# CrewAI's own start events, and the span operation each must produce exactly once.
COUNTED = {
    "crew_kickoff_started": "invoke_workflow",
    "task_started": "execute_task",
    "agent_execution_started": "invoke_agent",
    "lite_agent_execution_started": "invoke_agent",
    "llm_call_started": "chat",
    "tool_usage_started": "execute_tool",
}


class EventCounter:
    """Counts CrewAI's start events as CrewAI's own bus delivers them (a plain bus handler)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._classes = _start_classes()
        self._lock = threading.Lock()  # the bus runs handlers on a pool: two may count at once

    def _handler(self, source, event) -> None:
        with self._lock:
            self.counts[event.type] += 1

    def __enter__(self) -> EventCounter:
        for cls in self._classes:
            crewai_event_bus.on(cls)(self._handler)
        return self

    def __exit__(self, *exc) -> None:
        crewai_event_bus.flush(10)
        for cls in self._classes:
            crewai_event_bus.off(cls, self._handler)

    def spans_expected(self) -> Counter[str]:
        expected: Counter[str] = Counter()
        for etype, operation in COUNTED.items():
            expected[operation] += self.counts[etype]
        return expected


def _start_classes() -> list[type]:
    import crewai.events.types.agent_events as ag
    import crewai.events.types.crew_events as cr
    import crewai.events.types.llm_events as ll
    import crewai.events.types.task_events as ta
    import crewai.events.types.tool_usage_events as to

    return [
        cr.CrewKickoffStartedEvent,
        ta.TaskStartedEvent,
        ag.AgentExecutionStartedEvent,
        ag.LiteAgentExecutionStartedEvent,
        ll.LLMCallStartedEvent,
        to.ToolUsageStartedEvent,
    ]


def assert_counts_match_crewai(exporter, counter: EventCounter, flows: int = 0) -> None:
    spans = exporter.get_finished_spans()
    got = Counter(s.attributes.get(attributes.GEN_AI_OPERATION_NAME) for s in spans)
    expected = counter.spans_expected()
    expected["invoke_workflow"] += flows  # a user Flow is a workflow too; CrewAI's own flows are not counted
    for operation, count in expected.items():
        assert got[operation] == count, operation
    assert CrewAIInstrumentor().tracker.open_span_count() == 0
    assert not [s.name for s in spans if s.attributes.get(attributes.SPAN_INCOMPLETE)]


def test_akickoff(memory):
    _, exporter = memory
    with EventCounter() as counter:
        asyncio.run(build_demo_crew().akickoff())
    assert outline(records_from_sdk(exporter.get_finished_spans())) == EXPECTED_TREE
    assert_counts_match_crewai(exporter, counter)


def test_kickoff_async(memory):
    _, exporter = memory
    with EventCounter() as counter:
        asyncio.run(build_demo_crew().kickoff_async())
    assert outline(records_from_sdk(exporter.get_finished_spans())) == EXPECTED_TREE
    assert_counts_match_crewai(exporter, counter)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_kickoff_for_each_is_one_trace_per_input(memory, asynchronous):
    _, exporter = memory
    crew = build_demo_crew()
    inputs = [{"topic": "a"}, {"topic": "b"}, {"topic": "c"}]
    with EventCounter() as counter:
        if asynchronous:
            asyncio.run(crew.kickoff_for_each_async(inputs))
        else:
            crew.kickoff_for_each(inputs)
    records = records_from_sdk(exporter.get_finished_spans())
    assert outline(records) == EXPECTED_TREE * 3
    assert len({r.trace_id for r in records}) == 3
    assert_counts_match_crewai(exporter, counter)


def test_async_execution_tasks_keep_their_spans(memory):
    _, exporter = memory
    llm = OfflineLLM()
    first = Agent(role="First", goal="g", backstory="b", llm=llm)
    second = Agent(role="Second", goal="g", backstory="b", llm=llm)
    t1 = Task(name="t1", description="one", expected_output="x", agent=first, async_execution=True)
    t2 = Task(name="t2", description="two", expected_output="x", agent=second, async_execution=True)
    t3 = Task(name="t3", description="three", expected_output="x", agent=first, context=[t1, t2])
    with EventCounter() as counter:
        Crew(name="parallel", agents=[first, second], tasks=[t1, t2, t3]).kickoff()
    records = records_from_sdk(exporter.get_finished_spans())
    assert sorted(outline(records)) == sorted(
        [
            "invoke_workflow parallel",
            "  execute_task t1",
            "    invoke_agent First",
            "      chat crewtrace-offline",
            "  execute_task t2",
            "    invoke_agent Second",
            "      chat crewtrace-offline",
            "  execute_task t3",
            "    invoke_agent First",
            "      chat crewtrace-offline",
        ]
    )
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["execute_task t1"].attributes[attributes.TASK_ASYNC_EXECUTION] is True
    assert_counts_match_crewai(exporter, counter)


def test_hierarchical_coworker_nests_under_the_delegation_tool(memory):
    _, exporter = memory
    crew = hierarchical_crew(OfflineLLM())
    with EventCounter() as counter:
        crew.kickoff()
    assert outline(records_from_sdk(exporter.get_finished_spans())) == [
        "invoke_workflow managed",
        "  execute_task report",
        "    invoke_agent Crew Manager",
        "      chat crewtrace-offline",
        "      execute_tool delegate_work_to_coworker",
        "        invoke_agent Researcher",
        "          chat crewtrace-offline",
        "          execute_tool notebook_lookup",
        "          chat crewtrace-offline",
        "      chat crewtrace-offline",
    ]
    assert_counts_match_crewai(exporter, counter)


def test_standalone_agent_kickoff(memory):
    _, exporter = memory
    agent = Agent(role="Solo", goal="Answer", backstory="b", llm=OfflineLLM(), tools=[NotebookTool()])
    with EventCounter() as counter:
        agent.kickoff("What is OTLP?")
    assert outline(records_from_sdk(exporter.get_finished_spans())) == [
        "invoke_agent Solo",
        "  chat crewtrace-offline",
        "  execute_tool notebook_lookup",
        "  chat crewtrace-offline",
    ]
    assert_counts_match_crewai(exporter, counter)


def test_flow_is_the_root_and_its_crews_nest_under_their_method(memory):
    _, exporter = memory
    with EventCounter() as counter:
        ReportFlow().kickoff()
    assert outline(records_from_sdk(exporter.get_finished_spans())) == [
        "invoke_workflow ReportFlow",
        "  flow_method gather",
        "  flow_method write",
        "    invoke_workflow writer-crew",
        "      execute_task job",
        "        invoke_agent Worker",
        "          chat crewtrace-offline",
    ]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["flow_method write"].attributes[attributes.FLOW_METHOD_NAME] == "write"
    assert spans["invoke_workflow ReportFlow"].attributes[attributes.FLOW_NAME] == "ReportFlow"
    assert_counts_match_crewai(exporter, counter, flows=1)
