"""Builders of the task span, ``execute_task {task name}``.

Pure functions of (source, event); tracing/event_table.py says which event calls which, and
docs/span-model.md documents every name written here.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from crewtrace import attributes
from crewtrace.tracing.builders.common import Attributes, SpanStart, put, put_text
from crewtrace.tracing.content import ContentPolicy


def task_start(source: Any, event: Any, index: int | None, policy: ContentPolicy) -> SpanStart:
    """task_started: ``execute_task {task name}``; a task without a name is called ``Task {n}``."""
    task = getattr(event, "task", None) or source
    name = getattr(task, "name", None)  # not event.task_name: CrewAI fills it with the whole description
    label = name or (f"Task {index}" if index else "Task")
    attrs: Attributes = {attributes.GEN_AI_OPERATION_NAME: attributes.OP_EXECUTE_TASK}
    put(attrs, attributes.TASK_ID, str(getattr(task, "id", "") or getattr(event, "task_id", "") or "") or None)
    put(attrs, attributes.TASK_KEY, getattr(task, "key", None))
    put(attrs, attributes.TASK_NAME, name)
    put(attrs, attributes.TASK_INDEX, index)
    put(attrs, attributes.TASK_ASYNC_EXECUTION, getattr(task, "async_execution", None))
    agent = getattr(task, "agent", None)
    put(attrs, attributes.TASK_AGENT_ROLE, getattr(agent, "role", None))
    put_text(attrs, attributes.TASK_DESCRIPTION, getattr(task, "description", None), policy)
    put_text(attrs, attributes.TASK_EXPECTED_OUTPUT, getattr(task, "expected_output", None), policy)
    if getattr(event, "context", None):
        put_text(attrs, attributes.TASK_CONTEXT, event.context, policy)
    return SpanStart(f"{attributes.OP_EXECUTE_TASK} {label}", SpanKind.INTERNAL, attrs)


def task_end(event: Any, policy: ContentPolicy) -> Attributes:
    attrs: Attributes = {}
    put_text(attrs, attributes.TASK_OUTPUT, getattr(event, "output", None), policy)
    return attrs
