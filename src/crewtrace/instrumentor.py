"""``CrewAIInstrumentor``: wires crewtrace's event listener and kickoff hook into CrewAI, and removes them again."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import FunctionWrapper, wrap_function_wrapper

from crewtrace import attributes, crewai_releases
from crewtrace.package import _instruments
from crewtrace.tracing import async_tasks, other_llm_spans, provider_responses, token_tracking
from crewtrace.tracing.content import ContentPolicy, capture_from_env
from crewtrace.tracing.event_hook import CrewAIEventHook, scope_starting_types
from crewtrace.tracing.metrics import CrewMetrics
from crewtrace.tracing.other_llm_spans import OtherLLMSpans
from crewtrace.tracing.tracker import SpanTracker
from crewtrace.usage.pricing import PriceTable
from crewtrace.version import __version__

logger = logging.getLogger(__name__)


class CrewAIInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Turns every CrewAI crew kickoff into a trace.

    ``instrument(tracer_provider=..., meter_provider=..., content_policy=..., prices=...)``; all optional.
    ``prices`` is a :class:`PriceTable`, or a JSON file path or dict of prices to lay over genai-prices' database.
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
        why = crewai_releases.unsupported()
        if why is not None:
            logger.warning(
                "crewtrace: crewai %s cannot be traced (%s); crewtrace supports crewai %s. Nothing is instrumented.",
                crewai_releases.installed_release(),
                why,
                crewai_releases.SUPPORTED,
            )
            return
        try:
            self._wire(kwargs)
        except Exception:  # never half-instrumented: undo what was done, and say so
            release = crewai_releases.installed_release()
            logger.exception("crewtrace: could not instrument crewai %s; nothing is instrumented", release)
            self._uninstrument()

    def _wire(self, kwargs: dict[str, Any]) -> None:
        tracer = trace.get_tracer(
            "crewtrace", __version__, tracer_provider=kwargs.get("tracer_provider"), schema_url=attributes.SCHEMA_URL
        )
        policy = kwargs.get("content_policy") or ContentPolicy(capture=capture_from_env())
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
        provider_responses.install(self._listener.on_llm_response)
        if not crewai_releases.usage_on_completed_event():
            token_tracking.install(self._listener.on_llm_response)
        if async_tasks.needed():
            async_tasks.install()
        wrap_function_wrapper("crewai.crew", "Crew.kickoff", self._kickoff)
        if crewai_releases.has_akickoff():
            wrap_function_wrapper("crewai.crew", "Crew.akickoff", self._akickoff)

    def _other_spans(self, provider: Any) -> OtherLLMSpans | None:
        """The processor that sees other instrumentations' LLM spans, attached to this listener."""
        processor = other_llm_spans.processor_for(provider or trace.get_tracer_provider())
        if processor is not None and self._listener is not None:
            processor.attach(self._listener.current_llm_call)
        return processor

    def _uninstrument(self, **kwargs: Any) -> None:
        """Undo whatever is wired (everything, or what a failed ``_instrument`` got to)."""
        if self._tracker is not None and self._tracker.other_spans is not None:
            self._tracker.other_spans.detach()
        provider_responses.uninstall()
        token_tracking.uninstall()
        if crewai_releases.unsupported() is None:
            import crewai.crew

            async_tasks.uninstall()

            for name in ("kickoff", "akickoff"):
                if isinstance(crewai.crew.Crew.__dict__.get(name), FunctionWrapper):
                    unwrap(crewai.crew.Crew, name)
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
