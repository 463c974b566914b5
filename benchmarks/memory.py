"""Memory per in-flight crew: ``python -m benchmarks.memory VARIANT CREWS`` (VARIANT: none or crewtrace).

Starts CREWS crews in threads; each stops inside a tool call of its last task (crew, task, agent, LLM and
tool spans open, the earlier ones ended and queued for export), and while all of them wait, reports the
memory the process holds (tracemalloc, after a collection). The driver runs it with and without crewtrace:
the difference divided by CREWS is what tracing one running crew costs in memory.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import tracemalloc

from benchmarks.isolation import environment

os.environ.update(environment())

from crewai import Agent, Crew, Task
from crewai.tools import BaseTool
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from benchmarks.listener_cost import _Null
from crewtrace.offline_llm import OfflineLLM

_WAIT_SECONDS = 300  # bound on every wait


class _Gate:
    """Where the crews stop: counts arrivals, holds them until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._arrived = 0
        self._all_in = threading.Condition()

    def arrive(self) -> None:
        with self._all_in:
            self._arrived += 1
            self._all_in.notify_all()
        self.release.wait(_WAIT_SECONDS)

    def wait_for(self, count: int) -> bool:
        with self._all_in:
            return self._all_in.wait_for(lambda: self._arrived >= count, _WAIT_SECONDS)


GATE = _Gate()


class WaitingTool(BaseTool):
    """A tool that waits at the gate (the offline LLM calls an agent's first tool once per task)."""

    name: str = "wait_here"
    description: str = "Waits until released."

    def _run(self, topic: str) -> str:
        GATE.arrive()
        return "released"


def crew(n: int) -> Crew:
    llm = OfflineLLM()
    writer = Agent(role="Writer", goal="Write the note", backstory="Careful.", llm=llm)
    checker = Agent(role="Checker", goal="Check the note", backstory="Exact.", llm=llm, tools=[WaitingTool()])
    tasks = [
        Task(name="outline", description=f"Outline note {n}.", expected_output="An outline.", agent=writer),
        Task(name="write", description=f"Write note {n}.", expected_output="A note.", agent=writer),
        Task(name="check", description=f"Check note {n}.", expected_output="A verdict.", agent=checker),
    ]
    return Crew(name=f"in-flight-{n}", agents=[writer, checker], tasks=tasks)


def main() -> None:
    variant, count = sys.argv[1], int(sys.argv[2])
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Null()))
    GATE.release.set()
    crew(-1).kickoff()  # one full run first: lazy imports and caches are not the crews' memory
    GATE.release.clear()
    if variant == "crewtrace":
        from crewtrace import CrewAIInstrumentor

        CrewAIInstrumentor().instrument(tracer_provider=provider)
    gc.collect()
    tracemalloc.start()
    threads = [threading.Thread(target=crew(n).kickoff, daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    arrived = GATE.wait_for(count)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    GATE.release.set()
    for thread in threads:
        thread.join(_WAIT_SECONDS)
    tracemalloc.stop()
    provider.shutdown()
    print(json.dumps({"variant": variant, "crews": count, "bytes": held, "all_arrived": arrived}))


if __name__ == "__main__":
    main()
