"""Builds the span tree from CrewAI events, in whatever order they are handed over.

The listener feeds events in emission order (``live``): a span ends as soon as its end event and those
of its children are in. Not live, the tracker takes events in any order (a replay, or a delivery from
CrewAI's handler thread pool) and ends spans in :meth:`SpanTracker.finish`, once every event is in.

Every span is keyed by the ``event_id`` of its start event. A start event waits until the span of its
``parent_event_id`` exists; an end event waits until its ``started_event_id`` span exists. Scopes that
have no span of their own (the agent executor's inner flow, memory queries, …) pass their children on
to their own parent. Span times come from the events' timestamps, never from when a handler ran, so
the tree and its timings are the same for every delivery order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

from crewtrace import attributes, crewai_releases, run_context
from crewtrace.tracing import event_table
from crewtrace.tracing.builders import llm as llm_builders
from crewtrace.tracing.builders.common import SpanError, SpanStart
from crewtrace.tracing.content import ContentPolicy
from crewtrace.tracing.endings import depth, fail, read_end, record_error, stale_end, timestamp_ns
from crewtrace.tracing.event_order import Waiting
from crewtrace.tracing.metrics import CrewMetrics
from crewtrace.tracing.nodes import Node, Root
from crewtrace.tracing.other_instrumentations import span_made_elsewhere
from crewtrace.tracing.other_llm_spans import OtherLLMSpans, StandInSpan
from crewtrace.tracing.rollups import Accounting, reported
from crewtrace.tracing.span_index import SpanIndex
from crewtrace.usage.pricing import PriceTable

logger = logging.getLogger(__name__)

_MAX_NOTICES = 256  # distinct warnings one tracker logs at most
# The keys of the traces begun during the innermost kickoff in this context (see SpanTracker.run_scope).
_run_roots: ContextVar[list[str] | None] = ContextVar("crewtrace_run_roots", default=None)
_START, _END, _MARK = event_table.START, event_table.END, event_table.MARK


class SpanTracker:
    """Turns CrewAI events into spans. Thread-safe; :meth:`handle` never raises."""

    def __init__(
        self,
        tracer: trace.Tracer,
        policy: ContentPolicy | None = None,
        prices: PriceTable | None = None,
        metrics: CrewMetrics | None = None,
        transparent_types: frozenset[str] = frozenset(),
        memory: int = 65_536,
        live: bool = False,
        other_spans: Callable[[], OtherLLMSpans | None] | None = None,
    ) -> None:
        self._tracer = tracer
        self._find_other_spans = other_spans  # asked once, at the first call another instrumentation spans
        self.other_spans: OtherLLMSpans | None = None
        self._policy = policy or ContentPolicy()
        self._accounts = Accounting(prices, metrics)
        self._transparent = transparent_types - set(event_table.START_EVENTS)
        self._live = live
        self._lock = threading.RLock()
        self._spans = SpanIndex(memory, live)
        self._logged: set[str] = set()

    # ----------------------------------------------------------------- public

    def handle(self, source: Any, event: Any) -> Span | None:
        """Feed one CrewAI event; returns the span it started, if it started one. Errors are logged once per
        kind and swallowed: tracing never breaks a crew."""
        try:
            with self._lock:
                return self._dispatch(source, event, None)
        except Exception as exc:  # noqa: BLE001 - must never reach the crew
            self._fault(exc, "handle a CrewAI event")
            return None

    def settle(self, root_key: str | None) -> None:
        """Close whatever is still open under a finished run, so no span outlives ``kickoff()``.

        A span whose end event never came (an LLM call on litellm's tool-call path, an interrupted tool)
        ends when its next sibling started, else when its parent ended; it is marked incomplete.
        """
        if not root_key:
            return
        try:
            with self._lock:
                self._settle(root_key)
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "close a run's spans")

    def finish(self) -> None:
        """End every span still open, at its own end time where its end event came (for replays)."""
        with self._lock:
            for key in list(self._spans.roots):
                self.settle(key)

    def _settle(self, root_key: str) -> None:
        root = self._spans.roots.get(root_key)
        if root is None:
            return
        opened = self._spans.open
        nodes = [opened[k] for k in root.open_keys if k in opened]
        now = time.time_ns()
        # Deepest first, so that every parent is closed after its children.
        for node in sorted(nodes, key=depth, reverse=True):
            if node.key not in opened:
                continue
            if node.end_ns is None and node.response_ns is not None:
                node.end_ns = node.response_ns  # no end event, but the response was seen: it ended then
            elif node.end_ns is None:
                node.span.set_attribute(attributes.SPAN_INCOMPLETE, True)
                node.end_ns = stale_end(node, now)
            self._close(node, node.end_ns)

    @contextmanager
    def run_scope(self) -> Iterator[None]:
        """Around one kickoff: on exit, settle every trace begun inside it (in its thread or in the threads and
        tasks it spawned), so that not even a run whose root start or end event was lost leaves a span open."""
        token = _run_roots.set([])
        try:
            yield
        finally:
            roots = _run_roots.get() or []
            _run_roots.reset(token)
            for key in roots:
                self.settle(key)

    def record_response(self, key: str, response: Any) -> None:
        """Put what a provider response says (tokens, id) on the open LLM span ``key``; never raises."""
        try:
            with self._lock:
                node = self._spans.open.get(key)
                if node is not None and node.unit == event_table.LLM:
                    node.span.set_attributes(llm_builders.llm_response(response))
                    node.response_ns = time.time_ns()
                    extra = getattr(response, "model_extra", None) or {}
                    usage = reported(getattr(response, "usage", None) or extra.get("usage"))
                    if usage is not None:  # the provider's own count: it wins over the end event's
                        node.usage, node.usage_from_response = usage, True
        except Exception as exc:  # noqa: BLE001
            self._fault(exc, "read an LLM response")

    def retained(self) -> dict[str, int]:
        """How much the tracker holds: open spans, ended spans and scopes it still remembers, parked events."""
        with self._lock:
            return self._spans.retained()

    def open_span_count(self) -> int:
        """How many spans are started and not yet ended (for tests and diagnostics)."""
        with self._lock:
            return len(self._spans.open)

    # --------------------------------------------------------------- dispatch

    def _dispatch(self, source: Any, event: Any, ctx: Context | None) -> Span | None:
        """Route one event; ``ctx`` is the emitter's context, read only when a root span needs it."""
        etype = str(getattr(event, "type", None))
        if not getattr(event, "event_id", None):
            self._log_once(f"noid:{etype}", "crewtrace: ignored a CrewAI %s event without an event_id", etype)
            return None
        route = event_table.ROUTES.get(etype)
        if etype in event_table.FLOW_EVENTS and event_table.is_internal(source, event):
            if route == _START or etype in self._transparent:
                self._alias(event)
            return None  # an internal scope's end: its span never existed
        if route == _START:
            return self._start(source, event, ctx)
        if route == _END:
            self._end(source, event, ctx)
        elif route == _MARK:
            self._mark(source, event, ctx)
        elif etype in self._transparent:
            self._alias(event)
        return None

    def _alias(self, event: Any) -> None:
        key = event.event_id
        self._spans.backlog.alias(key, event.parent_event_id)
        if self._live:
            node, _ = self._spans.resolve(event.parent_event_id)
            if node is not None:
                node.root.keys.append(key)
        if self._spans.backlog.waiting:
            self._release(key)

    def _start(self, source: Any, event: Any, ctx: Context | None) -> Span | None:
        key = event.event_id
        spans = self._spans
        if key in spans.open or key in spans.closed:
            return None
        parent, missing = spans.resolve(event.parent_event_id)
        if self._live and (missing is not None or (parent is not None and parent.root.key not in spans.roots)):
            # In emission order a parent is never late: this one is a scope CrewAI left on its stack after an
            # earlier run (a step whose end was never emitted). Start a new trace rather than wait or nest in it.
            parent, missing = None, None
        if missing is not None:
            self._wait(missing, source, event, ctx)
            return None
        etype = event.type
        unit = event_table.START_EVENTS[etype]
        while (
            parent is not None and parent.unit in event_table.LOOKUP_UNITS and unit not in event_table.LOOKUP_CHILDREN
        ):
            parent = parent.parent  # a lookup whose end CrewAI never emitted is still named as the scope
        attempt = None
        if unit == event_table.AGENT:
            attempt = crewai_releases.agent_attempt(source, event)
            if attempt is not None and parent is not None and parent.attempt == attempt and parent.key in spans.open:
                self._end_retried(parent, timestamp_ns(event))
                parent = parent.parent
        cause = None
        background = etype in event_table.BACKGROUND_STARTS
        if parent is not None and (parent.closed or background):
            cause, parent = parent, parent.outlasting(event_table.OUTLASTING_UNITS if background else None)
        if parent is None:
            root = Root(key)
            spans.roots[key] = root
            run_roots = _run_roots.get()
            if run_roots is not None:
                run_roots.append(key)
            # The emitter's context: the span current where kickoff() was called.
            parent_ctx = ctx if ctx is not None else otel_context.get_current()
            if unit == event_table.CREW:
                root.tasks = list(getattr(source, "tasks", None) or ())
        else:
            root = parent.root
            parent_ctx = parent.context()
        try:
            task_index = self._task_index(root, event) if unit == event_table.TASK else None
            spec = self._labelled(event_table.start_of(unit, source, event, self._policy, task_index), root)
        except Exception as exc:  # noqa: BLE001 - a span with less detail beats a hole in the tree
            self._fault(exc, f"describe a {unit} span")
            spec = SpanStart(unit, SpanKind.INTERNAL, {})
        start_ns = timestamp_ns(event)
        if unit == event_table.LLM and parent is not None and span_made_elsewhere(source):
            # The SDK's own instrumentation makes this call's span: stand in with the parent's context, so
            # that span is the parent's child; crewtrace makes its own only if none was made (_close).
            if self._find_other_spans is not None:
                self.other_spans, self._find_other_spans = self._find_other_spans(), None
            span: Span = StandInSpan(parent.span.get_span_context(), spec.name, spec.kind, spec.attributes)
        else:
            span = self._tracer.start_span(
                spec.name,
                context=parent_ctx,
                kind=spec.kind,
                attributes=spec.attributes,
                links=[Link(cause.span.get_span_context())] if cause is not None else None,
                start_time=start_ns,
            )
        node = Node(key, unit, span, root, start_ns, parent, attempt=attempt)
        if isinstance(span, StandInSpan):
            node.elsewhere = True
        self._accounts.started(node, spec.attributes)
        if parent is not None:
            parent.child_starts.append(start_ns)
            if not parent.closed:
                parent.open_children += 1
        spans.opened(node)
        if spans.backlog.waiting:
            self._release(key)
        return span

    def _labelled(self, spec: SpanStart, root: Root) -> SpanStart:
        """The span with the labels of the crewtrace.context current where its event was emitted (worked out
        once per run while they stay the same)."""
        labels = run_context.current()
        if labels is None:
            return spec
        if labels is not root.labels:
            root.labels, root.label_attributes = labels, labels.span_attributes(self._policy)
        return SpanStart(spec.name, spec.kind, {**spec.attributes, **root.label_attributes})

    @staticmethod
    def _task_index(root: Root, event: Any) -> int | None:
        """The task's 1-based position in its crew: found by identity, else (a copied task) by id."""
        task = getattr(event, "task", None)
        for index, known in enumerate(root.tasks, 1):
            if known is task:
                return index
        task_id = str(getattr(task, "id", "") or getattr(event, "task_id", "") or "")
        for index, known in enumerate(root.tasks, 1):
            if str(getattr(known, "id", "")) == task_id:
                return index
        return None

    def _end(self, source: Any, event: Any, ctx: Context | None) -> None:
        key = getattr(event, "started_event_id", None)
        etype = event.type
        if key is None:
            self._log_once(f"nostart:{etype}", "crewtrace: %s event without started_event_id", etype)
            return
        unit = event_table.END_EVENTS[etype]
        named = self._spans.find(key)
        if named is None:
            if self._live:  # in emission order the start came first, or never will
                self._log_once(f"nostart:{etype}", "crewtrace: %s event whose start was never seen", etype)
            else:
                self._wait(key, source, event, ctx)
            return
        node, slipped = self._spans.owner(named, unit)
        if slipped:
            self._log_once(f"slip:{named.unit}", "crewtrace: a CrewAI %s step never ended", named.unit)
        if node is None:
            return  # a repeated end event: its span has ended already
        end_ns = timestamp_ns(event)
        try:
            error = read_end(node, unit, event, end_ns, self._policy)
        except Exception as exc:  # noqa: BLE001 - the span still ends, with what could be read
            self._fault(exc, f"read a {unit}'s end")
            error = None
        if error is not None:
            fail(node, unit, error, end_ns)
        node.end_ns = end_ns
        if not self._live:
            return  # a replay in any order: spans end in finish(), once every event is in (and counted)
        if node.key == node.root.key:
            self._settle(node.key)  # events arrive in emission order: the run is over
        elif node.open_children == 0:
            self._close(node, end_ns)
        # else: the span ends once its last open child has

    def _end_retried(self, node: Node, at_ns: int) -> None:
        """A failed agent attempt CrewAI retries inside itself (before 1.15.17): it ends, in error, where its
        retry starts, and the retry becomes its sibling, as on later releases."""
        error = node.failed_child or SpanError(attributes.ERROR_TYPE_OTHER, "retried by CrewAI")
        record_error(node.span, error, at_ns)
        node.error_type, node.end_ns = error.error_type, at_ns
        if node.open_children == 0:
            self._close(node, at_ns)

    def _mark(self, source: Any, event: Any, ctx: Context | None) -> None:
        """A single event inside a span: a span event on the span of its scope (or a streamed chunk count)."""
        node, missing = self._spans.resolve(getattr(event, "parent_event_id", None))
        if missing is not None and not self._live:
            self._wait(missing, source, event, ctx)
            return
        if node is None or node.closed:
            return  # outside any run, or its span already ended: nothing to mark
        at_ns = timestamp_ns(event)
        if event.type != event_table.CHUNK_EVENT:
            name, attrs = event_table.mark_of(event, self._policy)
            node.span.add_event(name, attrs, timestamp=at_ns)
        elif node.unit == event_table.LLM:
            node.chunks += 1
            node.first_chunk_ns = at_ns if node.first_chunk_ns is None else min(node.first_chunk_ns, at_ns)

    def _close(self, node: Node, end_ns: int) -> None:
        if isinstance(node.span, StandInSpan) and self.other_spans is not None:
            node.other = self.other_spans.take(node.key)
            if node.other is None:  # the other instrumentation made no span for this call: crewtrace does
                node.span = node.span.make_real(self._tracer, node.start_ns)
        attrs = node.end_attributes or {}
        try:
            self._accounts.closing(node, end_ns, attrs)
        except Exception as exc:  # noqa: BLE001 - the span ends even if its accounts could not be made
            self._fault(exc, "add up a span")
        if attrs:
            node.span.set_attributes(attrs)
        node.closed = True
        node.span.end(end_time=max(end_ns, node.start_ns))
        if self._spans.ended(node):
            return  # the run is over
        parent = node.parent
        if parent is not None and not parent.closed:
            parent.open_children -= 1
            if parent.open_children <= 0 and parent.end_ns is not None:
                self._close(parent, parent.end_ns)

    # ---------------------------------------------------------------- waiting

    def _wait(self, key: str, source: Any, event: Any, ctx: Context | None) -> None:
        emitter = ctx if ctx is not None else otel_context.get_current()
        for dropped in self._spans.backlog.park(key, Waiting(source, event, emitter)):
            self._log_once("dropped", "crewtrace: dropped events waiting for unknown event %s", dropped)

    def _release(self, key: str) -> None:
        for item in self._spans.backlog.released(key):
            self._dispatch(item.source, item.event, item.ctx)

    def _fault(self, exc: BaseException, doing: str) -> None:
        """A bug inside crewtrace (or what it calls): logged once per distinct error, wherever it strikes."""
        self._log_once(f"fault:{type(exc).__name__}:{exc}", "crewtrace could not %s: %r", doing, exc)

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        if kind in self._logged or len(self._logged) >= _MAX_NOTICES:
            return
        self._logged.add(kind)
        logger.warning(message, *args)
