"""The benchmark harness: ``python -m benchmarks.run [--quick] [--write]`` (see ``./scripts/bench``).

1. Overhead per kickoff of each variant against no instrumentation, workers interleaved round by round,
   medians of paired differences, spans emitted, LLM calls made, OTLP bytes sent, overhead per span.
2. Scaling of the overhead with crew size, and crowds: 16 crews kicked off at once on threads.
3. Listener cost per CrewAI event kind, in CPU time and in bytecode instructions (crewtrace's own, the SDK's);
   bytecode instructions of a whole demo kickoff and its export, per variant.
4. Repeated text in crewtrace's spans; export throughput of its default pipeline (information only).
5. Memory per in-flight crew, and memory over a long life (10,000 kickoffs in one process).
6. Seconds ``crewtrace summary``, ``runs`` and ``report`` take on hostile files (one huge word, many tasks).
Results go to stdout, and with ``--write`` to docs/benchmarks.md and docs/benchmarks.png.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from benchmarks.listener_cost import demo_instructions, floor_instructions, instructions_per_event, per_event_cost

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("none", "crewtrace", "sdk_floor", "openinference", "openinference_events", "openllmetry")
ALTERNATIVES = ("openinference", "openinference_events", "openllmetry")
# Measured rounds per workload (full run): a kickoff's CPU time varies by ~10% between rounds on this kind of
# machine, so a median paired difference of a few ms needs on the order of a hundred rounds.
ROUNDS = {"demo": 150, "twenty_tasks": 30, "hierarchical": 100}
CROWD = (16, "demo")  # crews kicked off at once, and their workload
CROWD_ROUNDS = 80
DISTRIBUTIONS = {
    "crewtrace": "crewtrace",
    "openinference": "openinference-instrumentation-crewai",
    "openllmetry": "opentelemetry-instrumentation-crewai",
}


class Sink:
    """Local OTLP receivers that accept and count spans and their OTLP-encoded bytes: gRPC and HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0  # OTLP protobuf bytes of every export request received
        self._lock = threading.Lock()
        sink = self

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method's name
                sink._count(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink._count(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._grpc = grpc.server(ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self._grpc)
        self.grpc_endpoint = f"http://127.0.0.1:{self._grpc.add_insecure_port('127.0.0.1:0')}"
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_endpoint = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _count(self, request: Any) -> None:
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        size = request.ByteSize()
        with self._lock:
            self.spans += n
            self.bytes += size

    def __enter__(self) -> Sink:
        self._grpc.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._grpc.stop(grace=None).wait(5)
        self._http.shutdown()
        self._http.server_close()


class Worker:
    """A variant's long-lived process (benchmarks/worker.py)."""

    def __init__(self, variant: str, endpoint: str) -> None:
        self.variant = variant
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the worker writes to it for its whole life
            prefix=f"crewtrace-bench-{variant}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", variant, endpoint],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.ready = self._read() is not None

    def _read(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        for _ in range(10_000):  # skip anything a library prints; bounded
            line = self.proc.stdout.readline()
            if not line:
                return None
            if line.startswith("{"):
                return json.loads(line)
        return None

    def run(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        result = self._read()
        if result is None:
            tail = Path(self.log.name).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.variant} worker died on {command!r}; its log ends:\n{tail}")
        if result.get("errors"):
            raise RuntimeError(f"{self.variant} worker failed {command!r}: {result['errors'][:3]}")
        return result

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def interleaved(
    workers: Sequence[Worker], command: str, rounds: int, warmup: int, sink: Sink | None = None
) -> dict[str, list[dict]]:
    """Each round runs every variant once, in a rotated order; the first ``warmup`` rounds are discarded.

    With ``sink``, each outcome also holds the OTLP bytes its kickoff sent: a worker answers only after its
    export returned, so what the sink received meanwhile is that variant's."""
    results: dict[str, list[dict]] = {w.variant: [] for w in workers}
    for r in range(warmup + rounds):
        order = list(workers[r % len(workers) :]) + list(workers[: r % len(workers)])
        for worker in order:
            received = sink.bytes if sink is not None else 0
            outcome = worker.run(command)
            if sink is not None:
                outcome["bytes"] = sink.bytes - received
            if r >= warmup:
                results[worker.variant].append(outcome)
    return results


def median_ci(values: Sequence[float], resamples: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap confidence interval of the median (seeded: the same data gives the same interval)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    draw = random.Random(0)
    medians = sorted(statistics.median(draw.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]


def ratio_ci(numerator: Sequence[float], denominator: Sequence[float], resamples: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval of median(numerator) / median(denominator), the two resampled independently."""
    draw = random.Random(0)
    ratios = []
    for _ in range(resamples):
        below = statistics.median(draw.choices(denominator, k=len(denominator)))
        above = statistics.median(draw.choices(numerator, k=len(numerator)))
        ratios.append(above / below if below > 0 else math.inf)
    ratios.sort()
    return ratios[int(resamples * 0.025)], ratios[int(resamples * 0.975) - 1]


def cpu_diffs(results: dict[str, list[dict]], variant: str) -> list[float]:
    """CPU seconds ``variant`` took more than ``none`` in each round."""
    return [r["cpu"] - b["cpu"] for r, b in zip(results[variant], results["none"], strict=True)]


def overhead(results: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Per variant: median CPU and wall per kickoff, median paired difference to ``none`` with its 95%
    confidence interval, spans, LLM calls, OTLP bytes (per kickoff and per LLM call), and CPU per span."""
    base = results["none"]
    table = {}
    for variant, runs in results.items():
        diffs = cpu_diffs(results, variant)
        cpu_diff = statistics.median(diffs)
        low, high = median_ci(diffs)
        wall_diff = statistics.median(r["wall"] - b["wall"] for r, b in zip(runs, base, strict=True))
        spans = statistics.median(r["spans"] for r in runs)
        calls = statistics.median(r.get("llm_calls", 0) for r in runs)
        sent = statistics.median(r.get("bytes", 0) for r in runs)
        table[variant] = {
            "cpu_ms": statistics.median(r["cpu"] for r in runs) * 1e3,
            "wall_ms": statistics.median(r["wall"] for r in runs) * 1e3,
            "cpu_overhead_ms": cpu_diff * 1e3,
            "cpu_overhead_ci_ms": (low * 1e3, high * 1e3),
            "wall_overhead_ms": wall_diff * 1e3,
            "spans": spans,
            "us_per_span": (cpu_diff * 1e6 / spans) if spans else float("nan"),
            "otlp_bytes": sent,
            "llm_calls": calls,
            "bytes_per_llm_call": sent / calls if calls else float("nan"),
            "rounds": len(runs),
        }
    return table


def throughput(sink: Sink, quick: bool) -> list[dict[str, Any]]:
    rows = []
    count = 20_000 if quick else 100_000
    for protocol, endpoint in (("grpc", sink.grpc_endpoint), ("http/protobuf", sink.http_endpoint)):
        for rate in (0,) if quick else (5_000, 10_000, 15_000, 20_000, 0):  # where does it start dropping?
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.throughput", protocol, endpoint, str(rate), str(count)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"protocol": protocol, "target": rate or "max", "spans": count, **result})
    return rows


def _json_of(module: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``python -m module args`` and read the JSON line it ends with."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def export_costs() -> dict[str, float]:
    """CPU µs per span of producing, encoding and serialising it (benchmarks/throughput.py costs)."""
    return _json_of("benchmarks.throughput", "costs")


def memory(quick: bool) -> dict[str, Any]:
    """Memory per in-flight crew: what crewtrace adds while ``crews`` crews wait mid-run (benchmarks/memory.py),
    from the difference between two crew counts, so that what does not grow with the crews cancels out."""
    few, many = (2, 6) if quick else (10, 30)
    held = {
        (v, n): _json_of("benchmarks.memory", v, str(n))["bytes"] for v in ("none", "crewtrace") for n in (few, many)
    }
    extra = {n: held[("crewtrace", n)] - held[("none", n)] for n in (few, many)}
    return {
        "crews": [few, many],
        "per_crew_bytes": (extra[many] - extra[few]) / (many - few),
        "crewai_per_crew_bytes": (held[("none", many)] - held[("none", few)]) / (many - few),
    }


def long_life(quick: bool) -> dict[str, Any]:
    """Memory over many kickoffs in one process, with crewtrace and without (benchmarks/long_life.py)."""
    args = ("--kickoffs", "60", "--warmup", "20") if quick else ("--kickoffs", "10000")
    return {v: _json_of("benchmarks.long_life", "--variant", v, *args, timeout=3600) for v in ("crewtrace", "none")}


def scaling(workers: Sequence[Worker], quick: bool) -> list[dict[str, Any]]:
    grid = (
        [(1, 2), (10, 2), (25, 2)]
        if quick
        else [(1, 2), (10, 2), (25, 2), (50, 2), (100, 2), (10, 10), (10, 25), (10, 50)]
    )
    rounds = 1 if quick else 10
    rows = []
    pair = [w for w in workers if w.variant in ("none", "crewtrace")]  # sdk_floor replays only whole workloads
    for tasks, calls in grid:
        table = overhead(interleaved(pair, f"scaled {tasks} {calls}", rounds, 1))["crewtrace"]
        rows.append({"tasks": tasks, "calls": calls, **table})
    for row, counted in zip(rows, instructions_per_event(grid), strict=True):
        for unit in ("event", "span"):
            for owner in ("", "_own", "_sdk"):
                row[f"instructions_per_{unit}{owner}"] = counted[f"per_{unit}{owner}"]
    return rows


def crowds(workers: Sequence[Worker], single: dict[str, list[dict]], quick: bool, sink: Sink) -> dict[str, Any]:
    """crewtrace's CPU overhead per kickoff when CROWD crews run at once on threads, against its overhead for one
    crew alone (``single``: the same workload's rounds of this run), with the ratio and its 95% interval."""
    crews, workload = CROWD
    pair = [w for w in workers if w.variant in ("none", "crewtrace")]
    if len(pair) < 2 or "crewtrace" not in single:
        return {}
    results = interleaved(pair, f"crowd {crews} {workload}", 2 if quick else CROWD_ROUNDS, 1 if quick else 3, sink)
    row = overhead(results)["crewtrace"]
    per_kickoff = [d / crews for d in cpu_diffs(results, "crewtrace")]
    alone = cpu_diffs(single, "crewtrace")
    low, high = median_ci(per_kickoff)
    solo_low, solo_high = median_ci(alone)
    ratio = statistics.median(per_kickoff) / statistics.median(alone) if statistics.median(alone) > 0 else math.inf
    return {
        "crews": crews,
        "workload": workload,
        "rounds": row["rounds"],
        "crowd": row,
        "per_kickoff_ms": statistics.median(per_kickoff) * 1e3,
        "per_kickoff_ci_ms": (low * 1e3, high * 1e3),
        "single_ms": statistics.median(alone) * 1e3,
        "single_ci_ms": (solo_low * 1e3, solo_high * 1e3),
        "ratio": ratio,
        "ratio_ci": ratio_ci(per_kickoff, alone),
    }


def kickoff_instructions(variants: Sequence[str], sink: Sink, spans: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Bytecode instructions of one whole demo kickoff and its export per variant, each in a process of its own
    (benchmarks/kickoff_instructions.py), and what each adds to no instrumentation's, in total and per span."""
    counted = {v: _json_of("benchmarks.kickoff_instructions", v, sink.grpc_endpoint, "demo") for v in variants}
    none = counted.get("none", {}).get("total")
    for variant, row in counted.items():
        row["added"] = row["total"] - none if none is not None else math.nan
        made = spans.get(variant, {}).get("spans") or 0
        row["added_per_span"] = row["added"] / made if made else math.nan
    return counted


def versions() -> dict[str, str]:
    found = {}
    for name in ("crewai", "opentelemetry-sdk", *DISTRIBUTIONS.values()):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (a smoke run, as in CI)")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md and docs/benchmarks.png")
    args = parser.parse_args(argv)
    warmup = 1 if args.quick else 3
    rounds = {workload: 3 if args.quick else n for workload, n in ROUNDS.items()}
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()}",
        "versions": versions(),
        "rounds": rounds,
    }
    with Sink() as sink:
        workers = [Worker(v, sink.grpc_endpoint) for v in VARIANTS]
        live = [w for w in workers if w.ready]
        report["missing"] = [w.variant for w in workers if not w.ready]
        try:
            raw = {w: interleaved(live, f"run {w}", rounds[w], warmup, sink) for w in ROUNDS}
            report["overhead"] = {workload: overhead(results) for workload, results in raw.items()}
            report["scaling"] = scaling(live, args.quick)
            report["crowds"] = crowds(live, raw[CROWD[1]], args.quick, sink)
        finally:
            for worker in workers:
                worker.close()
        report["listener"] = per_event_cost(repeats=3 if args.quick else 30)
        report["instructions"] = {"demo": demo_instructions(), "sdk_floor": floor_instructions("demo")}
        report["kickoff_instructions"] = kickoff_instructions(
            [w.variant for w in live], sink, report["overhead"]["demo"]
        )
        report["throughput"] = throughput(sink, args.quick)
    report["export_costs"] = export_costs()
    report["span_checks"] = _json_of("benchmarks.span_checks")
    report["memory"] = memory(args.quick)
    report["long_life"] = long_life(args.quick)
    report["hostile_reads"] = _json_of("benchmarks.hostile_reads", *(["--quick"] if args.quick else []))
    print(json.dumps(report, indent=2))
    if args.write:
        from benchmarks.report import write

        write(report, ROOT / "docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
