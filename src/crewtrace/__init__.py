"""crewtrace: OpenTelemetry traces for CrewAI crews, one setup call away.

``crewtrace.instrument()`` configures the SDK and instruments CrewAI; ``CrewAIInstrumentor`` is the plain
instrumentor for applications that build their own providers; ``crewtrace.context(session_id=..., user_id=...)``
labels the runs started inside. A bad setting raises ``SettingError``.
"""

from crewtrace.errors import SettingError
from crewtrace.instrumentor import CrewAIInstrumentor
from crewtrace.run_context import context
from crewtrace.setup.configure import Instrumentation, instrument
from crewtrace.version import __version__

__all__ = ["CrewAIInstrumentor", "Instrumentation", "SettingError", "__version__", "context", "instrument"]
