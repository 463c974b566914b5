"""The GenAI spans other instrumentations make for CrewAI's LLM calls, seen call by call.

When the SDK an LLM calls through is instrumented by its own GenAI instrumentation (other_instrumentations.py),
crewtrace stands back for that call's span. But an instrumentation may not wrap every method CrewAI uses
(openai-v2 misses structured-output ``parse`` calls) and may leave tokens out of its metrics (openai-v2 reads
no usage from CrewAI's raw responses). ``OtherLLMSpans``, a span processor on the SDK TracerProvider, notes
in which crewtrace LLM call each foreign GenAI span ended (the call crewtrace made current), so that at the
call's end crewtrace knows whether a span was made at all, and by whom.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import Attributes

from crewtrace import attributes

# gen_ai.operation.name values of a model call's span.
_CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
# Instrumentation scopes known to record gen_ai.client.token.usage themselves for CrewAI's calls (the
# GenAI utility's handler, which openai-v2 uses with OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental).
TOKEN_METRIC_SCOPES = frozenset({"opentelemetry.util.genai.handler"})
_KEEP = 4096  # calls remembered at most: a call's entry is taken when it ends, this bounds the leftovers


@dataclass(frozen=True, slots=True)
class OtherSpan:
    """The span another instrumentation made for one CrewAI LLM call."""

    scope: str
    context: SpanContext

    @property
    def records_tokens(self) -> bool:
        """Whether that instrumentation records the token usage metric itself."""
        return self.scope in TOKEN_METRIC_SCOPES


class OtherLLMSpans(SpanProcessor):
    """Notes the foreign GenAI span made inside each crewtrace LLM call; inert until ``attach()``."""

    def __init__(self) -> None:
        self._current_call: Callable[[], str | None] | None = None
        self._seen: OrderedDict[str, OtherSpan] = OrderedDict()
        self._lock = threading.Lock()

    def attach(self, current_call: Callable[[], str | None]) -> None:
        """Start noting spans; ``current_call`` gives the key of the LLM call running in this context."""
        self._current_call = current_call

    def detach(self) -> None:
        self._current_call = None
        with self._lock:
            self._seen.clear()

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        """Seen at the end, when its attributes are complete; still inside the call, so the call is current."""
        current_call = self._current_call
        if current_call is None:
            return
        scope = span.instrumentation_scope
        if scope is None or scope.name == "crewtrace":
            return
        if (span.attributes or {}).get(attributes.GEN_AI_OPERATION_NAME) not in _CALL_OPERATIONS:
            return
        key = current_call()
        if key is None:
            return
        context = span.get_span_context()
        if context is None:
            return
        with self._lock:
            self._seen.setdefault(key, OtherSpan(scope.name, context))
            while len(self._seen) > _KEEP:
                self._seen.popitem(last=False)

    def take(self, key: str) -> OtherSpan | None:
        """The foreign span made inside LLM call ``key``, forgotten once taken."""
        with self._lock:
            return self._seen.pop(key, None)


_by_provider: weakref.WeakKeyDictionary[Any, OtherLLMSpans] = weakref.WeakKeyDictionary()


def processor_for(provider: Any) -> OtherLLMSpans | None:
    """The processor on ``provider`` (added once: the SDK cannot remove one), or None for a provider that is
    not the SDK's, whose spans crewtrace cannot see."""
    if not isinstance(provider, TracerProvider):
        return None
    processor = _by_provider.get(provider)
    if processor is None:
        processor = OtherLLMSpans()
        provider.add_span_processor(processor)
        _by_provider[provider] = processor
    return processor


class StandInSpan(NonRecordingSpan):
    """Stands in for an LLM call's span while another instrumentation is expected to make it: carries the
    parent's context (so that span nests right) and keeps what crewtrace would have written, in case no
    span was made after all and crewtrace makes its own (``make_real``)."""

    def __init__(self, parent: SpanContext, name: str, kind: SpanKind, start_attributes: Attributes) -> None:
        super().__init__(parent)
        self._name, self._kind = name, kind
        self._attributes: dict[str, Any] = dict(start_attributes or {})
        self._events: list[tuple[str, Attributes, int | None]] = []
        self._status: Status | None = None

    def set_attribute(self, key: str, value: Any) -> None:
        self._attributes[key] = value

    def set_attributes(self, attributes: Attributes) -> None:
        self._attributes.update(attributes or {})

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        self._events.append((name, attributes, timestamp))

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._status = status if isinstance(status, Status) else Status(status, description)

    def make_real(self, tracer: Tracer, start_ns: int) -> Span:
        """crewtrace's own span for the call, as it would have been, started at ``start_ns``."""
        parent = trace.set_span_in_context(NonRecordingSpan(self.get_span_context()))
        span = tracer.start_span(self._name, parent, self._kind, self._attributes, start_time=start_ns)
        for name, attrs, timestamp in self._events:
            span.add_event(name, attrs, timestamp)
        if self._status is not None:
            span.set_status(self._status)
        return span
