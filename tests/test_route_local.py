"""Local models over real HTTP: Ollama through CrewAI's OpenAI-compatible provider and through litellm's
native Ollama routes. Their counts are exact on every span and roll up on the crew, and they cost 0."""

from __future__ import annotations

from typing import Any

import pytest
from crewai import LLM

from crewtrace import attributes
from tests.helpers import analyst_crew
from tests.ollama_server import OllamaServer
from tests.openai_server import OpenAIServer
from tests.route_checks import FREE, Call, chat_call, check_run

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def ollama_counts(n: int) -> dict[str, int]:
    """Ollama's native counts for the n-th request: prompt_eval_count (the whole prompt) and eval_count."""
    return {"prompt_eval_count": 700 * n + 41, "eval_count": 60 + 13 * n}


def openai_compatible_usage(n: int) -> dict[str, Any]:
    """What Ollama's OpenAI-compatible endpoint reports: the plain three counts, nothing cached, no reasoning."""
    prompt, completion = 700 * n + 41, 60 + 13 * n
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing leaves 127.0.0.1: no OLLAMA_HOST from the machine, and litellm offline (it counts tokens before
    each call and would download a Llama tokenizer from huggingface.co; offline it uses its bundled ones)."""
    for name in ("OLLAMA_HOST", "OLLAMA_API_KEY", "OLLAMA_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITELLM_OFFLINE_MODE", "true")


def test_openai_compatible_provider_for_ollama(memory):
    """``ollama/`` builds CrewAI's OpenAI-compatible provider, which adds /v1 to the host it is given."""
    _, exporter = memory
    with OpenAIServer(usage=openai_compatible_usage) as server:
        llm = LLM(model="ollama/llama3.1", base_url=server.base_url.removesuffix("/v1"))
        assert type(llm).__name__ == "OpenAICompatibleCompletion"
        analyst_crew(llm, "ollama-compatible-crew").kickoff()
    assert server.paths == ["/v1/chat/completions"] * 2
    calls = [chat_call(u) for u in server.usages]
    assert all(c.cache_read is None and c.reasoning is None for c in calls)
    _assert_free(exporter, "ollama-compatible-crew")
    check_run(exporter, calls, crew="ollama-compatible-crew", model="llama3.1", provider="ollama", price=FREE)


@pytest.mark.parametrize(
    ("model", "path"),
    [("ollama/llama3.1", "/api/generate"), ("ollama_chat/llama3.1", "/api/chat")],
)
def test_litellm_native_ollama_api(memory, model, path):
    """``is_litellm=True``: litellm speaks Ollama's own API and maps prompt_eval_count / eval_count."""
    _, exporter = memory
    with OllamaServer(counts=ollama_counts) as server:
        llm = LLM(model=model, is_litellm=True, base_url=server.base_url)
        assert type(llm).__name__ == "LLM" and llm.is_litellm
        analyst_crew(llm, "ollama-native-crew").kickoff()
    assert server.paths == [path] * 2
    calls = [Call(u["prompt_eval_count"], u["eval_count"]) for u in server.usages]
    _assert_free(exporter, "ollama-native-crew")
    # gen_ai.provider.name is the model's provider/ prefix, litellm's name for each route (docs/span-model.md).
    provider = model.split("/", 1)[0]
    check_run(exporter, calls, crew="ollama-native-crew", model=model, provider=provider, price=FREE)


def _assert_free(exporter: Any, crew: str) -> None:
    """Every call and the crew cost exactly 0: a local model is priced, at nothing (not left unpriced)."""
    spans = exporter.get_finished_spans()
    costs = [s.attributes[attributes.LLM_COST_USD] for s in spans if s.name.startswith("chat ")]
    (root,) = [s for s in spans if s.name == f"invoke_workflow {crew}"]
    assert costs == [0.0, 0.0]
    assert root.attributes[attributes.USAGE_COST_USD] == 0.0
