"""LLM paths other than a custom BaseLLM: CrewAI's built-in OpenAI provider over real HTTP."""

from __future__ import annotations

from crewai import LLM, Agent, Crew, Task

from crewtrace import attributes as A
from crewtrace.demo_crew import NotebookTool
from crewtrace.summary import records_from_sdk
from tests.helpers import outline
from tests.openai_server import USAGE, OpenAIServer


def test_builtin_openai_provider_spans_and_tokens(memory):
    _, exporter = memory
    with OpenAIServer() as server:
        llm = LLM(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test-not-a-real-key")
        agent = Agent(role="Analyst", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
        task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
        Crew(name="openai-crew", agents=[agent], tasks=[task]).kickoff()
    assert len(server.requests) == 2
    assert outline(records_from_sdk(exporter.get_finished_spans())) == [
        "invoke_workflow openai-crew",
        "  execute_task analyse",
        "    invoke_agent Analyst",
        "      chat gpt-4o-mini",
        "      execute_tool notebook_lookup",
        "      chat gpt-4o-mini",
    ]
    chats = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-4o-mini"]
    for span in chats:
        assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
        assert span.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
        assert span.attributes[A.GEN_AI_USAGE_INPUT_TOKENS] == USAGE["prompt_tokens"]
        assert span.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE["completion_tokens"]
        assert span.attributes[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 64
        assert span.attributes[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
