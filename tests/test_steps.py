"""The rest of a run: guardrails and their retries, agent retries, reasoning, tool failures, streaming."""

from __future__ import annotations

import re

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool
from opentelemetry.trace import StatusCode

from crewtrace import attributes, crewai_releases
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import records_from_sdk
from tests.helpers import BrokenTool, one_task_crew, outline

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def _named(exporter, name: str) -> list:
    return sorted((s for s in exporter.get_finished_spans() if s.name == name), key=lambda s: s.start_time)


def test_guardrail_checks_and_the_retry_they_cause(memory):
    _, exporter = memory
    checks = {"n": 0}

    def must_be_second(output):
        checks["n"] += 1
        return (True, output.raw) if checks["n"] > 1 else (False, "Too short, add detail.")

    llm = OfflineLLM()
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm)
    task = Task(
        name="job", description="Do the job.", expected_output="A result.", agent=agent, guardrail=must_be_second
    )
    Crew(name="guarded", agents=[agent], tasks=[task]).kickoff()

    assert outline(records_from_sdk(exporter.get_finished_spans())) == [
        "invoke_workflow guarded",
        "  execute_task job",
        "    invoke_agent Worker",
        "      chat crewtrace-offline",
        "    guardrail must_be_second",
        "    invoke_agent Worker",
        "      chat crewtrace-offline",
        "    guardrail must_be_second",
    ]
    rejected, accepted = _named(exporter, "guardrail must_be_second")
    assert rejected.attributes[attributes.GUARDRAIL_PASSED] is False
    assert rejected.attributes[attributes.GUARDRAIL_FEEDBACK] == "Too short, add detail."
    assert rejected.attributes[attributes.GUARDRAIL_RETRY_COUNT] == 0
    assert rejected.attributes[attributes.GUARDRAIL_TYPE] == "function"
    assert accepted.attributes[attributes.GUARDRAIL_PASSED] is True
    assert accepted.attributes[attributes.GUARDRAIL_RETRY_COUNT] == 1
    assert attributes.GUARDRAIL_FEEDBACK not in accepted.attributes
    assert checks["n"] == 2


def test_an_llm_guardrail_runs_its_own_agent_under_the_guardrail_span(memory):
    _, exporter = memory
    llm = OfflineLLM()
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm)
    rule = "The answer must mention the word offline."
    task = Task(name="job", description="Do the job.", expected_output="A result.", agent=agent, guardrail=rule)
    Crew(name="llm-guarded", agents=[agent], tasks=[task]).kickoff()
    tree = outline(records_from_sdk(exporter.get_finished_spans()))
    assert tree[:6] == [
        "invoke_workflow llm-guarded",
        "  execute_task job",
        "    invoke_agent Worker",
        "      chat crewtrace-offline",
        "    guardrail llm",
        "      invoke_agent Guardrail Agent",
    ]
    # The guardrail agent's own calls: one, or two on older crewai releases (a second converts its answer).
    assert tree[6:] and set(tree[6:]) == {"        chat crewtrace-offline"}
    (guard,) = _named(exporter, "guardrail llm")
    assert guard.attributes[attributes.GUARDRAIL_DESCRIPTION] == rule
    assert guard.attributes[attributes.GUARDRAIL_TYPE] == "llm"
    assert guard.attributes[attributes.GUARDRAIL_PASSED] is True


def test_crew_planning_is_a_task_of_its_own_before_the_crews_tasks(memory):
    _, exporter = memory
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=OfflineLLM())
    task = Task(name="job", description="Do the job.", expected_output="A result.", agent=agent)
    Crew(name="planned", agents=[agent], tasks=[task], planning=True, planning_llm=OfflineLLM()).kickoff()
    assert outline(records_from_sdk(exporter.get_finished_spans())) == [
        "invoke_workflow planned",
        "  execute_task Task",
        "    invoke_agent Task Execution Planner",
        "      chat crewtrace-offline",
        "  execute_task job",
        "    invoke_agent Worker",
        "      chat crewtrace-offline",
    ]


def test_a_failed_attempt_and_its_retry_are_sibling_agent_spans(memory):
    _, exporter = memory
    llm = OfflineLLM(fail_calls=[1])
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm, max_retry_limit=1)
    task = Task(name="job", description="Do the job.", expected_output="A result.", agent=agent)
    result = Crew(name="retried", agents=[agent], tasks=[task]).kickoff()
    assert result.raw.startswith("Offline answer")
    first, second = _named(exporter, "invoke_agent Worker")
    assert first.parent.span_id == second.parent.span_id
    assert first.status.status_code is StatusCode.ERROR
    assert second.status.status_code is StatusCode.UNSET
    assert first.end_time <= second.start_time
    chats = _named(exporter, "chat crewtrace-offline")
    assert [c.status.status_code for c in chats] == [StatusCode.ERROR, StatusCode.UNSET]


