"""crewtrace: OpenTelemetry traces for CrewAI crews, one setup call away.

``crewtrace.instrument()`` configures the SDK and instruments CrewAI; ``CrewAIInstrumentor`` is the plain
instrumentor for applications that build their own providers; ``crewtrace.context(session_id=..., user_id=...)``
labels the runs started inside. A bad setting raises ``SettingError``.

The names are imported when first used, so importing a part of crewtrace (the tracing core, the report
readers) loads only what that part needs, not the SDK's exporters.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from crewtrace.errors import SettingError
from crewtrace.version import __version__

if TYPE_CHECKING:
    from crewtrace.instrumentor import CrewAIInstrumentor
    from crewtrace.run_context import context
    from crewtrace.setup.configure import Instrumentation, instrument

_LAZY = {
    "CrewAIInstrumentor": "crewtrace.instrumentor",
    "context": "crewtrace.run_context",
    "Instrumentation": "crewtrace.setup.configure",
    "instrument": "crewtrace.setup.configure",
}

__all__ = ["CrewAIInstrumentor", "Instrumentation", "SettingError", "__version__", "context", "instrument"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # once: later lookups find it directly
        return value
    raise AttributeError(f"module 'crewtrace' has no attribute {name!r}")
