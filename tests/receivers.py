"""Real OTLP receivers on 127.0.0.1 (gRPC Trace and Metrics services, HTTP /v1/traces and /v1/metrics),
built from opentelemetry-proto."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from crewtrace.report.records import SpanRecord, otlp_value, records_from_otlp
from tests.local_http import LocalHTTPServer, QuietHandler


def attributes_of(attrs: Any) -> dict[str, Any]:
    """Protobuf KeyValues as a dict, decoded by crewtrace's own OTLP reader."""
    return {kv.key: otlp_value(MessageToDict(kv.value)) for kv in attrs}


class _Receiver:
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.metric_requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self._lock = threading.Lock()

    def _keep_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self._lock:
            self.metric_requests.append(request)

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of metric ``name`` in the latest export that has it (cumulative totals)."""
        with self._lock:
            requests = list(self.metric_requests)
        for request in reversed(requests):
            points = [
                (attributes_of(point.attributes), point)
                for rm in request.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
                if metric.name == name
                for point in getattr(metric, metric.WhichOneof("data")).data_points
            ]
            if points:
                return points
        return []

    def metric_units(self) -> dict[str, str]:
        """Every metric name received, with its unit."""
        with self._lock:
            requests = list(self.metric_requests)
        return {
            metric.name: metric.unit
            for request in requests
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        }

    def _keep(self, request: trace_service_pb2.ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, protobuf Span) for every span received so far."""
        with self._lock:
            requests = list(self.requests)
        return [
            (attributes_of(rs.resource.attributes), span)
            for request in requests
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def records(self) -> list[SpanRecord]:
        """Every span received so far, read by crewtrace's own OTLP reader."""
        with self._lock:
            requests = list(self.requests)
        return [record for request in requests for record in records_from_otlp(MessageToDict(request))]

    def wait_for_spans(self, count: int, timeout: float = 15.0) -> list[SpanRecord]:
        """Wait (bounded) until at least ``count`` spans arrived; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.spans()) >= count:
                break
            time.sleep(0.05)
        return self.records()


class GrpcReceiver(_Receiver):
    """OTLP/gRPC Trace and Metrics services on 127.0.0.1 (a free port unless ``port`` is given)."""

    def __init__(self, port: int = 0, refuse_with: grpc.StatusCode | None = None) -> None:
        super().__init__()
        receiver = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                if refuse_with is not None:
                    context.abort(refuse_with, "refused by the test receiver")
                receiver._keep(request, {k: v for k, v in context.invocation_metadata()})
                return trace_service_pb2.ExportTraceServiceResponse()

        class MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._keep_metrics(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsServicer(), self._server)
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.stop(grace=None).wait(5)


class HttpReceiver(_Receiver):
    """OTLP/HTTP (protobuf) /v1/traces and /v1/metrics on a free 127.0.0.1 port. ``max_body`` refuses larger
    requests with 413, as the Collector's receiver does; ``status`` answers every trace request with it."""

    def __init__(self, max_body: int | None = None, status: int | None = None) -> None:
        super().__init__()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                if max_body is not None and length > max_body:
                    self.rfile.read(length)  # read it all, so the client sees the answer, not a reset
                    self.reply(413)
                    return
                if status is not None and self.path == "/v1/traces":
                    self.reply(status)
                    return
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/metrics":
                    receiver._keep_metrics(metrics_service_pb2.ExportMetricsServiceRequest.FromString(body))
                    payload = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
                elif self.path == "/v1/traces":
                    request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
                    receiver._keep(request, {k.lower(): v for k, v in self.headers.items()})
                    payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                else:
                    self.reply(404)
                    return
                self.reply(200, payload, "application/x-protobuf")

        self._http = LocalHTTPServer(Handler)
        self.port = self._http.port
        self.endpoint = self._http.base_url

    def __enter__(self) -> HttpReceiver:
        self._http.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.__exit__(*exc)


class Blackhole:
    """A TCP server on 127.0.0.1 that accepts connections and never answers: a hung collector."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                self._held.append(self._sock.accept()[0])
            except OSError:
                continue

    def __enter__(self) -> Blackhole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()
