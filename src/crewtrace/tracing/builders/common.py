"""What every span builder shares: the span start, an error to record, and setting attributes safely.

Pure functions of (source, event); tracing/event_table.py says which event calls which, and
docs/span-model.md documents every name written here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from crewtrace import attributes, crewai_releases
from crewtrace.tracing.content import ContentPolicy, to_text

Attributes = dict[str, AttributeValue]
_PLAIN = frozenset({str, bool, int, float})  # attribute values as they are (subclasses are checked further)


class SpanStart(NamedTuple):
    """Everything needed to open one span (a named tuple: one is made per span)."""

    name: str
    kind: SpanKind
    attributes: Attributes


@dataclass
class SpanError:
    """A failure to record on a span: error.type, plus an exception event unless nothing was raised."""

    error_type: str
    message: str | None
    exception: bool = True


def put(attrs: Attributes, key: str, value: Any) -> None:
    """Set an attribute only when there is a value of a type OpenTelemetry accepts."""
    if value is None:
        return
    if type(value) in _PLAIN or isinstance(value, (str, bool, int, float)):
        attrs[key] = value
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        attrs[key] = list(value)
    else:
        attrs[key] = to_text(value)


def put_text(attrs: Attributes, key: str, value: Any, policy: ContentPolicy) -> None:
    """Set a free-text attribute through the content policy."""
    put(attrs, key, policy.text(value))


def with_labels_masked(spec: SpanStart, policy: ContentPolicy) -> SpanStart:
    """The span with secrets masked in its name and its names and labels (attributes.LABEL_ATTRIBUTES): they
    are written even with capture off, and a crew or a tool may be named after a key."""
    label_attributes(spec.attributes, policy)
    return spec._replace(name=policy.label(spec.name))


def label_attributes(attrs: Attributes, policy: ContentPolicy) -> Attributes:
    """``attrs`` with secrets masked in the values of attributes.LABEL_ATTRIBUTES (in place)."""
    for key in attributes.LABEL_ATTRIBUTES.intersection(attrs):
        value = attrs[key]
        if isinstance(value, str):
            attrs[key] = policy.label(value)
        elif isinstance(value, (list, tuple)):
            attrs[key] = [policy.label(v) if isinstance(v, str) else v for v in value]
    return attrs


def type_name(error_type: Any) -> str:
    """The error.type value for an exception class: qualified unless it is a builtin."""
    if not isinstance(error_type, type):
        return attributes.ERROR_TYPE_OTHER
    module = error_type.__module__
    return error_type.__qualname__ if module == "builtins" else f"{module}.{error_type.__qualname__}"


def tool_names(tools: Iterable[Any] | None) -> list[str]:
    return [str(getattr(t, "name", t)) for t in (tools or [])]


def model_of(llm: Any) -> str | None:
    if llm is None:
        return None
    if isinstance(llm, str):
        return llm
    model = getattr(llm, "model", None)
    return str(model) if model else None


def provider_of(llm: Any, model: str | None) -> str | None:
    """gen_ai.provider.name: the LLM's declared provider, else the model's ``provider/`` prefix."""
    fields_set = crewai_releases.declared_fields(llm)
    builtin = type(llm).__module__.startswith("crewai.")
    provider = getattr(llm, "provider", None)
    if provider and (builtin or "provider" in fields_set):
        return str(provider)
    if model and "/" in model:
        return model.split("/", 1)[0]
    return None
