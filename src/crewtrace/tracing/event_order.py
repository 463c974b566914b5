"""What the tracker keeps so that events may come in any order: events parked until the span they name
exists, scopes that have no span of their own (aliases), and bounded memories of both."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context

from crewtrace.tracing import event_table


@dataclass(slots=True)
class Waiting:
    """An event parked until the span it names exists."""

    source: Any
    event: Any
    ctx: Context  # the emitter's context, for a root that has to wait


def remember(store: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    """``store[key] = value``, forgetting the oldest entries beyond ``limit``."""
    store[key] = value
    while len(store) > limit:
        store.popitem(last=False)


class Backlog:
    """Parked events, keyed by the event id they wait for, and aliases: scope id -> the id of its parent."""

    def __init__(self, memory: int) -> None:
        self.memory = memory
        self.aliases: OrderedDict[str, str | None] = OrderedDict()
        self.waiting: OrderedDict[str, list[Waiting]] = OrderedDict()

    def alias(self, key: str, parent_id: str | None) -> None:
        remember(self.aliases, key, parent_id, self.memory)

    def park(self, key: str, item: Waiting) -> list[str]:
        """Park ``item`` until ``key`` exists; returns the keys whose parked events were dropped to stay bounded."""
        self.waiting.setdefault(key, []).append(item)
        self.waiting.move_to_end(key)
        dropped = []
        while len(self.waiting) > self.memory:
            dropped.append(self.waiting.popitem(last=False)[0])
        return dropped

    def released(self, key: str) -> list[Waiting]:
        """The events that waited for ``key``, starts before ends: a span whose end came early must see its
        waiting children open, and wait for them."""
        if not self.waiting:
            return []  # the usual case, live: nothing ever waits
        waiting = self.waiting.pop(key, None) or []
        waiting.sort(key=lambda item: getattr(item.event, "type", None) in event_table.END_EVENTS)
        return waiting

    def parked(self) -> int:
        return sum(len(items) for items in self.waiting.values())
