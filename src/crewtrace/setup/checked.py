"""``Checked``: every setting of ``instrument()`` after ``settings.resolve()`` read and checked it, typed, and
where each value came from (the argument, a variable, or the default)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from crewtrace.usage.pricing import PriceTable


@dataclass(frozen=True)
class Checked:
    """One field per row of ``settings.SETTINGS`` (tests/test_settings_table.py holds them equal)."""

    exporter: list[str]
    protocol: str
    endpoint: str | None
    headers: dict[str, str] | None
    timeout: float | None
    service_name: str | None
    resource_attributes: dict[str, Any] | None
    file_path: str
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None
    metrics_exporter: str
    capture_content: bool
    max_content_length: int
    redact: tuple[tuple[re.Pattern[str], ...], Callable[[str], str] | None]
    mask_secrets: bool
    prices: PriceTable | None
    max_request_size: int
    shutdown_timeout: float
    crewai_telemetry: bool | None
    sampler: str
    sampler_arg: float | None
    sources: Mapping[str, str] = field(default_factory=dict)  # setting -> its name, a variable, or "default"

    @classmethod
    def of(cls, values: Mapping[str, Any], sources: Mapping[str, str]) -> Checked:
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name != "sources"}, sources=dict(sources))

    def given(self, name: str) -> bool:
        """Whether the setting was passed as an argument."""
        return self.sources.get(name) == name
