"""Shared test helpers: span trees, crews with failing parts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from crewai import Agent, Crew, Process, Task
from crewai.flow.flow import Flow, listen, start
from crewai.tools import BaseTool

import crewtrace
from crewtrace.demo.crew import NotebookTool
from crewtrace.offline_llm import OfflineLLM, OfflineLLMError

T = TypeVar("T", bound="TreeNode")


class BrokenTool(BaseTool):
    """A tool that always raises."""

    name: str = "broken_lookup"
    description: str = "Looks things up, but its backend is down."

    def _run(self, topic: str) -> str:
        raise ConnectionError(f"backend unreachable for {topic!r}")


class BrokenToolAfter(BrokenTool):
    """A BrokenTool that first waits (at most 10 s) until ``task`` has started: the two tasks then overlap for
    certain, however the machine schedules their threads."""

    task: Any = None

    def _run(self, topic: str) -> str:
        deadline = time.monotonic() + 10.0
        while self.task is not None and self.task.start_time is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return super()._run(topic)


def one_task_crew(llm: OfflineLLM, tools: list[Any] | None = None, name: str = "single") -> Crew:
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm, tools=tools or [])
    task = Task(name="job", description="Do the job carefully.", expected_output="A result.", agent=agent)
    return Crew(name=name, agents=[agent], tasks=[task])


def long_prompt_crew(llm: OfflineLLM, tasks: int = 60, size: int = 30_000) -> Crew:
    """A summarising crew: ``tasks`` tasks, each with a description of ``size`` characters."""
    agent = Agent(role="Summariser", goal="Summarise", backstory="Terse.", llm=llm)
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * (size // 57 + 1))[:size]
    work = [
        Task(name=f"summary-{i}", description=f"Summarise part {i}: {text}", expected_output="A summary.", agent=agent)
        for i in range(tasks)
    ]
    return Crew(name="summaries", agents=[agent], tasks=work)


def analyst_crew(llm: Any, name: str) -> Crew:
    """One agent with the notebook tool and one task: a tool call, then a final answer (two LLM calls)."""
    agent = Agent(role="Analyst", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
    task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
    return Crew(name=name, agents=[agent], tasks=[task])


def writer_crew(llm: Any, name: str) -> Crew:
    """One agent without tools and two tasks: two LLM calls, each a final answer."""
    agent = Agent(role="Writer", goal="g", backstory="b", llm=llm)
    tasks = [Task(name=n, description=f"Write the {n} part.", expected_output="x", agent=agent) for n in ("one", "two")]
    return Crew(name=name, agents=[agent], tasks=tasks)


def failing_second_call_crew(llm: OfflineLLM) -> Crew:
    """Two tasks for one agent that does not retry: with ``OfflineLLM(fail_calls=[2])`` the second task fails."""
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm, max_retry_limit=0)
    first = Task(name="first", description="Do the first part.", expected_output="A result.", agent=agent)
    second = Task(name="second", description="Do the second part.", expected_output="A result.", agent=agent)
    return Crew(name="failing", agents=[agent], tasks=[first, second])


def hierarchical_crew(llm: OfflineLLM) -> Crew:
    """A manager delegating one task to a researcher (with a tool) or a writer."""
    researcher = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
    writer = Agent(role="Writer", goal="g", backstory="b", llm=llm)
    task = Task(name="report", description="Research tracing.", expected_output="x")
    return Crew(
        name="managed", agents=[researcher, writer], tasks=[task], process=Process.hierarchical, manager_llm=llm
    )


class ReportFlow(Flow):
    """A flow of two methods; the second runs a one-task crew."""

    @start()
    def gather(self) -> str:
        return "tracing"

    @listen(gather)
    def write(self, topic: str) -> str:
        return one_task_crew(OfflineLLM(), name="writer-crew").kickoff(inputs={"topic": topic}).raw


class TreeNode(Protocol):
    """What a tree outline needs of a span: a SpanRecord, or a span as a backend stored it."""

    span_id: str
    parent_id: str | None
    name: str
    start_ns: int


def children(records: Sequence[T], parent: TreeNode) -> list[T]:
    """The children of ``parent``, in start order (ties by name: some backends store microseconds)."""
    return sorted((r for r in records if r.parent_id == parent.span_id), key=lambda r: (r.start_ns, r.name))


def outline(records: Sequence[TreeNode]) -> list[str]:
    """The tree as indented span names, children in start order: easy to compare and to read in a failure."""
    ids = {r.span_id for r in records}
    lines: list[str] = []

    def walk(record: TreeNode, depth: int) -> None:
        lines.append("  " * depth + record.name)
        for child in children(records, record):
            walk(child, depth + 1)

    for root in sorted((r for r in records if r.parent_id not in ids), key=lambda r: r.start_ns):
        walk(root, 0)
    return lines


def record_parallel_run(path: Any, llm: OfflineLLM) -> None:
    """A crew with two parallel tasks (the first one's failing tool waits for the second to start, so that they
    overlap), a tool, and a final task, written to ``path``."""
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    researcher = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
    writer = Agent(role="Writer", goal="g", backstory="b", llm=llm)
    check = Task(name="check", description="Check the notes.", expected_output="x", agent=writer, async_execution=True)
    prober = Agent(role="Prober", goal="g", backstory="b", llm=llm, tools=[BrokenToolAfter(task=check)])
    tasks = [
        Task(name="research", description="Research tracing.", expected_output="facts", agent=researcher),
        Task(name="probe", description="Probe the backend.", expected_output="x", agent=prober, async_execution=True),
        check,
        Task(name="write", description="Write the note.", expected_output="a note", agent=writer),
    ]
    Crew(name="recorded", agents=[researcher, prober, writer], tasks=tasks).kickoff()
    handle.shutdown()


def record_one_task_run(path: Any, name: str) -> Any:
    """One real run of ``one_task_crew`` written to ``path`` as OTLP-JSON lines; returns ``path``."""
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    one_task_crew(OfflineLLM(), name=name).kickoff()
    handle.shutdown()
    return path


# Four runs in two sessions, one failing (name, session, user, fails): the runs list and the report use them.
RUNS = [
    ("alpha", "s1", "alice", False),
    ("beta", "s1", "bob", False),
    ("gamma", "s2", "alice", True),
    ("delta", None, None, False),
]


def record_runs(**export: Any) -> None:
    """The four runs of RUNS, each in its own session and user context (delta in none)."""
    handle = crewtrace.instrument(**export)
    try:
        for name, session, user, fails in RUNS:
            labels = crewtrace.context(session_id=session, user_id=user, tags=[name]) if session else None
            llm = OfflineLLM(model="gpt-4o-mini", provider="openai", fail_calls=[2] if fails else [])
            crew = failing_second_call_crew(llm) if fails else analyst_crew(llm, name)
            if fails:
                crew.name = name
            try:
                if labels is None:
                    crew.kickoff()
                else:
                    with labels:
                        crew.kickoff()
            except OfflineLLMError:
                assert fails
            time.sleep(0.002)  # distinct start times, whatever the clock's resolution
    finally:
        handle.shutdown()


class Lookup(BaseTool):
    name: str = "lookup"
    description: str = "Looks a topic up."
    pause: float = 0.0

    def _run(self, topic: str) -> str:
        time.sleep(self.pause)
        return f"notes on {topic}"


def _never_cache(*_: object) -> bool:
    return False


def guarded_crew(llm: OfflineLLM) -> Crew:
    """One task whose guardrail rejects the first answer: the agent runs twice, calling the tool each time
    with the same arguments (the tool's cache is off, so both really run)."""
    checks = {"n": 0}

    def picky(output):
        checks["n"] += 1
        return (True, output.raw) if checks["n"] > 1 else (False, "say more")

    agent = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[Lookup(cache_function=_never_cache)])
    task = Task(name="research", description="Research tracing.", expected_output="x", agent=agent, guardrail=picky)
    return Crew(name="guarded", agents=[agent], tasks=[task])


def record_crew(path: Any, crew: Crew) -> None:
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    try:
        crew.kickoff()
    finally:
        handle.shutdown()


def rewrite_spans(source: Any, target: Any, edit: Callable[[dict[str, Any]], None]) -> Any:
    """``source`` (an OTLP-JSON-lines file) written to ``target`` with ``edit(span)`` applied to every span, as
    a hand-made or hostile file would hold it; returns ``target``."""
    lines = []
    for line in Path(source).read_text().splitlines():
        message = json.loads(line)
        for span in (s for rs in message["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]):
            edit(span)
        lines.append(json.dumps(message))  # ensure_ascii: lone surrogates become \ud800 escapes, as a tool may write
    Path(target).write_text("\n".join(lines) + "\n")
    return target


def set_attribute(span: dict[str, Any], key: str, value: dict[str, Any]) -> None:
    """Give the attribute ``key`` of an OTLP/JSON span the AnyValue ``value``, where the span has it."""
    for kv in span.get("attributes", []):
        if kv["key"] == key:
            kv["value"] = value
