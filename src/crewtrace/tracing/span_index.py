"""Where the tracker finds a span by the event id that started it: the open spans, the ended ones it still
remembers (a bounded number), the runs in progress, and the events parked until a span they name exists."""

from __future__ import annotations

from collections import OrderedDict

from crewtrace.tracing.endings import MAX_HOPS
from crewtrace.tracing.event_order import Backlog
from crewtrace.tracing.nodes import Node, Root


class SpanIndex:
    """The tracker's spans by key (a start event's ``event_id``). Not thread-safe: the tracker holds its lock."""

    def __init__(self, memory: int, live: bool) -> None:
        self.open: dict[str, Node] = {}
        self.closed: OrderedDict[str, Node] = OrderedDict()
        self.backlog = Backlog(memory)
        self.roots: dict[str, Root] = {}
        self._memory = memory
        self._live = live

    def find(self, key: str) -> Node | None:
        """The span of ``key``, open or ended (if still remembered)."""
        return self.open.get(key) or self.closed.get(key)

    def resolve(self, parent_id: str | None) -> tuple[Node | None, str | None]:
        """(parent node, None) when known; (None, missing id) when the caller must wait; (None, None) for a root.
        Scopes without a span of their own (aliases) pass their children on to their own parent."""
        node = self.open.get(parent_id) if parent_id is not None else None
        if node is not None:
            return node, None  # the usual case: the parent's span is open
        aliases = self.backlog.aliases
        for _ in range(MAX_HOPS):
            if parent_id is None:
                return None, None
            node = self.find(parent_id)
            if node is not None:
                return node, None
            if parent_id not in aliases:
                return None, parent_id
            parent_id = aliases[parent_id]
        return None, None

    def owner(self, named: Node, unit: str) -> tuple[Node | None, bool]:
        """The open span an end event closes, and whether CrewAI's scope stack slipped to find it: the one it
        names, or (a scope whose end was never emitted) the nearest open ancestor of the end event's unit."""
        if named.unit == unit:
            return (None if named.closed else named), False
        node: Node | None = named.parent
        for _ in range(MAX_HOPS):
            if node is None:
                break
            if node.unit == unit and not node.closed:
                return node, True
            node = node.parent
        return None, False

    def opened(self, node: Node) -> None:
        self.open[node.key] = node
        node.root.open_keys.add(node.key)
        node.root.keys.append(node.key)

    def ended(self, node: Node) -> bool:
        """Move an ended span from open to remembered (forgetting the oldest past the memory); True when it was
        its run's root, and the run is over (live, its spans and scopes are forgotten: nothing can name them)."""
        self.open.pop(node.key, None)
        self.closed[node.key] = node
        if len(self.closed) > self._memory:  # one in, at most one out
            self.closed.popitem(last=False)
        root = node.root
        root.open_keys.discard(node.key)
        if node.key != root.key:
            return False
        self.roots.pop(root.key, None)
        if self._live:
            aliases = self.backlog.aliases
            for key in root.keys:
                self.closed.pop(key, None)
                aliases.pop(key, None)
        return True

    def retained(self) -> dict[str, int]:
        """How much is held: open spans, ended spans and scopes still remembered, parked events."""
        return {
            "open": len(self.open),
            "closed": len(self.closed),
            "aliases": len(self.backlog.aliases),
            "waiting": self.backlog.parked(),
        }
