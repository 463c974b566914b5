"""What differs between the CrewAI releases crewtrace supports (1.10.1 to the newest 1.x), in one place.

Each difference is detected from the installed crewai itself, never from its version string, and names the
release that changed it. Everything is looked up lazily (crewai is an optional dependency) and remembered.
"""

from __future__ import annotations

import inspect
import re
import sys
from functools import cache
from importlib import metadata
from types import SimpleNamespace
from typing import Any

SUPPORTED = ">= 1.10.1, < 2"


def installed_release() -> str:
    try:
        return metadata.version("crewai")
    except metadata.PackageNotFoundError:
        return "not installed"


@cache
def unsupported() -> str | None:
    """Why the installed crewai cannot be traced whole, or None when it can."""
    try:
        from crewai.events.base_events import BaseEvent
    except ImportError:  # the events package moved there in 1.0
        return "it has no crewai.events package"
    fields = getattr(BaseEvent, "model_fields", {})
    if "event_id" not in fields:  # 1.9.0: events carry an id and their parent's
        return "its events carry no event ids"
    if "started_event_id" not in fields:  # 1.10.0: an ending event names the event that started its scope
        return "its ending events do not name their start (started_event_id)"
    return None


@cache
def llm_is_pydantic() -> bool:
    """``BaseLLM`` is a pydantic model (1.13.0); before, it sets its attributes in ``__init__``."""
    from crewai import BaseLLM
    from pydantic import BaseModel

    return issubclass(BaseLLM, BaseModel)


@cache
def usage_on_completed_event() -> bool:
    """``LLMCallCompletedEvent.usage`` carries the call's tokens (1.13.0); before, only the LLM's
    ``_track_token_usage_internal`` sees them."""
    from crewai.events.types.llm_events import LLMCallCompletedEvent

    return "usage" in LLMCallCompletedEvent.model_fields


@cache
def completed_event_arguments() -> frozenset[str]:
    """What ``BaseLLM._emit_call_completed_event`` takes: ``usage`` since 1.13.0, ``finish_reason`` and
    ``response_id`` since 1.14.7."""
    from crewai import BaseLLM

    return frozenset(inspect.signature(BaseLLM._emit_call_completed_event).parameters)


def streams(llm: Any) -> bool:
    """Whether this call of ``llm`` streams: ``BaseLLM._effective_stream()`` (a per-call override, 1.15.2),
    else its ``stream`` field."""
    effective = getattr(llm, "_effective_stream", None)
    return bool(effective() if callable(effective) else getattr(llm, "stream", False))


def declared_fields(llm: Any) -> set[str]:
    """The fields an LLM was given explicitly. Before 1.13.0 ``BaseLLM`` is no pydantic model and stores
    ``provider`` itself (default ``"openai"``): a provider other than that default counts as given."""
    fields = getattr(llm, "model_fields_set", None)
    if fields is not None:
        return set(fields)
    return {"provider"} if getattr(llm, "provider", None) not in (None, "openai") else set()


@cache
def has_akickoff() -> bool:
    """``Crew.akickoff``, the native async kickoff (1.7.0)."""
    from crewai.crew import Crew

    return hasattr(Crew, "akickoff")


def handled_error_class(event: Any) -> type[BaseException] | None:
    """The class of a failure event's exception when the event names none. ``TaskFailedEvent.error_type``
    appeared in 1.15.18; before, CrewAI emits the event while handling the task's exception, so it is the
    exception being handled (when its text is the event's error)."""
    if getattr(event, "type", None) != "task_failed" or "error_type" in type(event).model_fields:
        return None
    handled = sys.exc_info()[1]
    if handled is not None and str(handled) == str(getattr(event, "error", None)):
        return type(handled)
    return None


@cache
def names_guardrails() -> bool:
    """Guardrail events carry the guardrail's name (``guardrail_name``, 1.14.7); before, a guardrail span is
    named after its kind only."""
    from crewai.events.types.llm_guardrail_events import LLMGuardrailStartedEvent

    return "guardrail_name" in LLMGuardrailStartedEvent.model_fields


