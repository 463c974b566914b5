"""Hooks crewtrace into CrewAI's event bus: every event is handled in the thread that emits it.

Handling at emission, rather than on the bus's handler thread pool, means a span exists as soon as its
start event has been emitted, so the LLM or tool span can be made the current OpenTelemetry span in the
very thread that runs the call: spans made by the tool's own code or by other instrumentations nest
under it. The tracker still copes with any order of events.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap
from wrapt import wrap_function_wrapper

from crewtrace.tracing import event_table
from crewtrace.tracing.tracker import SpanTracker

logger = logging.getLogger(__name__)

# Spans made current in the emitting thread between their start and end events.
_CURRENT_UNITS = frozenset({event_table.LLM, event_table.TOOL})


def scope_starting_types() -> frozenset[str]:
    """Event types that open a scope on CrewAI's bus: children may name any of them as their parent."""
    from crewai.events.event_context import SCOPE_STARTING_EVENTS

    return frozenset(SCOPE_STARTING_EVENTS)


# Per context (thread or asyncio task): the spans crewtrace made current, innermost last, each as (key, unit,
# the token that restores the context). A context variable, not a thread-local, so that coroutines
# interleaving on one event loop each see only their own calls.
_made_current: ContextVar[tuple[tuple[str, str, object], ...]] = ContextVar("crewtrace_made_current", default=())


class CrewAIEventHook:
    """Wraps ``CrewAIEventsBus.emit`` so each emitted event reaches the tracker synchronously."""

    def __init__(self, tracker: SpanTracker) -> None:
        self._tracker = tracker
        self._wanted = (
            frozenset(event_table.START_EVENTS)
            | frozenset(event_table.END_EVENTS)
            | frozenset(event_table.MARK_EVENTS)
            | {event_table.CHUNK_EVENT}
            | scope_starting_types()
        )
        self._installed = False

    def register(self) -> None:
        wrap_function_wrapper("crewai.events.event_bus", "CrewAIEventsBus.emit", self._emit)
        self._installed = True

    def unregister(self) -> None:
        if self._installed:
            from crewai.events.event_bus import CrewAIEventsBus

            unwrap(CrewAIEventsBus, "emit")
            self._installed = False

    def _emit(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)  # stamps event_id, parent_event_id, started_event_id
        try:
            # CrewAI calls emit(source, event); anything else is read by name.
            source, event = args if len(args) == 2 and not kwargs else _source_and_event(args, kwargs)
            # Inside OpenTelemetry's suppress_instrumentation() nothing is recorded, as in contrib's instrumentations.
            if getattr(event, "type", None) in self._wanted and is_instrumentation_enabled():
                self.on_event(source, event)
        except Exception as exc:  # noqa: BLE001 - tracing must never break the emitting crew
            logger.debug("crewtrace: event hook failed: %r", exc)
        return result

    def on_event(self, source: Any, event: Any) -> None:
        """Feed one event to the tracker; make LLM and tool spans current in this thread while they run."""
        etype = event.type
        if etype in event_table.END_EVENTS and _made_current.get():
            self._restore(getattr(event, "started_event_id", None))
        span = self._tracker.handle(source, event)
        if span is not None:
            unit = event_table.START_EVENTS[etype]
            if unit in _CURRENT_UNITS:
                stack = _made_current.get()
                if stack and stack[-1][1] == event_table.LLM:  # a call with no end event is over once anything starts
                    stack = _popped_llm_calls(stack)
                token = otel_context.attach(trace.set_span_in_context(span))
                _made_current.set((*stack, (event.event_id, unit, token)))

    def on_llm_response(self, response: Any) -> None:
        """A provider response seen while an LLM call's span is current (see provider_responses.py)."""
        key = self.current_llm_call()
        if key is not None:
            self._tracker.record_response(key, response)

    def current_llm_call(self) -> str | None:
        """The key of the LLM call running in this context, if crewtrace made its span current."""
        stack = _made_current.get()
        if stack and stack[-1][1] == event_table.LLM:
            return stack[-1][0]
        return None

    @staticmethod
    def _restore(key: str | None) -> None:
        current = _made_current.get()
        if current[-1][0] == key:  # the usual case: the call that ends is the innermost
            _detach(current[-1][2])
            _made_current.set(current[:-1])
            return
        stack = list(current)
        if key is None or all(entry[0] != key for entry in stack):
            return
        while stack:
            k, _, token = stack.pop()
            _detach(token)
            if k == key:
                break
        _made_current.set(tuple(stack))


def _popped_llm_calls(stack: tuple[tuple[str, str, object], ...]) -> tuple[tuple[str, str, object], ...]:
    """``stack`` without the LLM calls on its top, their contexts restored (the caller sets the new stack)."""
    entries = list(stack)
    while entries and entries[-1][1] == event_table.LLM:
        _detach(entries.pop()[2])
    return tuple(entries)


def _detach(token: Any) -> None:
    try:
        otel_context.detach(token)
    except Exception:  # noqa: BLE001 - a token from another context: nothing of ours to restore here
        logger.debug("crewtrace: could not restore the context of a finished span")


def _source_and_event(args: Any, kwargs: Any) -> tuple[Any, Any]:
    source = args[0] if args else kwargs.get("source")
    event = args[1] if len(args) > 1 else kwargs.get("event")
    return source, event
