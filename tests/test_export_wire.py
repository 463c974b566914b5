"""Wire-level export: what crewtrace sends over OTLP gRPC and HTTP, decoded by real receivers on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import crewtrace
from crewtrace import attributes
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import outline
from tests.processes import run_zero_code
from tests.receivers import GrpcReceiver, HttpReceiver
from tests.test_span_tree import EXPECTED_TREE

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

APPS = Path(__file__).parent / "apps"
SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3


def run_app(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_demo_trace(receiver, usages: list[dict[str, int]]) -> None:
    records = receiver.wait_for_spans(len(EXPECTED_TREE))
    assert outline(records) == EXPECTED_TREE
    assert len({r.trace_id for r in records}) == 1
    by_id = {r.span_id: r for r in records}
    for record in records:
        assert 0 < record.start_ns <= record.end_ns
        if record.parent_id:
            parent = by_id[record.parent_id]
            assert parent.start_ns <= record.start_ns and record.end_ns <= parent.end_ns
    kinds = {span.name: span.kind for _, span in receiver.spans()}
    assert kinds["chat crewtrace-offline"] == SPAN_KIND_CLIENT
    assert kinds["invoke_workflow tracing-note"] == SPAN_KIND_INTERNAL
    chats = sorted((r for r in records if r.name.startswith("chat ")), key=lambda r: r.start_ns)
    assert [r.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] for r in chats] == [u["prompt_tokens"] for u in usages]
    assert [r.attributes[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] for r in chats] == [
        u["completion_tokens"] for u in usages
    ]


def test_grpc_export_from_env_settings(subprocess_env):
    with GrpcReceiver() as receiver:
        env = {
            **subprocess_env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "wire-test",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-team=observability",
        }
        done = run_app(env, str(APPS / "run_crew.py"))
        assert done.returncode == 0, done.stderr
        assert_demo_trace(receiver, json.loads(done.stdout.strip().splitlines()[-1]))
        resource, _ = receiver.spans()[0]
        assert resource["service.name"] == "wire-test"
        assert resource["deployment.environment.name"] == "test"
        assert receiver.headers[0]["x-team"] == "observability"


def test_http_export_from_env_settings(subprocess_env):
    with HttpReceiver() as receiver:
        env = {
            **subprocess_env,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20t0ken",
        }
        done = run_app(env, str(APPS / "run_crew.py"))
        assert done.returncode == 0, done.stderr
        assert_demo_trace(receiver, json.loads(done.stdout.strip().splitlines()[-1]))
        resource, _ = receiver.spans()[0]
        assert resource["service.name"] == "crewai"  # crewtrace's default when nothing names the service
        assert receiver.headers[0]["authorization"] == "Bearer t0ken"


def test_keyword_arguments_override_the_environment(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with HttpReceiver() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint, protocol="http/protobuf", headers="x-k=v1")
        llm = OfflineLLM()
        build_demo_crew(llm).kickoff()
        assert handle.force_flush(10_000)
        assert_demo_trace(receiver, llm.usages)
        assert receiver.headers[0]["x-k"] == "v1"
        assert handle.destinations == [f"OTLP HTTP {receiver.endpoint}/v1/traces"]


def test_zero_code_opentelemetry_instrument(subprocess_env):
    with GrpcReceiver() as receiver:
        done = run_zero_code(subprocess_env, receiver.endpoint, str(APPS / "zero_code.py"))
        assert done.returncode == 0, done.stderr
        records = receiver.wait_for_spans(len(EXPECTED_TREE))
        assert outline(records) == EXPECTED_TREE


def test_existing_global_provider_is_added_to_not_replaced(subprocess_env, tmp_path):
    path = tmp_path / "spans.jsonl"
    done = run_app(subprocess_env, str(APPS / "existing_provider.py"), str(path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"same_provider": True, "app_spans": len(EXPECTED_TREE)}
    lines = path.read_text().splitlines()
    resources = {
        attr["value"]["stringValue"]
        for line in lines
        for rs in json.loads(line)["resourceSpans"]
        for attr in rs["resource"]["attributes"]
        if attr["key"] == "service.name"
    }
    assert resources == {"my-app"}
