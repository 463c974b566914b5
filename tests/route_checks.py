"""The checks every route test makes (tests/test_route_*.py): a crew's LLM spans against the counts a vendor's
server sent, and their cost against the vendor's published price."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crewtrace import attributes
from crewtrace.report.records import records_from_sdk
from tests.helpers import outline


class RunSpans:
    """What a route test reads of one traced crew run's ``spans``: its LLM spans and its crew span."""

    spans: list[ReadableSpan]

    def chats(self) -> list[ReadableSpan]:
        """The LLM spans, in the order their calls started."""
        spans = [s for s in self.spans if s.attributes.get(attributes.GEN_AI_OPERATION_NAME) == attributes.OP_CHAT]
        return sorted(spans, key=lambda s: s.start_time or 0)

    def crew(self) -> ReadableSpan:
        """The crew's span, the root of the run's tree."""
        (span,) = [s for s in self.spans if s.name.startswith(f"{attributes.OP_INVOKE_WORKFLOW} ")]
        return span


def clear_event_scope() -> None:
    """Start from an empty CrewAI event scope stack, as conftest's autouse fixture does for each test (for runs
    made once per module)."""
    from crewai.events import event_context

    if hasattr(event_context, "restore_event_scope"):
        event_context.restore_event_scope(())
    else:
        event_context._event_id_stack.set(())


@dataclass(frozen=True)
class Call:
    """One answered request's counts in GenAI terms (input with cache reads, output with reasoning); None: the
    vendor reported no such count."""

    input_tokens: int
    output_tokens: int
    cache_read: int | None = None
    reasoning: int | None = None


@dataclass(frozen=True)
class VendorPrice:
    """A vendor's published price, USD per million tokens."""

    input: float
    cached_input: float
    output: float

    def cost(self, call: Call) -> float:
        """Uncached input at the input price, cache reads at the cached price, all output at the output price."""
        cached = call.cache_read or 0
        fresh = call.input_tokens - cached
        return (fresh * self.input + cached * self.cached_input + call.output_tokens * self.output) / 1e6


FREE = VendorPrice(0.0, 0.0, 0.0)  # a model on the user's own machine


def usd(expected: float) -> Any:
    """A cost within 1e-9 USD or 0.5 % of ``expected``."""
    return pytest.approx(expected, rel=5e-3, abs=1e-9)


def chat_call(usage: dict[str, Any]) -> Call:
    """What a Chat Completions usage object says, in GenAI terms (prompt_tokens already includes the cache)."""
    details = usage.get("prompt_tokens_details") or {}
    reasoning = usage.get("completion_tokens_details") or {}
    return Call(
        usage["prompt_tokens"],
        usage["completion_tokens"],
        details.get("cached_tokens"),
        reasoning.get("reasoning_tokens"),
    )


def check_run(
    exporter: InMemorySpanExporter,
    calls: Sequence[Call],
    *,
    crew: str,
    model: str,
    provider: str,
    price: VendorPrice | None,
) -> list[ReadableSpan]:
    """The analyst crew's tree, one ``chat`` span per answered request with that request's counts and cost, and
    the crew's roll-up equal to their sums. ``price`` None: costs are not checked. Returns the chat spans."""
    spans = exporter.get_finished_spans()
    chat = f"chat {model}"
    assert outline(records_from_sdk(spans)) == [
        f"invoke_workflow {crew}",
        "  execute_task analyse",
        "    invoke_agent Analyst",
        f"      {chat}",
        "      execute_tool notebook_lookup",
        f"      {chat}",
    ]
    chats = sorted((s for s in spans if s.name == chat), key=lambda s: s.start_time)
    assert len(chats) == len(calls)
    for span, call in zip(chats, calls, strict=True):
        attrs = span.attributes
        assert attrs[attributes.GEN_AI_USAGE_INPUT_TOKENS] == call.input_tokens
        assert attrs[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] == call.output_tokens
        assert attrs.get(attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) == call.cache_read
        assert attrs.get(attributes.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS) == call.reasoning
        assert attributes.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS not in attrs  # no route here reports cache writes
        if price is not None:
            assert attrs[attributes.LLM_COST_USD] == usd(price.cost(call))
    (root,) = [s for s in spans if s.name == f"invoke_workflow {crew}"]
    totals = root.attributes
    inputs, outputs = sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls)
    assert totals[attributes.USAGE_INPUT_TOKENS] == inputs
    assert totals[attributes.USAGE_OUTPUT_TOKENS] == outputs
    assert totals[attributes.USAGE_TOTAL_TOKENS] == inputs + outputs
    assert totals[attributes.USAGE_REQUESTS] == len(calls)
    assert totals.get(attributes.USAGE_CACHE_READ_INPUT_TOKENS, 0) == sum(c.cache_read or 0 for c in calls)
    assert totals.get(attributes.USAGE_REASONING_OUTPUT_TOKENS, 0) == sum(c.reasoning or 0 for c in calls)
    assert attributes.USAGE_CACHE_CREATION_INPUT_TOKENS not in totals
    if price is not None:
        assert attributes.USAGE_UNPRICED_REQUESTS not in totals
        assert totals[attributes.USAGE_COST_USD] == usd(sum(price.cost(c) for c in calls))
    # Last, so that a wrong provider name does not hide what the counts and costs say.
    assert [s.attributes.get(attributes.GEN_AI_PROVIDER_NAME) for s in chats] == [provider] * len(chats)
    return chats
