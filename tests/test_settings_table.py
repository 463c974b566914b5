"""The settings table, row by row: good and bad values from an argument and from each environment variable.

Every bad value is one ``SettingError`` line naming the setting, where the value came from, and what is
accepted; every good one is taken. A new row in ``crewtrace.settings.SETTINGS`` fails the first test until
it has its values here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import crewtrace
from crewtrace.setup import settings

# name: (good arguments, bad arguments, good environment strings, bad environment strings)
VALUES: dict[str, tuple[list[Any], list[Any], list[str], list[str]]] = {
    "exporter": (["otlp", "file,console", ["file"], "none"], ["zipkin", 5, ["x"], [1]], ["otlp,console"], ["jaeger"]),
    "protocol": (["grpc", "HTTP/PROTOBUF"], ["http/json", 1], ["http/protobuf"], ["thrift"]),
    "endpoint": (
        ["http://localhost:4317", "https://c.example/v1/traces", "localhost:4317"],
        ["not a url", "ftp://collector:4317", "http://collector:99999", "localhost", 5],
        ["http://collector:4317"],
        ["localhost", "not a url", "http://:4317"],
    ),
    "headers": (["a=b,c=d", {"a": "b"}], ["novalue", 5, "=x"], ["a=b"], ["novalue"]),
    "timeout": ([1, 2.5], [-1, 0, "10", True, float("inf")], ["10", "0.5"], ["abc", "-1", "0"]),
    "service_name": (["svc"], ["", "  ", 5], ["svc"], []),  # an empty variable counts as unset
    "resource_attributes": (
        [{"k": "v", "n": 1}, "k=v,k2=v2"],
        [5, "novalue", {"k": object()}, {1: "v"}],
        ["k=v,k2=v2"],
        ["novalue"],
    ),
    "file_path": (["t.jsonl"], [5, ""], ["t.jsonl"], []),  # writability needs exporter='file': tested below
    "tracer_provider": ([TracerProvider()], ["x", 5], [], []),
    "meter_provider": ([MeterProvider()], ["x"], [], []),
    "metrics_exporter": (["otlp", "none", "Console"], ["prometheus", 0], ["none"], ["bogus"]),
    "capture_content": (
        [True, False],
        ["no", 1, "false"],
        ["true", "FALSE", "no_content", "span_only"],
        ["maybe", "2"],
    ),
    "max_content_length": ([1, 100], [0, -1, 1.5, True, "10"], [], []),
    "redact": ([r"sk-\w+", ["a", re.compile("b")], str.upper], ["bad(", 5, ["ok", "bad("], [5]], [], []),
    "mask_secrets": ([True, False], ["false", 0, 1], [], []),
    "prices": (
        [{"m": {"input": 1, "output": 2}}],
        [5, {"n": 3}, "/nonexistent/prices.json"],
        [],
        ["/nonexistent.json"],
    ),
    "max_request_size": ([65536, 8_000_000], [0, 1000, -1, 1.5e6, "4000000", True], ["1048576"], ["4MB", "100"]),
    "shutdown_timeout": ([1, 0.5], [0, -1, "2", True], ["2"], ["abc", "0"]),
    "crewai_telemetry": ([True, False], ["yes", 1], [], []),
    "sampler": (["always_on", "TraceIdRatio"], ["sometimes", 3], ["always_off"], ["sometimes"]),
    "sampler_arg": ([0, 0.5, 1], [2, -0.1, "half", True], ["0.25"], ["half", "2"]),
}


def _one_line(error: pytest.ExceptionInfo[settings.SettingError], source: str, setting: settings.Setting) -> None:
    message = str(error.value)
    assert message.startswith(f"crewtrace: {source}=") and "\n" not in message, message
    assert f"{setting.name} takes {setting.accepted}" in message, message


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch):
    for setting in settings.SETTINGS:
        for var in setting.env:
            monkeypatch.delenv(var, raising=False)


def test_the_checked_settings_have_one_typed_field_per_row():
    from dataclasses import fields

    from crewtrace.setup.checked import Checked

    assert [f.name for f in fields(Checked) if f.name != "sources"] == [s.name for s in settings.SETTINGS]


def test_every_row_has_values_here():
    assert set(VALUES) == set(settings.BY_NAME)


@pytest.mark.parametrize("setting", settings.SETTINGS, ids=lambda s: s.name)
def test_arguments(setting):
    good, bad, _, _ = VALUES[setting.name]
    for value in good:
        settings.read(setting.name, value)
    for value in bad:
        with pytest.raises(settings.SettingError) as error:
            settings.read(setting.name, value)
        _one_line(error, setting.name, setting)


@pytest.mark.parametrize("setting", [s for s in settings.SETTINGS if s.env], ids=lambda s: s.name)
def test_environment_variables(monkeypatch, setting):
    _, _, good, bad = VALUES[setting.name]
    for var in setting.env:
        for value in good:
            monkeypatch.setenv(var, value)
            settings.read(setting.name)
        for value in bad:
            monkeypatch.setenv(var, value)
            with pytest.raises(settings.SettingError) as error:
                settings.read(setting.name)
            _one_line(error, var, setting)
        monkeypatch.delenv(var, raising=False)


def test_the_error_is_public_and_a_value_error():
    assert crewtrace.SettingError is settings.SettingError and issubclass(crewtrace.SettingError, ValueError)
    with pytest.raises(crewtrace.SettingError):
        crewtrace.instrument(exporter="zipkin")


def test_an_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "abc")
    assert settings.read("timeout", 3) == 3.0


def _instrument_fails(source: str, **kwargs: Any) -> str:
    with pytest.raises(ValueError) as error:
        crewtrace.instrument(**{"tracer_provider": TracerProvider(), **kwargs})
    message = str(error.value)
    assert message.startswith(f"crewtrace: {source}=") and "\n" not in message, message
    assert not crewtrace.CrewAIInstrumentor().is_instrumented_by_opentelemetry
    return message


@pytest.mark.parametrize(
    ("env", "kwargs", "source"),
    [
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "abc"}, {}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, {}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "not a url"}, {}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "localhost"}, {}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        ({"OTEL_METRICS_EXPORTER": "bogus"}, {}, "OTEL_METRICS_EXPORTER"),
        ({}, {"redact": 5}, "redact"),
        ({}, {"resource_attributes": 5}, "resource_attributes"),
        ({}, {"tracer_provider": "x"}, "tracer_provider"),
        ({}, {"mask_secrets": "false"}, "mask_secrets"),
        ({}, {"sampler": "always_on", "sampler_arg": 0.5}, "sampler_arg"),
        ({}, {"file_path": "traces.jsonl"}, "file_path"),  # without exporter='file'
        ({}, {"exporter": "file", "file_path": "/proc/crewtrace/traces.jsonl"}, "file_path"),  # cannot be made
        ({}, {"endpoint": "localhost:4318", "protocol": "http/protobuf"}, "endpoint"),
    ],
)
def test_what_used_to_fail_late_or_silently_is_one_line_at_setup(monkeypatch, env, kwargs, source):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _instrument_fails(source, **kwargs)


def test_forms_the_readme_lists_are_accepted(tmp_path):
    handle = crewtrace.instrument(
        resource_attributes="team=search,tier=1", exporter=["file"], file_path=tmp_path / "t.jsonl"
    )
    assert handle.destinations == [f"file {tmp_path / 't.jsonl'}"]
    assert (tmp_path / "t.jsonl").exists()  # created, so an unwritable path fails at setup, not at exit


def test_the_file_path_variable_alone_does_not_choose_the_file_exporter(monkeypatch, tmp_path):
    monkeypatch.setenv("CREWTRACE_FILE_PATH", str(tmp_path / "t.jsonl"))
    handle = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="none")
    assert handle.destinations == [] and not (tmp_path / "t.jsonl").exists()


def test_a_second_call_with_other_settings_warns_and_keeps_the_first(caplog):
    first = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="none")
    with caplog.at_level(logging.WARNING, logger="crewtrace.setup.configure"):
        assert crewtrace.instrument(tracer_provider=first.tracer_provider, exporter="none") is first
        assert not caplog.records  # the same settings: nothing to say
        assert crewtrace.instrument(exporter="console", service_name="other") is first
    (record,) = caplog.records
    assert "not applied: exporter, service_name, tracer_provider" in record.getMessage()
