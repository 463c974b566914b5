"""The report commands' own settings, from the environment: one reader, one kind of error."""

from __future__ import annotations

import os

from crewtrace.masking import shorten


def positive(env: str, default: float, accepted: str, kind: type[int] | type[float]) -> float:
    """A number above 0 from ``env`` (``default`` when unset); a one-line ValueError naming it when bad."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise ValueError(f"crewtrace: {env}={shorten(raw)!r} is not accepted; it takes {accepted}")
    return value
