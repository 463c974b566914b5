"""crewtrace: OpenTelemetry traces for CrewAI crews, one setup call away.

``crewtrace.instrument()`` configures the SDK and instruments CrewAI; ``CrewAIInstrumentor`` is the plain
instrumentor for applications that build their own providers.
"""

from crewtrace.instrumentor import CrewAIInstrumentor
from crewtrace.setup.configure import Instrumentation, instrument
from crewtrace.version import __version__

__all__ = ["CrewAIInstrumentor", "Instrumentation", "__version__", "instrument"]
