"""Token usage on crewai releases before 1.13.0, whose ``llm_call_completed`` event carries no usage.

Every CrewAI LLM (native providers, litellm, custom ``BaseLLM``) hands its call's usage to
``BaseLLM._track_token_usage_internal`` in the call's own thread, while crewtrace has the call's span
current. crewtrace wraps that method and passes the usage on; on later releases it is not wrapped at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, wrap_function_wrapper

logger = logging.getLogger(__name__)

_on_usage: Callable[[Any], None] | None = None


class TrackedUsage:
    """A usage dict in the shape of a provider response (``.usage``), as the tracker reads responses."""

    def __init__(self, usage: Any) -> None:
        self.usage = usage


def install(on_usage: Callable[[Any], None]) -> None:
    """Send every usage an LLM tracks to ``on_usage``, as a :class:`TrackedUsage`."""
    global _on_usage
    from crewai.llms.base_llm import BaseLLM

    _on_usage = on_usage
    if not isinstance(BaseLLM.__dict__.get("_track_token_usage_internal"), FunctionWrapper):
        wrap_function_wrapper("crewai.llms.base_llm", "BaseLLM._track_token_usage_internal", _tracked)


def uninstall() -> None:
    global _on_usage
    _on_usage = None
    try:
        from crewai.llms.base_llm import BaseLLM
    except ImportError:
        return
    if isinstance(BaseLLM.__dict__.get("_track_token_usage_internal"), FunctionWrapper):
        unwrap(BaseLLM, "_track_token_usage_internal")


def _tracked(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    callback = _on_usage
    usage = args[0] if args else kwargs.get("usage_data", kwargs.get("usage"))
    if callback is not None and usage is not None:
        try:
            callback(TrackedUsage(usage))
        except Exception as exc:  # noqa: BLE001 - never reach the caller
            logger.debug("crewtrace: could not read tracked usage: %r", exc)
    return result
