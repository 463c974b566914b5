"""Settings never print a credential, never echo a page of text, and fail at setup (one SettingError) for what
the SDK would reject later or raise on itself; a plaintext gRPC collector reached as host:port is named
(#25 items 6 and 12)."""

from __future__ import annotations

import logging

import pytest

import crewtrace
from crewtrace import SettingError
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import one_task_crew
from tests.receivers import GrpcReceiver

TOKEN = "Bearer zq9TOKENzq9abcdefghijklmnop"


def _one_line(error: pytest.ExceptionInfo[SettingError], *wanted: str) -> str:
    text = str(error.value)
    assert "\n" not in text and "\r" not in text and len(text) < 600, text
    for part in wanted:
        assert part in text, text
    return text


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": TOKEN + "\r\nX-Evil: 1"},
        {"authorization": TOKEN + "\n"},
        {"authorization": TOKEN + "\x00"},
        {"bad name": TOKEN},
        {"authorization": 12345},
    ],
    ids=["CR LF", "LF", "NUL", "name with a space", "not a string"],
)
def test_a_bad_header_fails_at_setup_without_showing_its_value(fresh_global_provider, headers):
    with pytest.raises(SettingError) as error:
        crewtrace.instrument(endpoint="http://127.0.0.1:9", headers=headers)
    assert "zq9TOKEN" not in _one_line(error, "headers=(hidden)", "headers takes")


def test_a_malformed_headers_variable_never_echoes_the_token(fresh_global_provider, monkeypatch, caplog):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization={TOKEN},broken")
    with caplog.at_level(logging.DEBUG), pytest.raises(SettingError) as error:
        crewtrace.instrument(endpoint="http://127.0.0.1:9")
    assert "zq9TOKEN" not in _one_line(error, "OTEL_EXPORTER_OTLP_HEADERS=(hidden)")
    assert "zq9TOKEN" not in caplog.text


def test_url_encoded_headers_from_the_environment_are_decoded(fresh_global_provider, monkeypatch):
    """As the OTLP exporter specification writes them (W3C baggage form): the value arrives decoded."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc%3D,x-team=core")
    with GrpcReceiver() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint)
        one_task_crew(OfflineLLM()).kickoff()
        handle.shutdown()
        headers = receiver.headers[0]
    assert headers["authorization"] == "Bearer abc=" and headers["x-team"] == "core"


def test_a_password_in_the_endpoint_is_never_logged(fresh_global_provider, caplog):
    with caplog.at_level(logging.INFO, logger="crewtrace"):
        handle = crewtrace.instrument(endpoint="http://reader:hunter2@127.0.0.1:9", timeout=1)
        one_task_crew(OfflineLLM()).kickoff()
        handle.shutdown()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("crewtrace")]
    assert any("spans go to OTLP gRPC http://reader:[REDACTED]@127.0.0.1:9" in line for line in lines), lines
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert "hunter2" not in caplog.text


def test_a_huge_bad_value_is_cut_in_the_error(fresh_global_provider):
    with pytest.raises(SettingError) as error:
        crewtrace.instrument(exporter="x" * 1_000_000)
    _one_line(error, "more chars]", "exporter takes")


def test_a_value_whose_repr_raises_is_still_a_setting_error():
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("repr bomb")

    with pytest.raises(SettingError) as error:
        crewtrace.context(session_id=Hostile())
    _one_line(error, "session_id=<Hostile>")


def test_no_exporter_at_all_is_refused(fresh_global_provider):
    with pytest.raises(SettingError) as error:
        crewtrace.instrument(exporter=[])
    _one_line(error, "exporter=[]", "'none' sends nowhere")


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("OTEL_BSP_SCHEDULE_DELAY", "-1", "a whole number above 0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon", "a whole number above 0"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "a whole number above 0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0", "a whole number above 0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "5000", "at most the queue size (2048)"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "gzip or deflate or none"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli", "gzip or deflate or none"),
    ],
)
def test_sdk_variables_the_sdk_would_raise_on_are_setting_errors(
    fresh_global_provider, monkeypatch, caplog, variable, value, accepted
):
    monkeypatch.setenv(variable, value)
    with caplog.at_level(logging.DEBUG), pytest.raises(SettingError) as error:
        crewtrace.instrument(endpoint="http://127.0.0.1:9")
    _one_line(error, f"{variable}={value!r} is not accepted", accepted)
    assert "Traceback" not in caplog.text


def test_good_sdk_variables_pass(fresh_global_provider, monkeypatch):
    for variable, value in {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP"}.items():
        monkeypatch.setenv(variable, value)
    with GrpcReceiver() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint)
        one_task_crew(OfflineLLM()).kickoff()
        handle.shutdown()
        assert len(receiver.records()) == 4


def test_a_plaintext_grpc_collector_reached_as_host_port_is_named_with_the_fix(
    fresh_global_provider, monkeypatch, caplog
):
    """The SDK speaks TLS to a bare host:port: the plaintext collector gets nothing, and the warning says what
    to set. With that set, the same endpoint receives the run."""
    with GrpcReceiver() as receiver:
        bare = receiver.endpoint.removeprefix("http://")
        with caplog.at_level(logging.WARNING, logger="crewtrace"):
            handle = crewtrace.instrument(endpoint=bare, timeout=1)
            one_task_crew(OfflineLLM()).kickoff()
            handle.shutdown()
        assert receiver.records() == []
        warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
        assert "speaks gRPC without TLS" in warnings and "OTEL_EXPORTER_OTLP_INSECURE=true" in warnings, warnings
        assert f"http://{bare}" in warnings
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        handle = crewtrace.instrument(endpoint=bare)
        one_task_crew(OfflineLLM()).kickoff()
        handle.shutdown()
        assert len(receiver.records()) == 4
