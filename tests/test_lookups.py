"""Memory, knowledge and MCP steps of real crews, offline: an in-process embedder and a stdio MCP server."""

from __future__ import annotations

import pytest
from crewai import Agent, Crew, Task
from crewai.knowledge.source.string_knowledge_source import StringKnowledgeSource
from crewai.mcp import MCPServerStdio
from opentelemetry.trace import SpanKind, StatusCode

from crewtrace import CrewAIInstrumentor, attributes
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import records_from_sdk
from tests import crewai_fixes
from tests.helpers import one_task_crew, outline
from tests.offline_rag import EMBEDDER, mcp_server_command

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

FACTS = "Paris is the capital of France. Berlin is the capital of Germany."


needs_strict_tools = pytest.mark.skipif(
    not crewai_fixes.calls_strict_tools(),
    reason="crewai before 1.13.0 adds a security_context argument an MCP tool's schema rejects: it never calls it",
)


KNOWLEDGE_TREE = [
    "invoke_workflow knowing",
    "  execute_task capital",
    "    knowledge_search",
    "      knowledge_query",
    "        chat crewtrace-offline",
    "    invoke_agent Researcher",
    "      chat crewtrace-offline",
]


def _spans(exporter, name: str) -> list:
    return sorted((s for s in exporter.get_finished_spans() if s.name == name), key=lambda s: s.start_time)


def _knowledge_crew(llm: OfflineLLM) -> Crew:
    agent = Agent(
        role="Researcher",
        goal="Answer",
        backstory="Offline.",
        llm=llm,
        knowledge_sources=[StringKnowledgeSource(content=FACTS)],
        embedder=EMBEDDER,
    )
    task = Task(name="capital", description="What is the capital of France?", expected_output="A city.", agent=agent)
    return Crew(name="knowing", agents=[agent], tasks=[task])


def test_knowledge_search_and_its_query_rewrite_nest_under_the_task(memory):
    _, exporter = memory
    _knowledge_crew(OfflineLLM()).kickoff()
    assert outline(records_from_sdk(exporter.get_finished_spans())) == KNOWLEDGE_TREE
    (search,) = _spans(exporter, "knowledge_search")
    assert "Paris is the capital of France" in search.attributes[attributes.KNOWLEDGE_RESULTS]
    assert search.attributes[attributes.KNOWLEDGE_QUERY]
    (query,) = _spans(exporter, "knowledge_query")
    assert "capital of France" in query.attributes[attributes.KNOWLEDGE_TASK_PROMPT]


def test_a_failed_query_rewrite_leaves_no_span_open_and_the_tree_right(memory):
    """CrewAI emits no end for the search when its query rewrite fails, and then names the search as the
    agent's parent and as the task's start; crewtrace still puts the agent under the task and ends every span."""
    _, exporter = memory
    _knowledge_crew(OfflineLLM(fail_calls=[1])).kickoff()
    assert CrewAIInstrumentor().tracker.open_span_count() == 0
    assert outline(records_from_sdk(exporter.get_finished_spans())) == KNOWLEDGE_TREE
    (search,) = _spans(exporter, "knowledge_search")
    assert search.attributes[attributes.SPAN_INCOMPLETE] is True
    (query,) = _spans(exporter, "knowledge_query")
    assert query.status.status_code is StatusCode.ERROR
    (task,) = _spans(exporter, "execute_task capital")
    assert attributes.SPAN_INCOMPLETE not in task.attributes
    (agent,) = _spans(exporter, "invoke_agent Researcher")
    assert search.end_time <= agent.start_time <= agent.end_time <= task.end_time


@pytest.mark.skipif(
    not crewai_fixes.waits_for_memory_saves(),
    reason="crewai before 1.15.3 ends the crew before its memory saves (before 1.15.0 its memory uses gpt-4o-mini)",
)
def test_memory_recall_before_the_agent_and_the_save_after_it(memory):
    _, exporter = memory
    llm = OfflineLLM()
    agent = Agent(role="Researcher", goal="Answer", backstory="Offline.", llm=llm)
    task = Task(name="capital", description="What is the capital of France?", expected_output="A city.", agent=agent)
    crew = Crew(name="remembering", agents=[agent], tasks=[task], memory=True, embedder=EMBEDDER)
    crew.kickoff()
    crew.kickoff()
    assert CrewAIInstrumentor().tracker.open_span_count() == 0
    spans = exporter.get_finished_spans()
    crews = sorted((s for s in spans if s.name == "invoke_workflow remembering"), key=lambda s: s.start_time)
    assert len(crews) == 2
    second = crews[1].context.trace_id
    in_second = [s for s in spans if s.context.trace_id == second]
    names = {s.name for s in in_second}
    assert {"memory_retrieval", "memory_query", "memory_save"} <= names, names
    by_id = {s.context.span_id: s for s in in_second}
    retrieval = next(s for s in in_second if s.name == "memory_retrieval")
    assert by_id[retrieval.parent.span_id].name == "execute_task capital"
    query = next(s for s in in_second if s.name == "memory_query" and s.parent.span_id == retrieval.context.span_id)
    assert query.attributes[attributes.MEMORY_RESULT_COUNT] >= 1  # the first kickoff's memories are recalled
    # The save runs in CrewAI's background pool after the agent's work, and the crew waits for it: it goes
    # under the crew, linked to the agent that caused it, and no span ends after its parent.
    save = next(s for s in in_second if s.name == "memory_save")
    assert by_id[save.parent.span_id].name == "invoke_workflow remembering"
    assert [by_id[link.context.span_id].name for link in save.links] == ["invoke_agent Researcher"]
    save_calls = [s for s in in_second if s.parent and s.parent.span_id == save.context.span_id]
    assert save_calls and all(s.name.startswith("chat ") for s in save_calls)  # its LLM calls
    for span in in_second:
        if span.parent is not None:
            assert span.end_time <= by_id[span.parent.span_id].end_time, span.name
    # Every LLM call's tokens are counted once, in the crew's totals.
    calls = [s for s in in_second if s.name.startswith("chat ")]
    assert crews[1].attributes[attributes.USAGE_REQUESTS] == len(calls)
    assert crews[1].attributes[attributes.USAGE_INPUT_TOKENS] == sum(
        s.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] for s in calls
    )


