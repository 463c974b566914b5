"""instrument(): clear errors for bad settings, idempotence, exporters chosen by argument or environment."""

from __future__ import annotations

import base64
import json

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

import crewtrace
from crewtrace.demo.crew import build_demo_crew
from crewtrace.setup.exporters import read_otlp_json_lines
from tests.test_span_tree import EXPECTED_TREE

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"endpoint": "not a url"}, "endpoint="),
        ({"endpoint": "ftp://collector:4317"}, "endpoint="),
        ({"endpoint": "localhost:4318", "protocol": "http/protobuf"}, "endpoint="),
        ({"endpoint": "http://collector:99999"}, "endpoint="),
        ({"protocol": "http/json"}, "protocol="),
        ({"exporter": "zipkin"}, "exporter="),
        ({"headers": "novalue"}, "headers="),
        ({"timeout": -1}, "timeout="),
        ({"max_content_length": 0}, "max_content_length="),
    ],
)
def test_bad_settings_raise_one_clear_line(kwargs, named):
    with pytest.raises(ValueError) as error:
        crewtrace.instrument(tracer_provider=TracerProvider(), **kwargs)
    message = str(error.value)
    assert message.startswith("crewtrace: ") and named in message and "\n" not in message
    assert not crewtrace.CrewAIInstrumentor().is_instrumented_by_opentelemetry


@pytest.mark.parametrize(
    ("var", "value"), [("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"), ("OTEL_TRACES_EXPORTER", "jaeger")]
)
def test_bad_environment_names_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"^crewtrace: {var}='{value}' is not accepted; "):
        crewtrace.instrument(tracer_provider=TracerProvider())


def test_grpc_accepts_host_and_port_without_scheme():
    handle = crewtrace.instrument(tracer_provider=TracerProvider(), endpoint="localhost:4317")
    assert handle.destinations == ["OTLP gRPC localhost:4317"]


def test_second_call_returns_the_same_handle_and_hooks_once():
    from crewai.events.event_bus import CrewAIEventsBus

    first = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="none")
    second = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="console")
    assert second is first
    hooked = CrewAIEventsBus.emit
    assert hasattr(hooked, "__wrapped__") and not hasattr(hooked.__wrapped__, "__wrapped__")  # wrapped once
    first.shutdown()
    assert not hasattr(CrewAIEventsBus.emit, "__wrapped__")
    third = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="none")
    assert third is not first


def test_file_exporter_writes_otlp_json_lines(tmp_path):
    path = tmp_path / "traces.jsonl"
    handle = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="file", file_path=path)
    build_demo_crew().kickoff()
    assert handle.force_flush(10_000)
    lines = path.read_text().splitlines()
    assert lines
    spans = list(read_otlp_json_lines(path))
    assert sorted(s["name"] for s in spans) == sorted(line.strip() for line in EXPECTED_TREE)
    for span in spans:
        assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
        assert len(span["spanId"]) == 16 and int(span["spanId"], 16)
        assert isinstance(span["kind"], int) and "startTimeUnixNano" in span
    # Each line is one ExportTraceServiceRequest: it parses back into the protobuf once ids are bytes again.
    for line in lines:
        message = json.loads(line)
        for rs in message["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        request = ParseDict(message, ExportTraceServiceRequest())
        assert request.resource_spans[0].scope_spans[0].scope.name == "crewtrace"


def test_file_path_from_environment(monkeypatch, tmp_path):
    path = tmp_path / "from-env.jsonl"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "file")
    monkeypatch.setenv("CREWTRACE_FILE_PATH", str(path))
    handle = crewtrace.instrument(tracer_provider=TracerProvider())
    assert handle.destinations == [f"file {path}"]
    build_demo_crew().kickoff()
    handle.force_flush(10_000)
    assert len(list(read_otlp_json_lines(path))) == len(EXPECTED_TREE)


def test_console_exporter(capsys):
    handle = crewtrace.instrument(tracer_provider=TracerProvider(), exporter="console")
    build_demo_crew().kickoff()
    handle.force_flush(10_000)
    out = capsys.readouterr().out
    assert '"name": "invoke_workflow tracing-note"' in out
    assert '"name": "execute_tool notebook_lookup"' in out
