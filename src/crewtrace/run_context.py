"""``crewtrace.context(...)``: the session, user, tags and metadata every span of a run carries.

A context variable, so it holds in the thread or asyncio task that entered it, in threads started with a
copied context (as CrewAI starts its own), and in every crew or flow started inside (a crew nested in a tool
included). Contexts nest: the inner one's values win, tags add up, metadata merges.

Which values count as content: session id, user id and tags are identifiers the application chose to attach
for grouping, kept whatever ``capture_content`` says (pass a pseudonymous user id if it must not identify
anyone); metadata values are free text, left out with capture off and masked like any captured text.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from crewtrace import attributes
from crewtrace.errors import SettingError
from crewtrace.tracing.content import ContentPolicy

_MAX_ID_LENGTH = 256
_Scalar = str | bool | int | float
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RunLabels:
    """What a ``crewtrace.context`` attaches: identifiers and tags (structure) and metadata (content)."""

    session_id: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, _Scalar] = field(default_factory=dict)

    def within(self, outer: RunLabels | None) -> RunLabels:
        """These labels entered inside ``outer``: own values win, tags add up, metadata merges."""
        if outer is None:
            return self
        return RunLabels(
            self.session_id or outer.session_id,
            self.user_id or outer.user_id,
            tuple(dict.fromkeys((*outer.tags, *self.tags))),
            {**outer.metadata, **self.metadata},
        )

    def span_attributes(self, policy: ContentPolicy) -> dict[str, Any]:
        """The attributes every span of the run carries: metadata values pass the content policy, and secrets are
        masked in the labels and the metadata keys."""
        attrs: dict[str, Any] = {}
        if self.session_id:
            attrs[attributes.SESSION_ID] = attrs[attributes.GEN_AI_CONVERSATION_ID] = policy.label(self.session_id)
        if self.user_id:
            attrs[attributes.USER_ID] = policy.label(self.user_id)
        if self.tags:
            attrs[attributes.RUN_TAGS] = [policy.label(tag) for tag in self.tags]
        for key, value in self.metadata.items():
            kept = policy.text(value) if isinstance(value, str) else (value if policy.capture else None)
            if kept is not None:
                attrs[attributes.RUN_METADATA_PREFIX + policy.label(key)] = kept
        return attrs


_current: ContextVar[RunLabels | None] = ContextVar("crewtrace_run_labels", default=None)


def current() -> RunLabels | None:
    """The labels of the innermost ``crewtrace.context`` entered in this context, if any."""
    return _current.get()


class context:  # noqa: N801 - used like a function: crewtrace.context(session_id=...)
    """Labels every span of the runs started inside: ``with crewtrace.context(session_id="s1"): crew.kickoff()``.

    Also a decorator (sync or async functions). A bad argument raises ``SettingError`` at once, naming it.
    """

    def __init__(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, _Scalar] | None = None,
    ) -> None:
        self.labels = RunLabels(
            _identifier("session_id", session_id),
            _identifier("user_id", user_id),
            _tags(tags),
            _metadata(metadata),
        )
        self._tokens: list[Token[RunLabels | None]] = []

    def __enter__(self) -> RunLabels:
        labels = self.labels.within(_current.get())
        self._tokens.append(_current.set(labels))
        return labels

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _current.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        """Decorate ``func``: each call runs inside these labels (a fresh entry per call, so calls may overlap)."""
        labels = self.labels

        def enter() -> context:
            fresh = context.__new__(context)
            fresh.labels, fresh._tokens = labels, []
            return fresh

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with enter():
                    return await func(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with enter():
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


def _identifier(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_ID_LENGTH:
        raise SettingError(name, name, value, f"a non-empty string of at most {_MAX_ID_LENGTH} characters, or None")
    return value


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SettingError("tags", "tags", value, "a list of strings (not one string)")
    tags = tuple(value)
    if not all(isinstance(tag, str) and tag for tag in tags):
        raise SettingError("tags", "tags", value, "a list of non-empty strings")
    return tuple(dict.fromkeys(tags))


def _metadata(value: Any) -> dict[str, _Scalar]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SettingError("metadata", "metadata", value, "a mapping of string keys to str, int, float or bool")
    for key, item in value.items():
        if not isinstance(key, str) or not key or not isinstance(item, (str, bool, int, float)):
            raise SettingError(
                "metadata", "metadata", value, "a mapping of string keys to str, int, float or bool", f"at {key!r}"
            )
    return dict(value)
