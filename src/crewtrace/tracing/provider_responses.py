"""Provider responses, seen as they arrive, for the usage CrewAI's events leave out or get wrong.

- litellm: on CrewAI's litellm path an LLM reply that asks for tool calls returns without an
  ``llm_call_completed`` event, so its tokens would be lost.
- azure-ai-inference: CrewAI's Azure provider reads the cached and reasoning counts as attributes, which the
  SDK's usage model holds only as keys, and copies just three counts from a stream's last update: every
  cached and reasoning token would be lost, and cached input priced as fresh.

crewtrace wraps each function below (once its module is imported, if ever) and hands every non-streamed
response, and every streamed update that carries usage, to a callback while the call's span is current.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, register_post_import_hook, resolve_path, wrap_function_wrapper

logger = logging.getLogger(__name__)

_on_response: Callable[[Any], None] | None = None


def _hand_over(response: Any) -> None:
    callback = _on_response
    if callback is None or response is None:
        return
    try:
        callback(response)
    except Exception as exc:  # noqa: BLE001 - never reach the caller
        logger.debug("crewtrace: could not read a provider response: %r", exc)


def _call(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """A completion call: its response, unless streamed (a stream's usage comes in its updates)."""
    response = wrapped(*args, **kwargs)
    if not kwargs.get("stream"):
        _hand_over(response)
    return response


async def _acall(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    response = await wrapped(*args, **kwargs)
    if not kwargs.get("stream"):
        _hand_over(response)
    return response


def _update(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """A streamed update: handed over when it carries usage (the last one, when usage is asked for)."""
    update = wrapped(*args, **kwargs)
    if getattr(update, "usage", None):
        _hand_over(update)
    return update


async def _aupdate(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    update = await wrapped(*args, **kwargs)
    if getattr(update, "usage", None):
        _hand_over(update)
    return update


# module -> (attribute path, wrapper) of each function tapped in it.
_TAPS: dict[str, tuple[tuple[str, Callable[..., Any]], ...]] = {
    "litellm": (("completion", _call), ("acompletion", _acall)),
    "azure.ai.inference": (("ChatCompletionsClient.complete", _call),),
    "azure.ai.inference.aio": (("ChatCompletionsClient.complete", _acall),),
    "azure.ai.inference.models": (
        ("StreamingChatCompletions.__next__", _update),
        ("AsyncStreamingChatCompletions.__anext__", _aupdate),
    ),
}


def install(on_response: Callable[[Any], None]) -> None:
    """Send every provider response (or streamed update with usage) to ``on_response``."""
    global _on_response
    _on_response = on_response
    for module_name in _TAPS:
        register_post_import_hook(_wrap, module_name)


def uninstall() -> None:
    """Stop handing responses over and unwrap whatever was wrapped."""
    global _on_response
    _on_response = None
    for module_name, taps in _TAPS.items():
        module = sys.modules.get(module_name)
        for path, _ in taps if module is not None else ():
            try:
                parent, attribute, original = resolve_path(module, path)
            except AttributeError:
                continue
            if isinstance(original, FunctionWrapper):
                unwrap(parent, attribute)


def _wrap(module: Any) -> None:
    if _on_response is None:
        return
    for path, wrapper in _TAPS.get(module.__name__, ()):
        try:
            _, _, original = resolve_path(module, path)
        except AttributeError:  # a release without it: nothing to tap
            continue
        if callable(original) and not isinstance(original, FunctionWrapper):  # not ours yet
            wrap_function_wrapper(module, path, wrapper)
