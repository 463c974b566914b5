"""Export requests no larger than the receiver accepts: batches split by encoded size, oversized spans cut down.

The SDK's batch processor counts spans, not bytes, so one batch of spans carrying long prompts can exceed
gRPC's default 4 MiB message limit and be refused whole. ``split()`` cuts a batch into runs whose OTLP
encoding stays within a byte budget, using ``span_size()``: an upper bound of a span's protobuf size worked
out from the span itself (cheaper than encoding it twice). A span over the budget on its own has its longest
text values cut (``shrink()``), never dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from crewtrace import attributes

logger = logging.getLogger(__name__)

# 4,000,000 bytes: under gRPC's default 4 MiB (4,194,304) receive limit, kept by most OTLP receivers.
DEFAULT_MAX_REQUEST_SIZE = 4_000_000
_ENVELOPE = 64  # request, ResourceSpans and ScopeSpans framing, beyond their contents
_TRUNCATED = "…[truncated {} bytes]"
_told = False  # the first cut span is logged as a warning, the rest at debug


def _varint(n: int) -> int:
    """Bytes of ``n`` as a protobuf varint (negative ints take ten)."""
    if n < 0:
        return 10
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _field(length: int) -> int:
    """A length-delimited field: its tag (one byte, field numbers < 16), its length, its bytes."""
    return 1 + _varint(length) + length


def _text(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def _value(value: Any) -> int:
    """An AnyValue's encoded size (without its own tag and length)."""
    if isinstance(value, str):
        return _field(_text(value))
    if isinstance(value, bool):
        return 2
    if isinstance(value, int):
        return 1 + _varint(value)
    if isinstance(value, float):
        return 9
    if isinstance(value, bytes):
        return _field(len(value))
    if isinstance(value, Sequence):
        return _field(sum(_field(_value(item)) for item in value))
    return _field(_text(str(value)))


def _attributes(attrs: Mapping[str, Any] | None) -> int:
    if not attrs:
        return 0
    return sum(_field(_field(_text(key)) + _field(_value(value))) for key, value in attrs.items())


def _event(event: Event) -> int:
    return _field(9 + _field(_text(event.name)) + _attributes(event.attributes) + 6)


def span_size(span: ReadableSpan) -> int:
    """An upper bound of ``span``'s OTLP protobuf size inside a request, framing included."""
    body = 18 + 10 + 10 + 6 + 2 + 9 + 9 + 3 * 6  # ids, flags, kind, times, dropped counts
    body += _field(_text(span.name)) + _attributes(span.attributes)
    body += sum(_event(event) for event in span.events)
    body += sum(_field(18 + 10 + 5 + 6 + 64 + _attributes(link.attributes)) for link in span.links)
    status = span.status.description
    body += _field(2 + (_field(_text(status)) if status else 0))
    return _field(body)


def _envelope(resource: Resource | None, scope: InstrumentationScope | None) -> int:
    """What a request adds for one resource and scope: their attributes, names and schema URLs."""
    size = _ENVELOPE
    if resource is not None:
        size += _attributes(resource.attributes) + _field(_text(resource.schema_url or ""))
    if scope is not None:
        scope_fields = (scope.name, scope.version or "", scope.schema_url or "")
        size += sum(_field(_text(text)) for text in scope_fields) + _attributes(scope.attributes)
    return size


def envelope_size(span: ReadableSpan) -> int:
    """What a request holding only ``span`` adds around it."""
    return _envelope(span.resource, span.instrumentation_scope)


def split(spans: Sequence[ReadableSpan], limit: int) -> Iterator[list[ReadableSpan]]:
    """``spans`` in order, as runs whose request stays within ``limit`` bytes; an oversized span is shrunk."""
    run: list[ReadableSpan] = []
    used = 0
    envelopes: set[tuple[int, int]] = set()
    for span in spans:
        key = (id(span.resource), id(span.instrumentation_scope))
        alone = envelope_size(span)
        envelope = 0 if key in envelopes else alone
        size = span_size(span)
        if alone + size > limit:
            span = shrink(span, limit - alone)
            size = span_size(span)
        if run and used + envelope + size > limit:
            yield run
            run, used, envelopes = [], 0, set()
            envelope = alone
        run.append(span)
        used += envelope + size
        envelopes.add(key)
    if run:
        yield run


def _cut(value: str, excess: int) -> str:
    """``value`` shortened by at least ``excess`` encoded bytes, with a mark saying how much went."""
    encoded = value.encode("utf-8", "surrogatepass")
    keep = max(len(encoded) - excess - 48, 0)
    head = encoded[:keep].decode("utf-8", "ignore")
    return head + _TRUNCATED.format(len(encoded) - len(head.encode("utf-8", "surrogatepass")))


def shrink(span: ReadableSpan, limit: int) -> ReadableSpan:
    """A copy of ``span`` whose longest text values (its content) are cut until it fits in ``limit`` bytes."""
    global _told
    logger.log(
        logging.DEBUG if _told else logging.WARNING,
        "crewtrace: span %r was larger than max_request_size on its own; its longest values were cut to fit "
        "(marked crewai.span.truncated; said once)",
        span.name,
    )
    _told = True
    for _ in range(3):  # a cut's mark and length prefixes may leave a few bytes over: cut again
        span = _cut_longest(span, span_size(span) - limit)
        if span_size(span) <= limit:
            break
    return span


def _cut_longest(span: ReadableSpan, excess: int) -> ReadableSpan:
    attrs = dict(span.attributes or {})
    attrs[attributes.SPAN_TRUNCATED] = True
    excess += _field(_field(_text(attributes.SPAN_TRUNCATED)) + 4)
    events = list(span.events)
    texts = [(len(v), -1, k) for k, v in attrs.items() if isinstance(v, str)]
    for index, event in enumerate(events):
        texts += [(len(v), index, k) for k, v in (event.attributes or {}).items() if isinstance(v, str)]
    for _, index, key in sorted(texts, reverse=True):
        if excess <= 0:
            break
        holder = attrs if index < 0 else dict(events[index].attributes or {})
        value = holder[key]
        if not isinstance(value, str):  # (only texts were listed)
            continue
        cut = _cut(value, excess)
        holder[key] = cut
        excess -= _text(value) - _text(cut)
        if index >= 0:
            events[index] = Event(events[index].name, holder, events[index].timestamp)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attrs,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
