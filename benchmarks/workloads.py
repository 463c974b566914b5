"""The offline crews the benchmarks run: the 3-task demo crew, a 20-task crew with tools, a hierarchical
crew, and a parametric crew for scaling (tasks x LLM calls per task)."""

from __future__ import annotations

import json
from typing import Any

from crewai import Agent, Crew, Process, Task
from crewai.tools import BaseTool

from crewtrace.demo.crew import NotebookTool, build_demo_crew
from crewtrace.offline_llm import OfflineLLM


class CountingTool(BaseTool):
    """A tool the offline LLM calls once per task (its first answer asks for the first listed tool)."""

    name: str = "count_words"
    description: str = "Counts the words of a topic."

    def _run(self, topic: str) -> str:
        return f"{len(topic.split())} words"


class ChattyLLM(OfflineLLM):
    """Offline LLM that thinks ``extra`` more times (a non-final Thought) before each final answer."""

    extra: int = 0

    def answer(self, messages: list[Any]) -> str:
        text = super().answer(messages)
        thoughts = sum(1 for m in messages if "Thought: I need another look" in str(m.get("content", "")))
        if self.extra and "Final Answer" in text and thoughts < self.extra:
            # A new argument each time: CrewAI stops an agent that repeats the same call five times.
            action = json.dumps({"topic": f"look {thoughts}"})
            return f"Thought: I need another look\nAction: count_words\nAction Input: {action}"
        return text


def demo() -> Crew:
    return build_demo_crew()


def twenty_tasks() -> Crew:
    llm = OfflineLLM()
    agents = [
        Agent(role=f"Worker {i}", goal="Do the job", backstory="Reliable.", llm=llm, tools=[CountingTool()])
        for i in range(4)
    ]
    tasks = [
        Task(name=f"t{i}", description=f"Step {i} of the job.", expected_output="A result.", agent=agents[i % 4])
        for i in range(20)
    ]
    return Crew(name="twenty", agents=agents, tasks=tasks)


def hierarchical() -> Crew:
    llm = OfflineLLM()
    researcher = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
    writer = Agent(role="Writer", goal="g", backstory="b", llm=llm)
    tasks = [
        Task(name="report", description="Research tracing.", expected_output="x"),
        Task(name="summary", description="Summarise the report.", expected_output="x"),
    ]
    return Crew(name="managed", agents=[researcher, writer], tasks=tasks, process=Process.hierarchical, manager_llm=llm)


def scaled(tasks: int, calls: int) -> Crew:
    """``tasks`` tasks, each with about ``calls`` LLM calls (one final answer plus tool round trips)."""
    llm = ChattyLLM(extra=max(calls - 2, 0))
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=llm, tools=[CountingTool()])
    agent.max_iter = calls + 5
    items = [
        Task(name=f"t{i}", description=f"Step {i}.", expected_output="A result.", agent=agent) for i in range(tasks)
    ]
    return Crew(name=f"scaled-{tasks}x{calls}", agents=[agent], tasks=items)


WORKLOADS = {"demo": demo, "twenty_tasks": twenty_tasks, "hierarchical": hierarchical}
