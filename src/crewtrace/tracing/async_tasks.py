"""Context for ``async_execution`` tasks on crewai releases before 1.11.0.

Those releases run such a task in a new thread that does not copy the caller's context, so CrewAI's own
event scope (and crewtrace's current span) is lost there and the task's spans would start a trace of their
own. crewtrace then carries the context over: ``Task.execute_async`` notes it, ``_execute_task_async``,
the thread's body, runs in it. From 1.11.0 CrewAI copies the context itself and nothing is wrapped.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from typing import Any

from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, wrap_function_wrapper

_pending: dict[int, contextvars.Context] = {}
_lock = threading.Lock()


def needed() -> bool:
    """Whether this crewai's ``Task.execute_async`` starts its thread without the caller's context."""
    from crewai.task import Task

    try:
        return "copy_context" not in inspect.getsource(Task.execute_async)
    except (OSError, TypeError):  # no source to read: assume the context is copied, as in every later release
        return False


def install() -> None:
    from crewai.task import Task

    if not isinstance(Task.__dict__.get("execute_async"), FunctionWrapper):
        wrap_function_wrapper("crewai.task", "Task.execute_async", _execute_async)
        wrap_function_wrapper("crewai.task", "Task._execute_task_async", _execute_task_async)


def uninstall() -> None:
    from crewai.task import Task

    for name in ("execute_async", "_execute_task_async"):
        if isinstance(Task.__dict__.get(name), FunctionWrapper):
            unwrap(Task, name)


def _execute_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    with _lock:
        _pending[id(instance)] = contextvars.copy_context()
    return wrapped(*args, **kwargs)


def _execute_task_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    with _lock:
        context = _pending.pop(id(instance), None)
    if context is None:
        return wrapped(*args, **kwargs)
    return context.run(wrapped, *args, **kwargs)
