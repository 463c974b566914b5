"""Whether another instrumentation already makes the GenAI span of an LLM's calls.

When the SDK a CrewAI LLM calls through (openai, anthropic, google-genai, botocore, litellm) is instrumented
by its own GenAI instrumentation, that instrumentation's span is the LLM span: crewtrace then makes no
``chat`` span of its own, so a call never shows twice and its tokens are never counted twice.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

# SDK -> (module, class) of the instrumentations that make a GenAI span for each call through it. Only
# modules already imported are looked at: an instrumentation that was never imported cannot be on.
_INSTRUMENTATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "openai": (
        ("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
        ("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
        ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
    ),
    "anthropic": (
        ("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
        ("openinference.instrumentation.anthropic", "AnthropicInstrumentor"),
    ),
    "google-genai": (
        ("opentelemetry.instrumentation.google_genai", "GoogleGenAiSdkInstrumentor"),
        ("openinference.instrumentation.google_genai", "GoogleGenAIInstrumentor"),
    ),
    "botocore": (
        ("opentelemetry.instrumentation.botocore", "BotocoreInstrumentor"),
        ("openinference.instrumentation.bedrock", "BedrockInstrumentor"),
    ),
    "litellm": (
        ("openinference.instrumentation.litellm", "LiteLLMInstrumentor"),
        ("opentelemetry.instrumentation.litellm", "LiteLLMInstrumentor"),
    ),
}

# CrewAI's native provider packages -> the SDK they call.
_NATIVE_SDKS = {
    "crewai.llms.providers.openai": "openai",
    "crewai.llms.providers.openai_compatible": "openai",
    "crewai.llms.providers.anthropic": "anthropic",
    "crewai.llms.providers.gemini": "google-genai",
    "crewai.llms.providers.bedrock": "botocore",
}


def sdks_of(llm: Any) -> tuple[str, ...]:
    """The SDKs a CrewAI LLM's calls go through, as far as crewtrace knows them (none for a custom BaseLLM)."""
    module = type(llm).__module__
    if module == "crewai.llm":
        # It talks HTTP itself when on litellm: the openai SDK's instrumentation never sees its calls.
        return ("litellm",) if getattr(llm, "is_litellm", False) else ()
    return _native_sdks(module)


@functools.lru_cache(maxsize=256)
def _native_sdks(module: str) -> tuple[str, ...]:
    """The SDK of a CrewAI native provider's module (asked on every LLM call, so remembered)."""
    for package, sdk in _NATIVE_SDKS.items():
        if module.startswith(package):
            return (sdk,)
    return ()


def instrumented(sdk: str) -> bool:
    """Whether a GenAI instrumentation of ``sdk`` is on in this process."""
    for module_name, class_name in _INSTRUMENTATIONS.get(sdk, ()):
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is not None and getattr(cls(), "is_instrumented_by_opentelemetry", False):
            return True
    return False


def span_made_elsewhere(llm: Any) -> bool:
    """Whether another instrumentation makes the GenAI span of this LLM's calls."""
    return any(instrumented(sdk) for sdk in sdks_of(llm))
