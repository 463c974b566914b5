"""Content policy: turns free text (prompts, outputs, tool arguments) into bounded span attribute strings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_LENGTH = 16 * 1024
TRUNCATION_MARK = "…[truncated {n} chars]"


def to_text(value: Any) -> str:
    """Render any value CrewAI hands us (str, dict, pydantic model, TaskOutput…) as text, never raising."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raw = getattr(value, "raw", None)  # TaskOutput / CrewOutput / LiteAgentOutput
    if isinstance(raw, str):
        return raw
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            value = dump(mode="json")
        except Exception:  # noqa: BLE001 - a user model may fail to dump; fall back to str()
            return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@dataclass(frozen=True)
class ContentPolicy:
    """Whether free text is captured, and how long one captured value may be."""

    capture: bool = True
    max_length: int = DEFAULT_MAX_LENGTH

    def text(self, value: Any) -> str | None:
        """The attribute value for one piece of free text, or None when it must not be captured."""
        if not self.capture or value is None:
            return None
        text = to_text(value)
        if len(text) > self.max_length:
            cut = len(text) - self.max_length
            return text[: self.max_length] + TRUNCATION_MARK.format(n=cut)
        return text