@cache
def reports_tool_failures() -> bool:
    """CrewAI says when it gives up on a tool (``ToolFailureDetectedEvent``), and a tool may return a
    ``ToolFailure`` (1.15.9)."""
    from crewai.events.types import tool_usage_events

    return hasattr(tool_usage_events, "ToolFailureDetectedEvent")


_FUNCTION_SOURCE = re.compile(r"\s*(?:async\s+)?def\s+(\w+)")


def guardrail_identity(source: Any, event: Any) -> tuple[str, str | None]:
    """(kind, name) of a guardrail_started event: ``guardrail_type`` and ``guardrail_name`` since 1.14.7.

    Before, the event holds only the guardrail as text: an LLM guardrail's description, or a function's
    source code. The description is told apart by the guarded task's own guardrails (the event's source);
    a function's name is read from its ``def`` line (a lambda has none).
    """
    if names_guardrails():
        return str(getattr(event, "guardrail_type", None) or "function"), getattr(event, "guardrail_name", None)
    from crewai.tasks.hallucination_guardrail import HallucinationGuardrail
    from crewai.tasks.llm_guardrail import LLMGuardrail

    text = str(getattr(event, "guardrail", "") or "")
    for guard in _guardrails_of(source):
        if isinstance(guard, (LLMGuardrail, HallucinationGuardrail)) and guard.description.strip() == text:
            return ("hallucination" if isinstance(guard, HallucinationGuardrail) else "llm"), text
    match = _FUNCTION_SOURCE.match(text)
    return "function", match.group(1) if match else None


def _guardrails_of(source: Any) -> list[Any]:
    """A task's (or agent's) guardrails, whichever of CrewAI's fields hold them."""
    found: list[Any] = []
    for name in ("_guardrail", "_guardrails", "guardrail", "guardrails"):
        value = getattr(source, name, None)
        found.extend(value if isinstance(value, (list, tuple)) else [value] if value is not None else [])
    return found


def agent_attempt(source: Any, event: Any) -> tuple[str, str] | None:
    """(agent id, task id) of an agent_execution_started event, to know a retry when one comes.

    Before 1.15.17 CrewAI retries a failed agent (``max_retry_limit``) inside the failed attempt's scope and
    emits no error for that attempt: a start of the same agent on the same task inside that agent's own open
    span is its retry. Since 1.15.17 every failed attempt ends with its own error event first.
    """
    agent = getattr(event, "agent", None) or source
    task = getattr(event, "task", None)
    if agent is None or task is None:
        return None
    return str(getattr(agent, "id", "")), str(getattr(task, "id", ""))


@cache
def reasons_inside_agent() -> bool:
    """Agent reasoning (``Agent(reasoning=True)``) runs inside the agent's execution (1.14.5); before,
    ``Agent.execute_task`` plans before it announces the agent, so the agent_reasoning span precedes the
    invoke_agent span as its sibling under the task."""
    from crewai.agent import core

    return not hasattr(core, "handle_reasoning")


@cache
def anthropic_input_includes_cache() -> bool:
    """CrewAI's native Anthropic provider folds cache reads and writes into the ``input_tokens`` it reports
    (1.15.13); before, it passes on Anthropic's own ``input_tokens``, which leaves both out. Asked of the
    provider itself: its usage reader is given one response whose three counts cannot sum by chance."""
    try:
        from crewai.llms.providers.anthropic.completion import AnthropicCompletion
    except ImportError:  # the anthropic SDK is missing: CrewAI's Anthropic provider cannot run at all
        return False
    usage = SimpleNamespace(
        input_tokens=1, output_tokens=0, cache_read_input_tokens=10, cache_creation_input_tokens=100
    )
    try:
        probe: Any = SimpleNamespace(usage=usage)  # the fields CrewAI's reader looks at, as Anthropic's Message has
        reported = AnthropicCompletion._extract_anthropic_token_usage(probe)
    except Exception:  # noqa: BLE001 - a reader that changed shape: take Anthropic's own meaning
        return False
    return isinstance(reported, dict) and reported.get("input_tokens") == 111
