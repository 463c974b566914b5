"""Token usage of litellm calls whose completion event CrewAI never emits.

On CrewAI's litellm path an LLM reply that asks for tool calls returns without an ``llm_call_completed``
event, so its tokens would be lost. crewtrace wraps ``litellm.completion`` / ``acompletion`` (once litellm
is imported, if ever) and hands each non-streamed response to a callback while the call's span is current.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, register_post_import_hook, wrap_function_wrapper

logger = logging.getLogger(__name__)

_FUNCTIONS = ("completion", "acompletion")
_on_response: Callable[[Any], None] | None = None


def install(on_response: Callable[[Any], None]) -> None:
    """Send every non-streamed litellm response to ``on_response`` (wraps litellm now or when it is imported)."""
    global _on_response
    _on_response = on_response
    register_post_import_hook(_wrap, "litellm")


def uninstall() -> None:
    """Stop handing responses over and unwrap litellm if it was wrapped."""
    global _on_response
    _on_response = None
    module = sys.modules.get("litellm")
    if module is not None:
        for name in _FUNCTIONS:
            if isinstance(getattr(module, name, None), FunctionWrapper):
                unwrap(module, name)


def _wrap(module: Any) -> None:
    if _on_response is None:
        return
    for name, wrapper in zip(_FUNCTIONS, (_completion, _acompletion), strict=True):
        function = getattr(module, name, None)
        if callable(function) and not isinstance(function, FunctionWrapper):  # not ours yet
            wrap_function_wrapper(module, name, wrapper)


def _hand_over(response: Any, kwargs: dict[str, Any]) -> None:
    callback = _on_response
    if callback is None or kwargs.get("stream"):
        return
    try:
        callback(response)
    except Exception as exc:  # noqa: BLE001 - never reach the caller
        logger.debug("crewtrace: could not read a litellm response: %r", exc)


def _completion(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    response = wrapped(*args, **kwargs)
    _hand_over(response, kwargs)
    return response


async def _acompletion(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    response = await wrapped(*args, **kwargs)
    _hand_over(response, kwargs)
    return response
