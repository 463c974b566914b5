"""Crowds: 32 threads and one asyncio event loop running 300 crews between them, exported over OTLP/gRPC to a
real receiver: every trace arrives whole, none mixed with another."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from crewai import Agent, Crew, Task

import crewtrace
from crewtrace.demo.crew import NotebookTool
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import SpanRecord
from tests.helpers import outline
from tests.receivers import GrpcReceiver

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

RUNS = 300
THREADS = 32
IN_LOOP = 100  # runs the event loop takes; the thread pool takes the rest
WAIT = 120  # seconds: bound on every wait
TAG = re.compile(r"run-\d{3}")


def _tag(n: int) -> str:
    return f"run-{n:03d}"


def _crew(n: int) -> Crew:
    """Run ``n``'s own crew: its tag in the crew's, task's and agent's names and in the task text, so every span
    and the result name the run. Every third one is an analyst with a tool call (two LLM calls)."""
    tag = _tag(n)
    if n % 3 == 0:
        agent = Agent(role=f"Analyst {tag}", goal="g", backstory="b", llm=OfflineLLM(), tools=[NotebookTool()])
        task = Task(name=f"analyse {tag}", description=f"Analyse tracing for {tag}.", expected_output="x", agent=agent)
    else:
        agent = Agent(role=f"Worker {tag}", goal="Do the job", backstory="Reliable.", llm=OfflineLLM())
        task = Task(name=f"job {tag}", description=f"Do job {tag} carefully.", expected_output="A result.", agent=agent)
    return Crew(name=tag, agents=[agent], tasks=[task])


def _expected_outline(n: int) -> list[str]:
    tag = _tag(n)
    if n % 3 == 0:
        calls = ["chat crewtrace-offline", "execute_tool notebook_lookup", "chat crewtrace-offline"]
        spans = [f"invoke_workflow {tag}", f"  execute_task analyse {tag}", f"    invoke_agent Analyst {tag}"]
    else:
        calls = ["chat crewtrace-offline"]
        spans = [f"invoke_workflow {tag}", f"  execute_task job {tag}", f"    invoke_agent Worker {tag}"]
    return spans + ["      " + call for call in calls]


def _tags_in(record: SpanRecord) -> set[str]:
    """Every run tag a span mentions: in its name, attribute values and event attributes."""
    texts: list[Any] = [record.name, *record.attributes.values()]
    texts += [value for event in record.events for value in event.attributes.values()]
    return {tag for text in texts for tag in TAG.findall(str(text))}


def _most_at_once(spans: list[SpanRecord]) -> int:
    """The most spans open at one instant."""
    edges = sorted([(s.start_ns, 1) for s in spans] + [(s.end_ns, -1) for s in spans])
    most = running = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def _run_crowd() -> dict[int, str]:
    """Runs 0..RUNS-1: the event loop's share and the thread pool's, started together. Result text per run."""
    results: dict[int, str] = {}
    go = threading.Event()
    loop_failed: list[BaseException] = []

    async def in_loop() -> None:
        async def one(n: int) -> None:
            results[n] = (await _crew(n).akickoff()).raw

        await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(IN_LOOP))), timeout=WAIT)

    def loop_thread() -> None:
        go.wait(WAIT)
        try:
            asyncio.run(in_loop())
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            loop_failed.append(error)

    def in_thread(n: int) -> tuple[int, str]:
        go.wait(WAIT)
        return n, _crew(n).kickoff().raw

    loop = threading.Thread(target=loop_thread, name="crowd-event-loop")
    loop.start()
    with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="crowd") as pool:
        futures = [pool.submit(in_thread, n) for n in range(IN_LOOP, RUNS)]
        go.set()
        for future in futures:
            n, raw = future.result(timeout=WAIT)
            results[n] = raw
    loop.join(WAIT)
    assert not loop.is_alive(), "the event loop's crews did not finish"
    assert not loop_failed, loop_failed
    return results


def test_300_crews_in_32_threads_and_an_event_loop_each_arrive_as_one_whole_unmixed_trace(
    fresh_global_provider, caplog
):
    alone = {n: _crew(n).kickoff().raw for n in range(RUNS)}  # each crew on its own, before any tracing
    assert len(set(alone.values())) == RUNS  # every result names its run

    expected_spans = sum(len(_expected_outline(n)) for n in range(RUNS))
    with GrpcReceiver() as receiver, caplog.at_level(logging.WARNING, logger="crewtrace"):
        handle = crewtrace.instrument(endpoint=receiver.endpoint, metrics_exporter="none")
        results = _run_crowd()
        assert handle.force_flush(30_000)
        records = receiver.wait_for_spans(expected_spans, timeout=WAIT)
        handle.shutdown()

    assert results == alone  # same answers as alone: nothing leaked between concurrent runs
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("crewtrace")]

    assert len({r.span_id for r in records}) == len(records) == expected_spans  # all arrived, none twice
    traces: dict[str, list[SpanRecord]] = defaultdict(list)
    for record in records:
        traces[record.trace_id].append(record)
    assert len(traces) == RUNS

    seen: set[str] = set()
    for trace_id, members in traces.items():
        ids = {r.span_id for r in members}
        roots = [r for r in members if r.parent_id is None]
        assert len(roots) == 1, (trace_id, outline(members))
        assert all(r.parent_id in ids for r in members if r.parent_id is not None), outline(members)
        tag = roots[0].name.removeprefix("invoke_workflow ")
        assert TAG.fullmatch(tag), roots[0].name
        assert tag not in seen  # one trace per run
        seen.add(tag)
        assert outline(members) == _expected_outline(int(tag[4:])), trace_id
        mixed = {r.name: _tags_in(r) - {tag} for r in members if _tags_in(r) - {tag}}
        assert not mixed, (tag, mixed)
    assert seen == {_tag(n) for n in range(RUNS)}

    # The premise: the runs did overlap, within the loop, within the pool, and between the two.
    crews = [r for r in records if r.parent_id is None]
    in_loop = [r for r in crews if int(r.name[-3:]) < IN_LOOP]
    in_pool = [r for r in crews if int(r.name[-3:]) >= IN_LOOP]
    assert _most_at_once(in_loop) > 1 and _most_at_once(in_pool) > 1
    assert any(a.start_ns < b.end_ns and b.start_ns < a.end_ns for a in in_loop for b in in_pool)
