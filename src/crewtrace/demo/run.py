"""``crewtrace demo``: run the offline demo crew under crewtrace and print its trace summary."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlparse

from opentelemetry.sdk.environment_variables import OTEL_SERVICE_NAME

from crewtrace.setup.exporters import configured_endpoint

# CrewAI reads these at import time: no phone-home, no consent prompt, storage out of the user's home; and
# litellm (which older crewai imports) would fetch its price map from the internet at import.
_CREWAI_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_TESTING": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
_LOCAL_PORTS = (("grpc", 4317), ("http/protobuf", 4318))


@dataclass
class DemoResult:
    trace_id: str
    destinations: list[str]
    output: str


def _listening(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _reachable(endpoint: str) -> bool:
    """Whether something accepts TCP connections at an OTLP endpoint URL (or host:port)."""
    parsed = urlparse(endpoint if "://" in endpoint else f"//{endpoint}")
    try:
        with socket.create_connection((parsed.hostname or "localhost", parsed.port or 4317), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


def choose_export(endpoint: str | None, file_path: str | None) -> dict[str, str]:
    """instrument() arguments: a configured or locally listening OTLP endpoint, else the JSON-lines file."""
    if file_path:
        return {"exporter": "file", "file_path": file_path}
    if endpoint:
        return {"exporter": "otlp", "endpoint": endpoint}
    if configured_endpoint():
        return {"exporter": "otlp"}
    for protocol, port in _LOCAL_PORTS:
        if _listening(port):
            return {"exporter": "otlp", "protocol": protocol, "endpoint": f"http://localhost:{port}"}
    return {"exporter": "file", "file_path": os.path.abspath("crewtrace-traces.jsonl")}


def run_demo(
    out: TextIO, endpoint: str | None = None, file_path: str | None = None, report_dir: str | None = None
) -> DemoResult:
    """Run the demo crew once, export its trace, and write the summary to ``out`` (and the run's web page to
    ``report_dir``, if given)."""
    for key, value in _CREWAI_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("CREWAI_STORAGE_DIR", tempfile.mkdtemp(prefix="crewtrace-demo-"))

    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import crewtrace
    from crewtrace.demo.crew import build_demo_crew
    from crewtrace.report.records import records_from_sdk
    from crewtrace.report.render import render_text
    from crewtrace.report.summary import summarize

    export: dict[str, Any] = dict(choose_export(endpoint, file_path))
    target = export.get("endpoint") or configured_endpoint()
    unreachable = export["exporter"] == "otlp" and bool(target) and not _reachable(str(target))
    if unreachable:
        export["timeout"] = 2  # nobody to deliver to: give up quickly rather than hold the demo's exit
    handle = crewtrace.instrument(service_name=os.environ.get(OTEL_SERVICE_NAME) or "crewtrace-demo", **export)
    memory = InMemorySpanExporter()  # the summary reads the same spans that were exported
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    try:
        build_demo_crew().kickoff()
        flushed = handle.force_flush(10_000)
    finally:
        handle.shutdown()
    summary = summarize(records_from_sdk(memory.get_finished_spans()))
    where = "; ".join(handle.destinations)
    if unreachable:
        where += " (nothing is listening there: the spans were not delivered)"
    elif not flushed:
        where += " (export timed out)"
    extra = {"Exported to": where}
    if report_dir:
        from pathlib import Path

        from crewtrace.report.site import write_site

        extra["Report"] = str(write_site([summary], Path(report_dir)).resolve())
    text = render_text(summary, extra)
    out.write(text + "\n")
    return DemoResult(summary.trace_id, handle.destinations, text)