def _mcp_crew(fail: bool = False, command: str | None = None) -> Crew:
    cmd, args = mcp_server_command(fail)
    server = MCPServerStdio(command=command or cmd, args=args)
    agent = Agent(role="Geographer", goal="Answer", backstory="Offline.", llm=OfflineLLM(), mcps=[server])
    task = Task(name="capital", description="What is the capital of France?", expected_output="A city.", agent=agent)
    return Crew(name="mcp", agents=[agent], tasks=[task])


@needs_strict_tools
def test_an_mcp_tool_call_nests_under_crewais_tool_span(memory):
    _, exporter = memory
    _mcp_crew().kickoff()
    (call,) = _spans(exporter, "tools/call lookup_capital")
    assert call.kind is SpanKind.CLIENT
    assert call.attributes[attributes.MCP_METHOD_NAME] == "tools/call"
    assert call.attributes[attributes.GEN_AI_TOOL_NAME] == "lookup_capital"
    assert call.attributes[attributes.MCP_TRANSPORT] == "stdio"
    assert call.attributes[attributes.GEN_AI_TOOL_CALL_RESULT] == "Paris"
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    tool = by_id[call.parent.span_id]
    assert tool.name.startswith("execute_tool ")  # CrewAI names it after the server command and a hash
    assert by_id[tool.parent.span_id].name == "invoke_agent Geographer"
    connects = _spans(exporter, "mcp_connect")
    assert connects and all(c.status.status_code is StatusCode.UNSET for c in connects)
    assert CrewAIInstrumentor().tracker.open_span_count() == 0


@needs_strict_tools
def test_a_failing_mcp_tool_is_an_error_on_the_mcp_call(memory):
    _, exporter = memory
    _mcp_crew(fail=True).kickoff()
    (call,) = _spans(exporter, "tools/call lookup_capital")
    assert call.status.status_code is StatusCode.ERROR
    assert call.attributes[attributes.ERROR_TYPE] == "tool_error"


def test_an_unreachable_mcp_server_fails_the_crew_with_a_connect_error_span(memory, tmp_path):
    _, exporter = memory
    # CrewAI's own MCP connection error; before 1.14.4 CrewAI loses it and fails on its own unbound variable.
    error = "no-such-python" if crewai_fixes.mcp_connection_errors_propagate() else "local variable 'tools_list'"
    with pytest.raises(Exception, match=error):
        _mcp_crew(command=str(tmp_path / "no-such-python")).kickoff()
    connect = _spans(exporter, "mcp_connect")[-1]
    assert connect.status.status_code is StatusCode.ERROR
    assert "no-such-python" in connect.status.description  # the connection's error, on every release
    (crew,) = _spans(exporter, "invoke_workflow mcp")
    assert crew.status.status_code is StatusCode.ERROR
    assert connect.parent.span_id == crew.context.span_id


def test_a_scope_crewai_left_open_does_not_swallow_the_next_kickoff(memory):
    """After a failed query rewrite CrewAI's scope stack still holds the search: the next crew names it as
    its parent. That crew must still be a trace of its own, not a child of a finished trace (nor lost)."""
    _, exporter = memory
    _knowledge_crew(OfflineLLM(fail_calls=[1])).kickoff()
    one_task_crew(OfflineLLM(), name="next").kickoff()
    (first,) = _spans(exporter, "invoke_workflow knowing")
    (second,) = _spans(exporter, "invoke_workflow next")
    assert second.parent is None
    assert second.context.trace_id != first.context.trace_id
    assert len([s for s in exporter.get_finished_spans() if s.context.trace_id == second.context.trace_id]) == 4
