"""Memory over a long life: ``python -m benchmarks.long_life [--kickoffs N] [--variant crewtrace|none]``.

One process runs N kickoffs (default 10,000) of a small crew, one after another, each with a fresh Crew object
of the same name, as a service handling requests does. With ``crewtrace`` (the default) it is instrumented by
``crewtrace.instrument()`` with its default pipeline: batching processor and OTLP/gRPC span and metric
exporters, to a local receiver in this process that only counts what it gets (it keeps nothing, so its
memory stays out of the measurement). ``none`` runs the same kickoffs uninstrumented, for comparison.

tracemalloc runs from the start. After a warm-up (lazy imports, caches: 300 kickoffs), and then every N/20
kickoffs, the spans are flushed, garbage is collected, and the traced size and the RSS (/proc/self/status)
are sampled. Prints one JSON line: the samples, the least-squares slope over them (bytes per kickoff), and
the five sites (filename:lineno, or a traceback with ``--frames`` > 1) whose traced size grew most from the
first sample to the last. Progress, one sample a line, goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.isolation import environment

os.environ.update(environment())
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch its price map at import

import grpc
from crewai import Agent, Crew, Task
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from crewtrace.demo.crew import NotebookTool
from crewtrace.offline_llm import OfflineLLM

SAMPLES = 20
# STEP: on CPython 3.11 the traced size steps up once, by 3,844,800 bytes, 500-1000 kickoffs in, with or
# without crewtrace: one block, exactly the key table of a str-keyed dict of 2**18 slots, allocated by whatever
# call interns a new string at that moment (pathlib's sys.intern(), or time.get_clock_info() in the
# asyncio.new_event_loop() CrewAI makes for every task prompt), and no object reachable from Python is that
# large. It is the interpreter's interned-strings dict, rebuilt (churn fills its slots) for the first time since
# tracemalloc started; later rebuilds replace it by one of the same size. Not growth: the late slope leaves it out.


class CountingReceiver:
    """OTLP/gRPC Trace and Metrics services on 127.0.0.1 that count spans and metric requests, and keep nothing."""

    def __init__(self) -> None:
        self.spans = 0
        self.metric_requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method's name
                n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
                with receiver._lock:
                    receiver.spans += n
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                with receiver._lock:
                    receiver.metric_requests += 1
                return metrics_service_pb2.ExportMetricsServiceResponse()

        self._server = grpc.server(ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._server)
        self.endpoint = f"http://127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self) -> CountingReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.stop(grace=None).wait(5)


def crew() -> Crew:
    """One agent with a tool, one task: crew, task, agent, two LLM calls and a tool call (6 spans)."""
    agent = Agent(role="Analyst", goal="g", backstory="b", llm=OfflineLLM(), tools=[NotebookTool()])
    task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
    return Crew(name="long-life", agents=[agent], tasks=[task])


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else float("nan")


_NOT_MEASURED = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


def growth_sites(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, frames: int) -> list[dict[str, Any]]:
    """The five sites whose traced size grew most between two snapshots."""
    key = "traceback" if frames > 1 else "lineno"
    diffs = last.filter_traces(_NOT_MEASURED).compare_to(first.filter_traces(_NOT_MEASURED), key)
    top = sorted(diffs, key=lambda d: d.size_diff, reverse=True)[:5]
    return [
        {
            "site": " <- ".join(f"{f.filename}:{f.lineno}" for f in d.traceback),
            "size_diff": d.size_diff,
            "count_diff": d.count_diff,
            "size": d.size,
            "count": d.count,
        }
        for d in top
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.long_life", description=__doc__.splitlines()[0])
    parser.add_argument("--kickoffs", type=int, default=10_000, help="kickoffs in all, warm-up included")
    # 300: past CrewAI's lru_cache(maxsize=256) of event handlers' parameter counts, which holds on to the one
    # usage handler (a closure with its UsageMetrics) each kickoff registers: it grows for 256 kickoffs, then not.
    parser.add_argument("--warmup", type=int, default=300, help="kickoffs before the first sample")
    parser.add_argument("--variant", choices=("crewtrace", "none"), default="crewtrace")
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames kept per allocation")
    args = parser.parse_args(argv)
    if args.kickoffs <= args.warmup:
        parser.error("--kickoffs must be more than --warmup")
    step = max(args.kickoffs // SAMPLES, 1)
    due = sorted({args.warmup, *range(step, args.kickoffs + 1, step), args.kickoffs} - set(range(args.warmup)))

    with CountingReceiver() as receiver:
        handle = None
        if args.variant == "crewtrace":
            import crewtrace

            handle = crewtrace.instrument(endpoint=receiver.endpoint, service_name="long-life")
        tracemalloc.start(args.frames)
        started = time.perf_counter()
        samples: list[dict[str, Any]] = []
        first = last = None
        expected = crew().kickoff().raw
        unexpected = 0
        for k in range(1, args.kickoffs + 1):
            if k > 1 and crew().kickoff().raw != expected:
                unexpected += 1
            if k not in due:
                continue
            flushed = handle.force_flush(30_000) if handle is not None else True
            gc.collect()
            if first is None:  # held to the end: every sample counts it, so it adds no slope
                first = tracemalloc.take_snapshot()
            samples.append(
                {
                    "kickoff": k,
                    "traced_bytes": tracemalloc.get_traced_memory()[0],
                    "rss_bytes": rss_bytes(),
                    "seconds": round(time.perf_counter() - started, 1),
                    "flushed": flushed,
                }
            )
            print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
            if k == args.kickoffs:
                last = tracemalloc.take_snapshot()  # after the last sample was measured
        seconds = time.perf_counter() - started
        assert first is not None and last is not None
        sites = growth_sites(first, last, args.frames)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if handle is not None:
            handle.force_flush(30_000)
            handle.shutdown()
        spans = receiver.spans
    late = samples[len(samples) // 2 :]

    print(
        json.dumps(
            {
                "variant": args.variant,
                "kickoffs": args.kickoffs,
                "warmup": args.warmup,
                "seconds": round(seconds, 1),
                "ms_per_kickoff": round(seconds * 1e3 / args.kickoffs, 2),
                "unexpected_results": unexpected,
                "spans_received": spans,
                "spans_per_kickoff": spans / args.kickoffs,
                "samples": samples,
                "traced_slope_bytes_per_kickoff": slope([(s["kickoff"], s["traced_bytes"]) for s in samples]),
                "rss_slope_bytes_per_kickoff": slope([(s["kickoff"], s["rss_bytes"]) for s in samples]),
                # The second half alone: a one-off step early on (see STEP) weighs on the slope above, not here.
                "traced_late_slope_bytes_per_kickoff": slope([(s["kickoff"], s["traced_bytes"]) for s in late]),
                "rss_late_slope_bytes_per_kickoff": slope([(s["kickoff"], s["rss_bytes"]) for s in late]),
                "traced_growth_bytes": samples[-1]["traced_bytes"] - samples[0]["traced_bytes"],
                "traced_peak_bytes": peak,
                "top_growth": sites,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
