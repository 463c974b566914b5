"""LLM paths other than a custom BaseLLM, over real HTTP: CrewAI's built-in OpenAI provider and litellm."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from crewai import LLM

from crewtrace import attributes
from crewtrace.report.records import records_from_sdk
from tests.helpers import analyst_crew, outline
from tests.openai_server import USAGE, OpenAIServer
from tests.test_export_wire import APPS

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def test_builtin_openai_provider_spans_and_tokens(memory):
    _, exporter = memory
    with OpenAIServer() as server:
        llm = LLM(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test-not-a-real-key")
        analyst_crew(llm, "openai-crew").kickoff()
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
        assert span.attributes[attributes.GEN_AI_PROVIDER_NAME] == "openai"
        assert span.attributes[attributes.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
        assert span.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] == USAGE["prompt_tokens"]
        assert span.attributes[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE["completion_tokens"]
        assert span.attributes[attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 64
        assert span.attributes[attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12


def test_litellm_path_ends_every_call_with_its_tokens(memory):
    """On litellm's path CrewAI emits no completion event for a reply with tool calls: that span still ends,
    when the response came, with the response's tokens."""
    _, exporter = memory
    with OpenAIServer() as server:
        llm = LLM(model="openai/gpt-4o-mini", is_litellm=True, base_url=server.base_url, api_key="sk-test-not-real")
        assert type(llm).__name__ == "LLM" and llm.is_litellm
        analyst_crew(llm, "litellm-crew").kickoff()
    assert len(server.requests) == 2
    spans = exporter.get_finished_spans()
    assert outline(records_from_sdk(spans)) == [
        "invoke_workflow litellm-crew",
        "  execute_task analyse",
        "    invoke_agent Analyst",
        "      chat openai/gpt-4o-mini",
        "      execute_tool notebook_lookup",
        "      chat openai/gpt-4o-mini",
    ]
    first, second = sorted((s for s in spans if s.name.startswith("chat ")), key=lambda s: s.start_time)
    (tool,) = [s for s in spans if s.name == "execute_tool notebook_lookup"]
    assert first.attributes[attributes.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert first.end_time <= tool.start_time
    for span in (first, second):
        assert attributes.SPAN_INCOMPLETE not in span.attributes
        assert span.attributes[attributes.GEN_AI_PROVIDER_NAME] == "openai"
        assert span.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] == USAGE["prompt_tokens"]
        assert span.attributes[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] == USAGE["completion_tokens"]
        assert span.attributes[attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 64
        assert span.attributes[attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12


@pytest.mark.parametrize("path", ["native", "litellm"])
def test_with_the_openai_sdk_instrumentation_each_call_has_one_llm_span(subprocess_env, path):
    """Natively the SDK instrumentation's span is the LLM span, under the agent, and crewtrace makes no
    second one. litellm talks HTTP itself, so the SDK instrumentation sees nothing and crewtrace's span stays.
    In a fresh process, as an application starts."""
    with OpenAIServer() as server:
        done = subprocess.run(
            [sys.executable, str(APPS / "openai_sdk_instrumented.py"), server.base_url, path],
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    spans = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    chats = [s for s in spans if s["attributes"].get(attributes.GEN_AI_OPERATION_NAME) == "chat"]
    assert len(chats) == len(server.requests) == 2
    scope = "opentelemetry.instrumentation.openai_v2" if path == "native" else "crewtrace"
    assert {s["scope"] for s in chats} == {scope}
    (agent,) = [s for s in spans if s["name"] == "invoke_agent Analyst"]
    assert all(s["parent_id"] == agent["span_id"] for s in chats)
    assert {s["trace_id"] for s in spans} == {agent["trace_id"]}
    assert sum(s["attributes"][attributes.GEN_AI_USAGE_INPUT_TOKENS] for s in chats) == 2 * USAGE["prompt_tokens"]
    # The final answer's "Thought:" goes on the LLM span, or on the agent span when the SDK's span is the LLM's.
    holders = [agent] if path == "native" else chats
    assert any(attributes.EVENT_AGENT_THOUGHT in holder["events"] for holder in holders)
    assert spans[0]["open_spans"] == 0
