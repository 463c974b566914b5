"""Content policy: whether free text (prompts, outputs, tool arguments, …) is captured, masked and cut.

Every captured string goes through :meth:`ContentPolicy.text`: common secrets are masked, then the user's
patterns and hook apply, then the value is cut to ``max_length``. With capture off it returns None, so the
attribute is left out.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 16 * 1024
TRUNCATION_MARK = "…[truncated {n} chars]"
REDACTED = "[REDACTED]"
_MASK_MARGIN = 256  # characters past the cut that are still masked with the kept text
CAPTURE_ENV = "CREWTRACE_CAPTURE_CONTENT"
OTEL_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# Secrets masked in every captured value (replacement keeps a prefix where it tells what was there). Each
# pattern runs only on text that holds its marker: a substring test is far cheaper than a regex pass.
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/-]{16,}=*")
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("sk-", re.compile(r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), REDACTED),  # OpenAI / Anthropic keys
    ("AKIA", re.compile(r"AKIA[0-9A-Z]{16}"), REDACTED),  # AWS access key ids
    ("gh", re.compile(r"gh[pousr]_[A-Za-z0-9]{36,}"), REDACTED),  # GitHub tokens (marker: _GITHUB_MARKER)
    ("earer", _BEARER, r"\1" + REDACTED),  # bearer tokens (Bearer, bearer)
    ("EARER", _BEARER, r"\1" + REDACTED),  # (BEARER)
    ("@", re.compile(r"(://[^/\s:@]+:)[^/\s@]+(@)"), r"\1" + REDACTED + r"\2"),  # passwords in URLs
)


_GITHUB_MARKER = re.compile(r"gh[pousr]_")


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
            return _masked_secrets(text) if self.mask_secrets else text
        limit = max(limit, 0)
        full = len(text)
        if full > limit + _MASK_MARGIN:
            text = text[: limit + _MASK_MARGIN]
        if self.mask_secrets:
            text = _masked_secrets(text)
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        if self.redact is not None:
            try:
                text = str(self.redact(text))
            except Exception as exc:  # noqa: BLE001 - never leak the unredacted value, never break the crew
                self._log_once(
                    f"redact:{type(exc).__name__}", "crewtrace: the redact hook raised %r; value left out", exc
                )
                return None
        if full > limit:
            return text[:limit] + TRUNCATION_MARK.format(n=full - limit)
        return text

    def _log_once(self, kind: str, message: str, *args: Any) -> None:
        if kind not in self._failed:
            self._failed.add(kind)
            logger.warning(message, *args)


def _masked_secrets(text: str) -> str:
    """``text`` with common secrets masked: only the patterns whose marker it holds run."""
    # The markers of SECRET_PATTERNS, tested inline: most texts hold none, and this is their whole cost. GitHub's
    # is looked for with its underscore: "gh" alone is in every "Thought".
    if not (
        "sk-" in text
        or "AKIA" in text
        or "earer" in text
        or "EARER" in text
        or "@" in text
        or _GITHUB_MARKER.search(text) is not None
    ):
        return text
    for marker, pattern, replacement in SECRET_PATTERNS:
        if marker in text:
            text = pattern.sub(replacement, text)
    return text


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
