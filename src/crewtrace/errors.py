"""The errors crewtrace raises to its caller, at the bottom of the layers: any module may raise them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crewtrace.masking import mask_secrets, shorten


class SettingError(ValueError):
    """A bad setting: ``crewtrace: <source>=<value> is not accepted; <setting> takes <what is accepted>``.

    The value is shown cut short with secrets masked, and not at all for a setting that holds credentials."""

    def __init__(
        self, setting: str, source: str, value: Any, accepted: str, why: str = "", hidden: bool = False
    ) -> None:
        detail = f" ({why})" if why else ""
        shown = _shown(value, hidden)
        super().__init__(f"crewtrace: {source}={shown} is not accepted; {setting} takes {accepted}{detail}")


def _shown(value: Any, hidden: bool) -> str:
    """A bad value as an error shows it: never a credential, never a page of text, never an exception."""
    if hidden:
        return "(hidden)"
    if isinstance(value, Mapping):
        return "{...}"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a user object's __repr__ may raise
        text = f"<{type(value).__name__}>"
    return shorten(mask_secrets(text))
