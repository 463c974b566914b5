"""Text made safe to write: credentials masked wherever crewtrace writes text (captured content, names and
labels, log lines, errors), and lone surrogates replaced so every text can be encoded.

The bottom layer (standard library only), so the tracer, the setup and the report all mask the same way.
Each row of ``SECRET_PATTERNS`` runs only on text that holds one of its markers: a substring test is far
cheaper than a regex pass, and most texts hold none. The README's table lists every row, and
tests/test_masking.py has an example of each.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import NamedTuple

REDACTED = "[REDACTED]"
SHORTEN_LIMIT = 200  # characters of a bad value an error message shows


class SecretPattern(NamedTuple):
    """One kind of credential: the substrings that must be present, the pattern, and what replaces a match."""

    what: str
    markers: tuple[str, ...]
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]


def _basic(match: re.Match[str]) -> str:
    """``Basic <base64 of user:password>``: masked only when it decodes to that, so prose ("basic idea") stays."""
    try:
        decoded = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return match.group(0)
    return match.group(1) + REDACTED if ":" in decoded and decoded.isprintable() else match.group(0)


_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/-]{16,}=*")
_JSON_SECRET_KEYS = "password|passwd|pwd|secret|client_secret|api_key|apikey|access_token|refresh_token|private_key"

SECRET_PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "OpenAI and Anthropic API keys", ("sk-",), re.compile(r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"), REDACTED
    ),
    SecretPattern("AWS access key ids", ("AKIA", "ASIA"), re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}"), REDACTED),
    SecretPattern(
        "AWS secret access keys (after their name)",
        ("ecret", "ECRET"),
        re.compile(r"(?i)(secret_?access_?key[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
        r"\1" + REDACTED,
    ),
    SecretPattern(
        "GitHub tokens", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), re.compile(r"gh[pousr]_[A-Za-z0-9]{36,}"), REDACTED
    ),
    SecretPattern(
        "GitHub fine-grained tokens", ("github_pat_",), re.compile(r"github_pat_[A-Za-z0-9_]{22,}"), REDACTED
    ),
    SecretPattern("Slack tokens", ("xox",), re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    SecretPattern(
        "Slack webhook URLs",
        ("hooks.slack.com",),
        re.compile(r"(hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"),
        r"\1" + REDACTED,
    ),
    SecretPattern("Google API keys", ("AIza",), re.compile(r"AIza[0-9A-Za-z_-]{35}"), REDACTED),
    SecretPattern("bearer tokens", ("earer", "EARER"), _BEARER, r"\1" + REDACTED),
    SecretPattern(
        "Basic credentials", ("asic ", "ASIC "), re.compile(r"(?i)(basic\s+)([A-Za-z0-9+/]{4,}={0,2})"), _basic
    ),
    SecretPattern(
        'JSON fields named like secrets ("password": "…", "api_key", "access_token", …)',
        ('ass"', 'ASS"', 'wd"', 'WD"', 'ecret"', 'ECRET"', 'key"', 'KEY"', 'oken"', 'OKEN"'),
        re.compile(rf'(?i)("(?:{_JSON_SECRET_KEYS})"\s*:\s*")(?:[^"\\]|\\.)*(")'),
        r"\1" + REDACTED + r"\2",
    ),
    SecretPattern(
        "passwords in URLs (user:password@host)",
        ("@",),
        re.compile(r"(://[^/\s:@]+:)[^/\s]*(@)"),
        r"\1" + REDACTED + r"\2",
    ),
)

_ANY_MARKER = re.compile("|".join(sorted({re.escape(m) for row in SECRET_PATTERNS for m in row.markers})))


def mask_secrets(text: str) -> str:
    """``text`` with every credential of ``SECRET_PATTERNS`` masked."""
    if _ANY_MARKER.search(text) is None:
        return text
    for row in SECRET_PATTERNS:
        if any(marker in text for marker in row.markers):
            text = row.pattern.sub(row.replacement, text)
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` with each lone surrogate (from a bad decode in a tool, or a JSON escape) replaced by U+FFFD:
    UTF-8 cannot encode them, and one would make the exporter drop the value with a logged traceback."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def redact_url(url: str) -> str:
    """A URL as logs and errors show it: a password in it masked."""
    return mask_secrets(url)


def shorten(text: str, limit: int = SHORTEN_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with a mark of what was left out: errors stay one readable line."""
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit} more chars]"
