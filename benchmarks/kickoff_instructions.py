"""Bytecode instructions one whole kickoff executes, in every thread, with a variant's instrumentation:
``python -m benchmarks.kickoff_instructions VARIANT ENDPOINT [WORKLOAD]`` prints one JSON line.

CPU time on a shared machine moves by more than a tracer's overhead from run to run; this count does not. It
covers the kickoff and its export (the batching processor's thread and the OTLP/gRPC exporter's Python code,
to the driver's receiver), as the overhead table's CPU time does. Each instruction is counted to an owner by
the code it runs in: the instrumentation's own package, OpenTelemetry (the SDK, exporter, gRPC and protobuf
Python code), or the rest (CrewAI, the benchmark, and what an instrumentation makes CrewAI do); code of
neither (the standard library, pydantic, …) counts to the owner of the code that called it. Work in C (JSON
encoding, regular expressions, protobuf serialisation) is not an instruction and is not counted.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from benchmarks.isolation import environment
from benchmarks.listener_cost import nearest_owner

os.environ.update(environment())

from benchmarks.worker import instrument, pipeline, recorded_spans, replay
from benchmarks.workloads import WORKLOADS

OWN_CODE = {  # where each variant's instrumentation lives (a path fragment of its files)
    "crewtrace": os.sep + "crewtrace" + os.sep,
    "openinference": os.sep + "openinference" + os.sep,
    "openinference_events": os.sep + "openinference" + os.sep,
    "openllmetry": os.sep.join(("", "opentelemetry", "instrumentation", "crewai", "")),
}
_OTEL = tuple(os.sep + name + os.sep for name in ("opentelemetry", "grpc", "protobuf"))
_REST = tuple(os.sep + name + os.sep for name in ("crewai", "benchmarks"))
_WORKLOAD_CODE = os.sep.join(("crewtrace", "offline_llm.py"))  # the workloads' LLM: crewtrace ships it, not tracing
OWNERS = ("own", "sdk", "rest")


class Counting:
    """Per-thread instruction counters by owner; counts only while ``on``."""

    def __init__(self, own_code: str | None) -> None:
        self._own_code = own_code
        self._files: dict[str, str | None] = {}
        self._cells: list[dict[str, int]] = []
        self.on = False

    def _owner_of(self, filename: str) -> str | None:
        owner = self._files.get(filename, "")
        if owner == "":
            owner = None
            if _WORKLOAD_CODE in filename:
                owner = "rest"
            elif self._own_code is not None and self._own_code in filename:
                owner = "own"
            elif any(part in filename for part in _REST):
                owner = "rest"
            elif any(part in filename for part in _OTEL):
                owner = "sdk"
            self._files[filename] = owner
        return owner

    def tracer(self) -> Callable[[Any, str, Any], Any]:
        """A global trace function for one thread, with that thread's own counters."""
        cell = dict.fromkeys(OWNERS, 0)
        self._cells.append(cell)
        counting = self

        def local_for(owner: str) -> Callable[[Any, str, Any], Any]:
            def local(frame: Any, event: str, arg: Any) -> Any:
                if event == "opcode" and counting.on:
                    cell[owner] += 1
                return local

            return local

        locals_ = {owner: local_for(owner) for owner in OWNERS}

        def on_call(frame: Any, event: str, arg: Any) -> Any:
            frame.f_trace_opcodes = True
            return locals_[nearest_owner(frame, self._owner_of) or "rest"]

        return on_call

    def totals(self) -> dict[str, int]:
        return {owner: sum(cell[owner] for cell in self._cells) for owner in OWNERS}

    def reset(self) -> None:
        for cell in self._cells:
            cell.update(dict.fromkeys(OWNERS, 0))


def count(variant: str, endpoint: str, workload: str = "demo") -> dict[str, Any]:
    """The instructions of the third kickoff of ``workload`` (two warm it up), with its export."""
    counting = Counting(OWN_CODE.get(variant))

    def thread_start(frame: Any, event: str, arg: Any) -> Any:
        local = counting.tracer()
        sys.settrace(local)
        return local(frame, event, arg)

    threading.settrace(thread_start)  # before the export thread starts, so that it is counted too
    floor = recorded_spans(workload) if variant == "sdk_floor" else None
    provider, _, processor = pipeline(endpoint)
    instrument(variant, provider)
    tracer = provider.get_tracer("crewtrace")
    sys.settrace(counting.tracer())
    try:
        for counted in (False, False, True):
            crew = WORKLOADS[workload]()
            counting.reset()
            counting.on = counted
            crew.kickoff()
            if floor is not None:
                replay(tracer, floor)
            processor.force_flush(30_000)
            counting.on = False
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
    totals = counting.totals()
    provider.shutdown()
    return {"variant": variant, "workload": workload, "total": sum(totals.values()), **totals}


if __name__ == "__main__":
    print(json.dumps(count(*sys.argv[1:4])), flush=True)
