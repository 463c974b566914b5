"""The metrics crewtrace records: GenAI client token usage and durations, agent and tool durations, cost
and crew runs. Names, units and bucket boundaries follow the GenAI semantic conventions where they exist."""

from __future__ import annotations

from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider, get_meter
from opentelemetry.util.types import AttributeValue

from crewtrace import attributes
from crewtrace.usage.tokens import Usage
from crewtrace.version import __version__

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

Attrs = dict[str, AttributeValue]


class CrewMetrics:
    """Instruments on one meter; the tracker calls ``record_*`` as spans end."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter: Meter = get_meter("crewtrace", __version__, meter_provider)
        self._tokens = meter.create_histogram(
            attributes.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used per LLM call, by gen_ai.token.type (input, output)",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self._llm_duration = _duration(meter, attributes.METRIC_OPERATION_DURATION, "Duration of LLM calls")
        self._agent_duration = _duration(meter, attributes.METRIC_AGENT_DURATION, "Duration of agent executions")
        self._tool_duration = _duration(meter, attributes.METRIC_TOOL_DURATION, "Duration of tool calls (each attempt)")
        self._cost = meter.create_counter(
            attributes.METRIC_COST, unit="USD", description="Estimated cost of LLM calls whose model has a known price"
        )
        self._runs = meter.create_counter(attributes.METRIC_CREW_RUNS, unit="{run}", description="Crew runs, by status")

    def record_llm(self, attrs: Attrs, usage: Usage | None, seconds: float, error_type: str | None) -> None:
        """One LLM call: its input and output tokens (as reported) and its duration."""
        self.record_tokens(attrs, usage)
        self._llm_duration.record(seconds, _with_error(attrs, error_type))

    def record_tokens(self, attrs: Attrs, usage: Usage | None) -> None:
        """One LLM call's input and output tokens, as reported."""
        if usage is not None:
            counts = (
                (attributes.TOKEN_TYPE_INPUT, usage.input_tokens),
                (attributes.TOKEN_TYPE_OUTPUT, usage.output_tokens),
            )
            for token_type, count in counts:
                if count is not None:
                    self._tokens.record(count, {**attrs, attributes.GEN_AI_TOKEN_TYPE: token_type})

    def record_cost(self, attrs: Attrs, usd: float) -> None:
        self._cost.add(usd, attrs)

    def record_agent(self, attrs: Attrs, seconds: float, error_type: str | None) -> None:
        self._agent_duration.record(seconds, _with_error(attrs, error_type))

    def record_tool(self, attrs: Attrs, seconds: float, error_type: str | None) -> None:
        self._tool_duration.record(seconds, _with_error(attrs, error_type))

    def record_run(self, attrs: Attrs, error_type: str | None) -> None:
        status = attributes.RUN_STATUS_ERROR if error_type else attributes.RUN_STATUS_OK
        self._runs.add(1, {**_with_error(attrs, error_type), attributes.CREW_RUN_STATUS: status})


def spans_dropped_counter(meter_provider: MeterProvider | None) -> Counter:
    """The count of spans that never reached the collector, by reason (setup/delivery.py records it)."""
    meter = get_meter("crewtrace", __version__, meter_provider)
    return meter.create_counter(
        attributes.METRIC_SPANS_DROPPED, unit="{span}", description="Spans not delivered to the collector, by reason"
    )


def _duration(meter: Meter, name: str, description: str) -> Histogram:
    return meter.create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
    )


def _with_error(attrs: Attrs, error_type: str | None) -> Attrs:
    return {**attrs, attributes.ERROR_TYPE: error_type} if error_type else attrs
