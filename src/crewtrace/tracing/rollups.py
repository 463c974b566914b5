"""What a closing span adds up: an LLM call's cost and stream timing, its tokens rolled into every span
above it, a span's crewai.usage.* totals, and the metrics."""

from __future__ import annotations

from typing import Any

from crewtrace import attributes
from crewtrace.tracing import event_table
from crewtrace.tracing.metrics import CrewMetrics
from crewtrace.tracing.nodes import Node
from crewtrace.usage.pricing import PriceTable
from crewtrace.usage.tokens import Totals, Usage, normalize_usage

# Span attributes that each unit's metrics are split by (low cardinality: names, never ids or text).
_METRIC_DIMENSIONS = {
    event_table.LLM: (
        attributes.GEN_AI_OPERATION_NAME,
        attributes.GEN_AI_PROVIDER_NAME,
        attributes.GEN_AI_REQUEST_MODEL,
    ),
    event_table.AGENT: (attributes.GEN_AI_OPERATION_NAME, attributes.GEN_AI_AGENT_NAME),
    event_table.TOOL: (attributes.GEN_AI_OPERATION_NAME, attributes.GEN_AI_TOOL_NAME),
    event_table.CREW: (attributes.GEN_AI_WORKFLOW_NAME,),
}


def reported(raw: Any) -> Usage | None:
    """An LLM call's usage, or None when the provider reported no counts."""
    usage = normalize_usage(raw)
    return None if usage == Usage() else usage


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class Accounting:
    """Prices and metrics, applied as spans start and close (the tracker holds its lock meanwhile)."""

    def __init__(self, prices: PriceTable | None, metrics: CrewMetrics | None) -> None:
        self._prices = prices
        self._metrics = metrics

    @staticmethod
    def started(node: Node, attrs: dict[str, Any]) -> None:
        """Keep what the accounts need from a new span's attributes."""
        keys = _METRIC_DIMENSIONS.get(node.unit)
        if keys is not None:  # the units whose metrics are recorded (those calls read node.dims)
            node.dims = {k: attrs[k] for k in keys if k in attrs}
        if node.unit == event_table.LLM:
            node.model = _str_or_none(attrs.get(attributes.GEN_AI_REQUEST_MODEL))
            node.provider = _str_or_none(attrs.get(attributes.GEN_AI_PROVIDER_NAME))

    def closing(self, node: Node, end_ns: int, attrs: dict[str, Any]) -> None:
        """Add up a closing span: what it says of itself goes into ``attrs``, which the tracker sets on the span
        in one call, with its end event's attributes."""
        seconds = max(end_ns - node.start_ns, 0) / 1e9
        if node.unit == event_table.LLM:
            self._close_llm(node, seconds, end_ns, attrs)
            return
        if node.totals is not None:
            attrs.update(node.totals.attributes())
            # Children close before their parent, so each level hands its sum up once.
            receiver = node.receiver()
            if receiver is not None:
                receiver.totals = node.totals.merged_into(receiver.totals)
        metrics = self._metrics
        if metrics is None:
            return
        if node.unit == event_table.AGENT:
            metrics.record_agent(node.dims or {}, seconds, node.error_type)
        elif node.unit == event_table.TOOL:
            metrics.record_tool(node.dims or {}, seconds, node.error_type)
        elif node.unit == event_table.CREW:
            metrics.record_run(node.dims or {}, node.error_type)

    def _close_llm(self, node: Node, seconds: float, end_ns: int, attrs: dict[str, Any]) -> None:
        _record_stream(node, attrs)
        cost = None
        if node.usage is not None and self._prices is not None:
            cost = self._prices.cost(node.model, node.provider, node.usage)
        if cost is not None:
            attrs[attributes.LLM_COST_USD] = cost
        receiver = node.receiver()
        if receiver is not None:  # the parent hands it on when it closes (closing above)
            if receiver.totals is None:
                receiver.totals = Totals()
            receiver.totals.add(node.usage, cost)
        if node.other is not None:
            _note_on_parent(node, cost, end_ns)
        if self._metrics is not None:
            # Recorded whether the trace is sampled or not: metrics count every run.
            if node.other is None and (node.span.is_recording() or not node.elsewhere):
                self._metrics.record_llm(node.dims or {}, node.usage, seconds, node.error_type)
            elif node.other is None or not node.other.records_tokens:
                # The other instrumentation records the call's duration but not its tokens. In a trace that is
                # not sampled its span cannot be seen: it is taken to have been made, as it is when sampled.
                self._metrics.record_tokens(node.dims or {}, node.usage)
            if cost is not None:
                self._metrics.record_cost(node.dims or {}, cost)


def _note_on_parent(node: Node, cost: float | None, end_ns: int) -> None:
    """A call whose span another instrumentation made (and ended before CrewAI reported the usage): its
    cost and full usage, which that span lacks, as an event on the nearest span of crewtrace's."""
    event: dict[str, Any] = {attributes.LLM_SPAN_ID: format(node.other.context.span_id, "016x")}
    if node.model:
        event[attributes.GEN_AI_REQUEST_MODEL] = node.model
    if node.usage is not None:
        event.update(node.usage.attributes())
    if cost is not None:
        event[attributes.LLM_COST_USD] = cost
    node.recording().span.add_event(attributes.EVENT_LLM_CALL, event, timestamp=end_ns)


def _record_stream(node: Node, attrs: dict[str, Any]) -> None:
    """The first streamed chunk as an event, and the time to it and the chunk count as attributes."""
    if node.first_chunk_ns is None:
        return
    target = node.recording()
    target.span.add_event(attributes.EVENT_LLM_FIRST_CHUNK, timestamp=node.first_chunk_ns)
    if target is node:
        attrs[attributes.LLM_CHUNK_COUNT] = node.chunks
        attrs[attributes.LLM_TIME_TO_FIRST_CHUNK] = max(node.first_chunk_ns - node.start_ns, 0) / 1e9