def test_agent_reasoning_is_a_span_with_its_plan_before_the_agent_acts(memory):
    _, exporter = memory
    llm = OfflineLLM()
    agent = Agent(role="Planner", goal="Plan", backstory="Careful.", llm=llm, reasoning=True, max_reasoning_attempts=1)
    task = Task(name="job", description="Do the job.", expected_output="A result.", agent=agent)
    Crew(name="reasoned", agents=[agent], tasks=[task]).kickoff()
    if crewai_releases.reasons_inside_agent():
        expected = [
            "invoke_workflow reasoned",
            "  execute_task job",
            "    invoke_agent Planner",
            "      agent_reasoning Planner",
            "        chat crewtrace-offline",
            "      chat crewtrace-offline",
        ]
    else:  # CrewAI plans before it announces the agent
        expected = [
            "invoke_workflow reasoned",
            "  execute_task job",
            "    agent_reasoning Planner",
            "      chat crewtrace-offline",
            "    invoke_agent Planner",
            "      chat crewtrace-offline",
        ]
    assert outline(records_from_sdk(exporter.get_finished_spans())) == expected
    (reasoning,) = _named(exporter, "agent_reasoning Planner")
    assert reasoning.attributes[attributes.REASONING_ATTEMPT] == 1
    assert isinstance(reasoning.attributes[attributes.REASONING_READY], bool)
    assert "Offline answer" in reasoning.attributes[attributes.REASONING_PLAN]


needs_tool_failures = pytest.mark.skipif(
    not crewai_releases.reports_tool_failures(), reason="crewai before 1.15.9 reports no tool failures"
)


@needs_tool_failures
def test_a_tools_final_failure_is_an_event_on_the_agent_span(memory):
    _, exporter = memory
    one_task_crew(OfflineLLM(), tools=[BrokenTool()]).kickoff()
    (agent,) = _named(exporter, "invoke_agent Worker")
    (failure,) = [e for e in agent.events if e.name == attributes.EVENT_TOOL_FAILURE]
    assert failure.attributes[attributes.GEN_AI_TOOL_NAME] == "broken_lookup"
    last_attempt = _named(exporter, "execute_tool broken_lookup")[-1]
    assert failure.timestamp >= last_attempt.end_time


class RefusingTool(BaseTool):
    """A tool that runs but reports that it could not do the work."""

    name: str = "quota_lookup"
    description: str = "Looks things up within a daily quota."

    def _run(self, topic: str) -> object:
        from crewai.tools.tool_failure import ToolFailure  # crewai 1.15.9

        return ToolFailure(message=f"daily quota used up, cannot look up {topic!r}")


@needs_tool_failures
def test_a_tool_that_reports_failure_is_an_error_span_without_an_exception(memory):
    _, exporter = memory
    one_task_crew(OfflineLLM(), tools=[RefusingTool()]).kickoff()
    (tool,) = _named(exporter, "execute_tool quota_lookup")
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes[attributes.ERROR_TYPE] == "tool_reported"
    assert "daily quota used up" in tool.status.description
    assert not [e for e in tool.events if e.name == "exception"]


def test_streaming_marks_the_first_chunk_and_counts_chunks(memory):
    _, exporter = memory
    llm = OfflineLLM(stream=True)
    one_task_crew(llm).kickoff()
    (chat,) = _named(exporter, "chat crewtrace-offline")
    (first,) = [e for e in chat.events if e.name == attributes.EVENT_LLM_FIRST_CHUNK]
    assert chat.start_time <= first.timestamp <= chat.end_time
    assert chat.attributes[attributes.LLM_TIME_TO_FIRST_CHUNK] == (first.timestamp - chat.start_time) / 1e9
    answer = chat.attributes[attributes.GEN_AI_OUTPUT_MESSAGES]
    words = re.findall(r"\S+\s*", llm.answer([{"role": "user", "content": "Current Task: Do the job carefully."}]))
    assert chat.attributes[attributes.LLM_CHUNK_COUNT] == len(words)
    assert "Offline answer" in answer
