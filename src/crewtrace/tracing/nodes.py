"""The tracker's bookkeeping for one span (a node) and one top-level run (a root)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span

from crewtrace.run_context import RunLabels
from crewtrace.tracing.builders.common import SpanError
from crewtrace.usage.tokens import Totals, Usage

if TYPE_CHECKING:
    from crewtrace.tracing.event_table import Unit


@dataclass(slots=True)
class Root:
    """One top-level tree (normally one crew kickoff or flow): what is still open in it."""

    key: str
    open_keys: set[str] = field(default_factory=set)
    keys: list[str] = field(default_factory=list)  # every span and alias of the run, forgotten when it ends
    tasks: list[Any] = field(default_factory=list)  # a crew's tasks, in order (for crewai.task.index)
    failure_type: str | None = None
    labels: RunLabels | None = None  # the crewtrace.context last seen in the run
    label_attributes: dict[str, Any] = field(default_factory=dict)  # and what it puts on a span


class Node:
    """One span, keyed by the event_id of the CrewAI event that started it.

    A plain class whose rarely set fields are class-level defaults: one is made per span, and a dataclass's
    ``__init__`` would assign all twenty of them every time."""

    open_children: int = 0
    end_ns: int | None = None  # set when the end event arrived but the span waits for open children
    error_type: str | None = None
    failed_child: SpanError | None = None  # the last child that ended in error
    attempt: tuple[str, str] | None = None  # an agent span: (agent id, task id); see crewai_releases.agent_attempt
    dims: dict[str, Any] | None = None  # the span's attributes that metrics are split by
    end_attributes: dict[str, Any] | None = None  # from its end event, set on the span as it closes
    # An LLM call's own facts.
    model: str | None = None
    provider: str | None = None
    usage: Usage | None = None
    usage_from_response: bool = False  # read from the provider's response (provider_responses.py), not an event
    chunks: int = 0  # streamed chunks of the answer, and when the first came
    first_chunk_ns: int | None = None
    response_ns: int | None = None  # when a provider response was seen (provider_responses.py)
    totals: Totals | None = None  # any other span: the LLM calls beneath it
    closed: bool = False  # its span has ended; what arrives from beneath later goes further up
    other: Any = None  # an LLM call: the span another instrumentation made for it (other_llm_spans.OtherSpan)
    elsewhere: bool = False  # an LLM call whose span another instrumentation was expected to make
    _context: Context | None = None  # the context with this span current, made once for all its children

    def __init__(
        self,
        key: str,
        unit: Unit,
        span: Span,
        root: Root,
        start_ns: int,
        parent: Node | None = None,
        *,
        attempt: tuple[str, str] | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.key, self.unit, self.span, self.root, self.start_ns, self.parent = key, unit, span, root, start_ns, parent
        self.child_starts: list[int] = []
        if attempt is not None:
            self.attempt = attempt
        if usage is not None:
            self.usage = usage

    def __repr__(self) -> str:
        return f"Node({self.unit} {self.key}, closed={self.closed})"

    def context(self) -> Context:
        """A context in which this node's span is the current span: its children's parent."""
        if self._context is None:
            self._context = trace.set_span_in_context(self.span)
        return self._context

    def receiver(self) -> Node | None:
        """Where this span's totals go when it closes: its nearest ancestor still open (normally the parent;
        a child that outlives its parent's span passes them on to the levels still open)."""
        node = self.parent
        while node is not None and node.closed:
            node = node.parent
        return node

    def outlasting(self, units: frozenset[str] | None = None) -> Node:
        """Where a span goes whose named parent (this node) has ended, or will before it (background work):
        the nearest ancestor still open, of one of ``units`` if given; this node if there is none."""
        node: Node | None = self
        while node is not None and (node.closed or (units is not None and node.unit not in units)):
            node = node.parent
        return node or self

    def recording(self) -> Node:
        """This node, or for an LLM call whose span another instrumentation makes, its parent."""
        if self.span.is_recording() or self.parent is None:
            return self
        return self.parent
