"""Content policy: whether free text (prompts, outputs, tool arguments, …) is captured, masked and cut.

Every captured string goes through :meth:`ContentPolicy.text`: common secrets are masked (crewtrace.masking),
then the user's patterns and hook apply, then the value is cut to ``max_length``. With capture off it returns
None, so the attribute is left out. Names and labels (crew, agent, task, tool, session, tags), written
whatever the capture switch says, go through :meth:`ContentPolicy.label`: the secret masks and the patterns.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crewtrace.errors import SettingError
from crewtrace.masking import REDACTED, encodable, mask_secrets

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 16 * 1024
TRUNCATION_MARK = "…[truncated {n} chars]"
_MASK_MARGIN = 256  # characters past the cut that are still masked with the kept text
CAPTURE_ENV = "CREWTRACE_CAPTURE_CONTENT"
OTEL_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CAPTURE_ACCEPTED = "True or False (true/false in the environment)"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT's own values.
_GENAI_CAPTURE = {"span_only": True, "event_only": True, "span_and_event": True, "no_content": False}


def capture_switch(raw: str) -> bool:
    """A capture switch as the environment writes it; ValueError for anything else."""
    lowered = raw.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    if lowered in _GENAI_CAPTURE:
        return _GENAI_CAPTURE[lowered]
    raise ValueError(raw)


def capture_from_env() -> bool:
    """Whether content is captured, from the first of CAPTURE_ENV and OTEL_CAPTURE_ENV that is set (default on):
    the instrumentor's own reading, when no setup call gave it a content policy."""
    for variable in (CAPTURE_ENV, OTEL_CAPTURE_ENV):
        raw = os.environ.get(variable, "").strip()
        if raw:
            try:
                return capture_switch(raw)
            except ValueError:
                raise SettingError("capture_content", variable, raw, CAPTURE_ACCEPTED) from None
    return True


def to_text(value: Any) -> str:
    """Render any value CrewAI hands us (str, dict, pydantic model, TaskOutput…) as text, never raising."""
    try:
        if isinstance(value, str):
            return value
        if isinstance(value, (bytes, bytearray)):
            return bytes(value).decode("utf-8", errors="replace")
        raw = getattr(value, "raw", None)  # TaskOutput / CrewOutput / LiteAgentOutput
        if isinstance(raw, str):
            return raw
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            value = dump(mode="json")
        return json.dumps(value, ensure_ascii=False, default=_fallback)
    except Exception:  # noqa: BLE001 - a user object may fail to dump or to print
        return _fallback(value)


def _fallback(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"


@dataclass(frozen=True)
class ContentPolicy:
    """Whether free text is captured, how it is masked, and how long one captured value may be."""

    capture: bool = True
    max_length: int = DEFAULT_MAX_LENGTH
    mask_secrets: bool = True
    patterns: tuple[re.Pattern[str], ...] = ()  # the user's: every match becomes [REDACTED]
    redact: Callable[[str], str] | None = None  # the user's hook, applied last
    _failed: set[str] = field(default_factory=set, compare=False, repr=False)
    # No user patterns and no redact hook: a text within its limit needs only the secret masks.
    _plain: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plain", not self.patterns and self.redact is None)

    def text(self, value: Any, limit: int | None = None) -> str | None:
        """The attribute value for one piece of free text (at most ``limit`` characters, default
        ``max_length``, plus the truncation mark), or None when it must not be captured.

        Only the kept part (with a margin, so a secret at the cut is still matched whole) is masked and
        redacted: the cost stays bounded however long the text is.
        """
        if not self.capture or value is None:
            return None
        text = value if type(value) is str else to_text(value)
        if limit is None:
            limit = self.max_length
        if self._plain and len(text) <= limit:  # the usual case: no user rules, nothing to cut
            text = encodable(text)
            return mask_secrets(text) if self.mask_secrets else text
        limit = max(limit, 0)
        full = len(text)
        if full > limit + _MASK_MARGIN:
            text = text[: limit + _MASK_MARGIN]
        text = encodable(text)  # (only the kept part: the cost stays bounded)
        if self.mask_secrets:
            text = mask_secrets(text)
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        if self.redact is not None:
            try:
                text = encodable(str(self.redact(text)))
            except Exception as exc:  # noqa: BLE001 - never leak the unredacted value, never break the crew
                self._log_once(
                    f"redact:{type(exc).__name__}", "crewtrace: the redact hook raised %r; value left out", exc
                )
                return None
        if full > limit:
            return text[:limit] + TRUNCATION_MARK.format(n=full - limit)
        return text

    def label(self, value: str) -> str:
        """A name or label (written even with capture off): secrets and the user's patterns masked, the hook not
        applied (it is for content, and may return anything)."""
        value = encodable(value)
        if self.mask_secrets:
            value = mask_secrets(value)
        for pattern in self.patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        if kind not in self._failed:
            self._failed.add(kind)
            logger.warning(message, *args)


def compile_patterns(patterns: Any) -> tuple[re.Pattern[str], ...]:
    """The user's redaction regexes, compiled; a one-line error naming the bad one."""
    if patterns is None:
        return ()
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    compiled = []
    for pattern in patterns:
        if isinstance(pattern, re.Pattern):
            compiled.append(pattern)
            continue
        try:
            compiled.append(re.compile(str(pattern)))
        except re.error as exc:
            raise ValueError(f"crewtrace: redact={pattern!r} is not a valid regular expression: {exc}") from None
    return tuple(compiled)
