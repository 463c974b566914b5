"""Failures: failing tools and LLM calls show as ERROR spans; faults inside crewtrace never reach the crew."""

from __future__ import annotations

import logging

import pytest
from crewai import Agent, Crew, Task
from opentelemetry.trace import StatusCode

from crewtrace import CrewAIInstrumentor, attributes
from crewtrace.offline_llm import OfflineLLM, OfflineLLMError
from crewtrace.tracing.content import ContentPolicy
from tests.helpers import BrokenTool, one_task_crew

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def _exception_events(span):
    return [e for e in span.events if e.name == "exception"]


def test_each_failed_tool_attempt_is_its_own_error_span(memory):
    _, exporter = memory
    result = one_task_crew(OfflineLLM(), tools=[BrokenTool()]).kickoff()
    assert result.raw.startswith("Offline answer")  # the tool error became an observation; the task went on
    tools = sorted(
        (s for s in exporter.get_finished_spans() if s.name == "execute_tool broken_lookup"), key=lambda s: s.start_time
    )
    assert [s.attributes[attributes.TOOL_ATTEMPT] for s in tools] == [1, 2, 3]
    for span in tools:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes[attributes.ERROR_TYPE] == "ConnectionError"
        (event,) = _exception_events(span)
        assert event.attributes[attributes.EXCEPTION_TYPE] == "ConnectionError"
        assert "backend unreachable" in event.attributes[attributes.EXCEPTION_MESSAGE]
    task = next(s for s in exporter.get_finished_spans() if s.name == "execute_task job")
    assert task.status.status_code is StatusCode.UNSET
    parents = {s.parent.span_id for s in tools}
    agent = next(s for s in exporter.get_finished_spans() if s.name == "invoke_agent Worker")
    assert parents == {agent.context.span_id}


def _failing_crew() -> Crew:
    llm = OfflineLLM(fail_calls=[1])
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm, max_retry_limit=0)
    task = Task(name="job", description="Do the job.", expected_output="A result.", agent=agent)
    return Crew(name="failing", agents=[agent], tasks=[task])


def test_failing_llm_marks_llm_task_and_crew_as_errors(memory):
    _, exporter = memory
    with pytest.raises(OfflineLLMError):
        _failing_crew().kickoff()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert CrewAIInstrumentor().tracker.open_span_count() == 0
    chat = spans["chat crewtrace-offline"]
    assert chat.status.status_code is StatusCode.ERROR
    assert (
        chat.attributes[attributes.ERROR_TYPE] == attributes.ERROR_TYPE_OTHER
    )  # CrewAI's llm_call_failed carries only a message
    (event,) = _exception_events(chat)
    assert "failed on purpose" in event.attributes[attributes.EXCEPTION_MESSAGE]
    assert attributes.EXCEPTION_TYPE not in event.attributes  # unknown: no made-up exception.type
    for name in ("execute_task job", "invoke_workflow failing"):
        span = spans[name]
        assert span.status.status_code is StatusCode.ERROR, name
        assert span.attributes[attributes.ERROR_TYPE] == "crewtrace.offline_llm.OfflineLLMError", name
        assert _exception_events(span), name
    agent = spans["invoke_agent Worker"]
    assert agent.status.status_code is StatusCode.ERROR
    assert agent.parent.span_id == spans["execute_task job"].context.span_id


def test_failing_llm_raises_the_same_error_with_and_without_crewtrace(memory):
    with pytest.raises(OfflineLLMError) as traced:
        _failing_crew().kickoff()
    CrewAIInstrumentor().uninstrument()
    with pytest.raises(OfflineLLMError) as plain:
        _failing_crew().kickoff()
    assert str(traced.value) == str(plain.value)


class ExplodingPolicy(ContentPolicy):
    """A content policy that fails on every call: a stand-in for any bug inside crewtrace."""

    def text(self, value):
        raise RuntimeError("bug inside crewtrace")


def test_a_fault_inside_crewtrace_never_reaches_the_crew(caplog):
    from opentelemetry.sdk.trace import TracerProvider

    plain = one_task_crew(OfflineLLM()).kickoff().raw
    CrewAIInstrumentor().instrument(tracer_provider=TracerProvider(), content_policy=ExplodingPolicy())
    with caplog.at_level(logging.WARNING, logger="crewtrace"):
        traced = one_task_crew(OfflineLLM()).kickoff().raw
        one_task_crew(OfflineLLM()).kickoff()
    assert traced == plain
    faults = [r for r in caplog.records if "bug inside crewtrace" in r.getMessage()]
    assert len(faults) == 1  # logged once, not once per event
