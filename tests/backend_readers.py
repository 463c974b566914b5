"""Reading traces back through each third-party backend's own API (Phoenix, MLflow), in one shape."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crewtrace.report.records import otlp_value
from tests.processes import BackendError, Server, http_get, http_json, settle

# ---------------------------------------------------------------------------------------------------------------
# Reading traces back through each backend's own API


@dataclass(frozen=True)
class SeenSpan:
    """A span as a backend stored it, in one shape for every backend."""

    span_id: str  # 16 hex digits
    parent_id: str | None
    name: str
    start_ns: int
    status: str  # UNSET, OK or ERROR
    status_message: str
    kind: str  # the backend's own classification: Phoenix's span_kind, MLflow's span type
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]

    def exception_events(self) -> list[dict[str, Any]]:
        return [attributes for name, attributes in self.events if name == "exception"]


@dataclass(frozen=True)
class TokenTotals:
    """One per-trace token total as a backend computes it, with where it came from."""

    source: str
    input: int | None
    output: int | None
    total: int | None


INGEST_TIMEOUT = 60.0  # from the exporter's flush to every span readable through the backend's API


class PhoenixReader:
    """Phoenix's REST API (``/v1/projects/{project}/spans``, ``/traces``) and its GraphQL API."""

    def __init__(self, server: Server, project: str) -> None:
        self.base = server.base_url()
        self.project = project

    def spans(self, trace_id: str) -> list[SeenSpan]:
        """Every stored span of the trace (404, an unknown project, counts as none yet)."""
        query = urllib.parse.urlencode({"trace_id": trace_id, "limit": 1000})
        status, body = http_get(f"{self.base}/v1/projects/{self.project}/spans?{query}")
        if status == 404:
            return []
        if status != 200:
            raise BackendError(f"phoenix spans: HTTP {status}: {body[:2000]!r}")
        return [self._span(raw) for raw in json.loads(body)["data"]]

    def wait_for_spans(self, trace_id: str, count: int, timeout: float = INGEST_TIMEOUT) -> list[SeenSpan]:
        return settle(lambda: self.spans(trace_id), lambda spans: len(spans) >= count, timeout)

    @staticmethod
    def _span(raw: dict[str, Any]) -> SeenSpan:
        start = datetime.fromisoformat(raw["start_time"]).astimezone(UTC)
        return SeenSpan(
            span_id=raw["context"]["span_id"],
            parent_id=raw.get("parent_id") or None,
            name=raw["name"],
            start_ns=(start - _EPOCH) // _MICROSECOND * 1000,
            status=raw["status_code"],
            status_message=raw.get("status_message") or "",
            kind=raw["span_kind"],
            attributes=raw.get("attributes") or {},
            events=[(event["name"], event.get("attributes") or {}) for event in raw.get("events") or []],
        )

    def trace_summary(self, trace_id: str) -> dict[str, Any]:
        """The REST trace record (``token_count_*``) and GraphQL's trace and root-span figures, raw."""
        traces = http_json(f"{self.base}/v1/projects/{self.project}/traces?limit=1000")["data"]
        rest = next((t for t in traces if t["trace_id"] == trace_id), None)
        projects = http_json(f"{self.base}/v1/projects?limit=1000")["data"]
        project_id = next((p["id"] for p in projects if p["name"] == self.project), None)
        query = """
        query ($project: ID!, $trace: ID!) {
          node(id: $project) {
            ... on Project {
              tokenCountTotal tokenCountPrompt tokenCountCompletion
              trace(traceId: $trace) {
                numSpans errorCount
                errorsByType { exceptionType count }
                costSummary { prompt { tokens cost } completion { tokens cost } total { tokens cost } }
                rootSpan {
                  name spanId
                  cumulativeTokenCountTotal cumulativeTokenCountPrompt cumulativeTokenCountCompletion
                  propagatedStatusCode
                }
              }
            }
          }
        }"""
        answer = http_json(
            f"{self.base}/graphql", {"query": query, "variables": {"project": project_id, "trace": trace_id}}
        )
        if answer.get("errors"):
            raise BackendError(f"phoenix graphql errors: {answer['errors']}")
        return {"rest": rest, "project": answer["data"]["node"]}

    @staticmethod
    def token_totals(summary: dict[str, Any]) -> list[TokenTotals]:
        """Phoenix's own per-trace token totals, each from a different query path."""
        rest, project = summary["rest"] or {}, summary["project"] or {}
        graph = project.get("trace") or {}
        root = graph.get("rootSpan") or {}
        cost = graph.get("costSummary") or {}
        return [
            TokenTotals(
                "REST /v1/projects/{p}/traces token_count_* (sum over the trace's LLM-kind spans)",
                _int(rest.get("token_count_prompt")),
                _int(rest.get("token_count_completion")),
                _int(rest.get("token_count_total")),
            ),
            TokenTotals(
                "GraphQL trace.rootSpan.cumulativeTokenCount* (the root's own plus its descendants' LLM-kind counts)",
                _int(root.get("cumulativeTokenCountPrompt")),
                _int(root.get("cumulativeTokenCountCompletion")),
                _int(root.get("cumulativeTokenCountTotal")),
            ),
            TokenTotals(
                "GraphQL trace.costSummary.*.tokens (priced tokens of the trace)",
                _int((cost.get("prompt") or {}).get("tokens")),
                _int((cost.get("completion") or {}).get("tokens")),
                _int((cost.get("total") or {}).get("tokens")),
            ),
            TokenTotals(
                "GraphQL project.tokenCount* (LLM-kind spans without an LLM child; one trace per project here)",
                _int(project.get("tokenCountPrompt")),
                _int(project.get("tokenCountCompletion")),
                _int(project.get("tokenCountTotal")),
            ),
        ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _int(value: Any) -> int | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number  # a fractional count is reported as is


class MlflowReader:
    """The MLflow tracking server's REST API: ``GET /api/3.0/mlflow/traces/get`` (trace info and spans)."""

    def __init__(self, server: Server) -> None:
        self.base = server.base_url()

    @staticmethod
    def request_id(trace_id: str) -> str:
        return f"tr-{trace_id}"

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        query = urllib.parse.urlencode({"trace_id": self.request_id(trace_id)})
        status, body = http_get(f"{self.base}/api/3.0/mlflow/traces/get?{query}")
        if status == 404:
            return None
        if status != 200:
            raise BackendError(f"mlflow traces/get: HTTP {status}: {body[:2000]!r}")
        return json.loads(body)["trace"]

    def wait_for_trace(self, trace_id: str, count: int, timeout: float = INGEST_TIMEOUT) -> dict[str, Any] | None:
        return settle(
            lambda: self.trace(trace_id), lambda t: t is not None and len(t.get("spans", [])) >= count, timeout
        )

    @staticmethod
    def spans(trace: dict[str, Any] | None) -> list[SeenSpan]:
        return [MlflowReader._span(raw) for raw in (trace or {}).get("spans", [])]

    @staticmethod
    def _span(raw: dict[str, Any]) -> SeenSpan:
        attributes = {item["key"]: otlp_value(item.get("value", {})) for item in raw.get("attributes", [])}
        status = raw.get("status") or {}
        code = str(status.get("code") or "STATUS_CODE_UNSET").rsplit("_", 1)[-1]
        return SeenSpan(
            span_id=_hex_id(raw["span_id"]),
            parent_id=_hex_id(raw["parent_span_id"]) if raw.get("parent_span_id") else None,
            name=raw["name"],
            start_ns=int(raw["start_time_unix_nano"]),
            status=code,
            status_message=status.get("message") or "",
            kind=json_or_raw(attributes.get("mlflow.spanType")) or "",
            attributes=attributes,
            events=[
                (event.get("name", ""), {i["key"]: otlp_value(i.get("value", {})) for i in event.get("attributes", [])})
                for event in raw.get("events", [])
            ],
        )

    @staticmethod
    def token_totals(trace: dict[str, Any] | None) -> list[TokenTotals]:
        """The trace info's ``mlflow.trace.tokenUsage`` metadata (absent when no span reported usage)."""
        metadata = ((trace or {}).get("trace_info") or {}).get("trace_metadata") or {}
        raw = metadata.get("mlflow.trace.tokenUsage")
        usage = json.loads(raw) if raw else {}
        return [
            TokenTotals(
                f"trace_info.trace_metadata['mlflow.trace.tokenUsage'] = {raw!r}",
                usage.get("input_tokens"),
                usage.get("output_tokens"),
                usage.get("total_tokens"),
            )
        ]


def _hex_id(value: str) -> str:
    """MLflow returns ids as protobuf JSON bytes (base64); 16 or 32 hex digits pass through."""
    if len(value) in (16, 32) and all(c in "0123456789abcdef" for c in value):
        return value
    return base64.b64decode(value).hex()


def json_or_raw(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def phoenix_sessions(server: Server, project: str) -> dict[str, dict[str, Any]]:
    """Phoenix's Sessions view of a project, from its GraphQL API: session id -> user id and trace ids."""
    projects = http_json(f"{server.base_url()}/v1/projects?limit=1000")["data"]
    project_id = next((p["id"] for p in projects if p["name"] == project), None)
    if project_id is None:
        return {}
    query = """
    query ($project: ID!) {
      node(id: $project) {
        ... on Project {
          sessions(first: 100) {
            edges { node { sessionId userId numTraces traces(first: 100) { edges { node { traceId } } } } }
          }
        }
      }
    }"""
    answer = http_json(f"{server.base_url()}/graphql", {"query": query, "variables": {"project": project_id}})
    if answer.get("errors"):
        raise BackendError(f"phoenix graphql errors: {answer['errors']}")
    found = {}
    for edge in answer["data"]["node"]["sessions"]["edges"]:
        node = edge["node"]
        traces = sorted(t["node"]["traceId"] for t in node["traces"]["edges"])
        found[node["sessionId"]] = {"user_id": node["userId"], "num_traces": node["numTraces"], "traces": traces}
    return found
