"""Registers crewtrace on CrewAI's event bus: one handler for every event class the span model needs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from crewtrace import spans as S
from crewtrace.tracker import SpanTracker


def event_classes_by_type() -> dict[str, list[type]]:
    """Every concrete CrewAI event class, grouped by its ``type`` string (the bus dispatches by exact class)."""
    import crewai.events.types as types_pkg
    from crewai.events.base_events import BaseEvent

    found: dict[str, list[type]] = {}
    for info in pkgutil.iter_modules(types_pkg.__path__):
        module = importlib.import_module(f"{types_pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, BaseEvent) or cls is BaseEvent:
                continue
            field = cls.model_fields.get("type")
            etype = getattr(field, "default", None)
            if isinstance(etype, str) and cls not in found.get(etype, []):
                found.setdefault(etype, []).append(cls)
    return found


def scope_starting_types() -> frozenset[str]:
    """Event types that open a scope on CrewAI's bus: children may name any of them as their parent."""
    from crewai.events.event_context import SCOPE_STARTING_EVENTS

    return frozenset(SCOPE_STARTING_EVENTS)


class CrewAIEventListener:
    """Owns crewtrace's handler registrations on ``crewai_event_bus``, so they can all be removed again."""

    def __init__(self, tracker: SpanTracker, bus: Any) -> None:
        self._tracker = tracker
        self._bus = bus
        self._handler = self._on_event
        self._registered: list[type] = []

    def _on_event(self, source: Any, event: Any) -> None:
        self._tracker.handle(source, event)

    def register(self) -> None:
        wanted = set(S.START_EVENTS) | set(S.END_EVENTS) | scope_starting_types()
        for etype, classes in event_classes_by_type().items():
            if etype in wanted:
                for cls in classes:
                    self._bus.on(cls)(self._handler)
                    self._registered.append(cls)

    def unregister(self) -> None:
        for cls in self._registered:
            self._bus.off(cls, self._handler)
        self._registered.clear()

    @property
    def registered_classes(self) -> list[type]:
        return list(self._registered)
