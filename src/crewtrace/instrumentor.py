"""``CrewAIInstrumentor``: wires crewtrace's event listener and kickoff hook into CrewAI, and removes them again."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from crewtrace import attributes
from crewtrace.package import _instruments
from crewtrace.setup import settings
from crewtrace.tracing import litellm_usage, other_llm_spans
from crewtrace.tracing.content import ContentPolicy
from crewtrace.tracing.event_hook import CrewAIEventHook, scope_starting_types
from crewtrace.tracing.metrics import CrewMetrics
from crewtrace.tracing.other_llm_spans import OtherLLMSpans
from crewtrace.tracing.tracker import SpanTracker
from crewtrace.usage.pricing import PriceTable
from crewtrace.version import __version__


class CrewAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Turns every CrewAI crew kickoff into a trace.

    ``instrument(tracer_provider=..., meter_provider=..., content_policy=..., prices=...)``; all optional.
    ``prices`` is a :class:`PriceTable`, or a JSON file path or dict of prices to lay over the shipped table.
    BaseInstrumentor makes this a singleton and makes a second ``instrument()`` a no-op.
    """

    _tracker: SpanTracker | None = None
    _listener: CrewAIEventHook | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    @property
    def tracker(self) -> SpanTracker | None:
        """The live span tracker while instrumented (for diagnostics and tests)."""
        return self._tracker

    def _instrument(self, **kwargs: Any) -> None:
        tracer = trace.get_tracer(
            "crewtrace", __version__, tracer_provider=kwargs.get("tracer_provider"), schema_url=attributes.SCHEMA_URL
        )
        policy = kwargs.get("content_policy") or ContentPolicy(capture=settings.read("capture_content"))
        prices = kwargs.get("prices")
        self._tracker = SpanTracker(
            tracer,
            policy,
            prices=prices if isinstance(prices, PriceTable) else PriceTable.load(prices),
            metrics=CrewMetrics(kwargs.get("meter_provider")),
            transparent_types=scope_starting_types(),
            live=True,
            other_spans=lambda: self._other_spans(kwargs.get("tracer_provider")),
        )
        self._listener = CrewAIEventHook(self._tracker)
        self._listener.register()
        litellm_usage.install(self._listener.on_llm_response)
        wrap_function_wrapper("crewai.crew", "Crew.kickoff", self._kickoff)
        wrap_function_wrapper("crewai.crew", "Crew.akickoff", self._akickoff)

    def _other_spans(self, provider: Any) -> OtherLLMSpans | None:
        """The processor that sees other instrumentations' LLM spans, attached to this listener."""
        processor = other_llm_spans.processor_for(provider or trace.get_tracer_provider())
        if processor is not None and self._listener is not None:
            processor.attach(self._listener.current_llm_call)
        return processor

    def _uninstrument(self, **kwargs: Any) -> None:
        import crewai.crew

        if self._tracker is not None and self._tracker.other_spans is not None:
            self._tracker.other_spans.detach()
        litellm_usage.uninstall()
        unwrap(crewai.crew.Crew, "kickoff")
        unwrap(crewai.crew.Crew, "akickoff")
        if self._listener is not None:
            self._listener.unregister()
        self._listener = None
        self._tracker = None

    def _kickoff(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """Run ``Crew.kickoff`` and, however it ends, make sure every span of that run is ended."""
        tracker = self._tracker
        if tracker is None:
            return wrapped(*args, **kwargs)
        with tracker.run_scope():
            return wrapped(*args, **kwargs)

    async def _akickoff(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """``Crew.akickoff`` (native async) likewise."""
        tracker = self._tracker
        if tracker is None:
            return await wrapped(*args, **kwargs)
        with tracker.run_scope():
            return await wrapped(*args, **kwargs)
