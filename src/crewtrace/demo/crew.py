"""The demo crew: two agents, three sequential tasks, one tool, driven by :class:`OfflineLLM`."""

from __future__ import annotations

from crewai import Agent, Crew, Process, Task
from crewai.tools import BaseTool

from crewtrace.offline_llm import OfflineLLM

_NOTEBOOK = {
    "tracing": "A trace is a tree of spans; each span has a name, a start, an end and attributes.",
    "otlp": "OTLP carries spans over gRPC (port 4317) or HTTP (port 4318) to a collector.",
}


class NotebookTool(BaseTool):
    """Looks a topic up in a small built-in notebook: deterministic, offline."""

    name: str = "notebook_lookup"
    description: str = "Looks up a short fact about a topic in the team's offline notebook."

    def _run(self, topic: str) -> str:
        words = topic.lower()
        facts = [fact for key, fact in _NOTEBOOK.items() if key in words]
        return " ".join(facts) or " ".join(_NOTEBOOK.values())


def build_demo_crew(llm: OfflineLLM | None = None) -> Crew:
    """A fresh demo crew. One LLM instance is shared by both agents, as many real crews do."""
    llm = llm or OfflineLLM()
    researcher = Agent(
        role="Researcher",
        goal="Collect accurate facts about distributed tracing",
        backstory="A careful analyst who checks every fact in the notebook.",
        llm=llm,
        tools=[NotebookTool()],
    )
    writer = Agent(
        role="Writer",
        goal="Turn facts into a short, clear note",
        backstory="A technical writer who likes short sentences.",
        llm=llm,
    )
    research = Task(
        name="research",
        description="Research how tracing and OTLP work, using the notebook.",
        expected_output="Three facts about tracing and OTLP.",
        agent=researcher,
    )
    outline = Task(
        name="outline",
        description="Outline a note about tracing from the research.",
        expected_output="A three-point outline.",
        agent=writer,
        context=[research],
    )
    write = Task(
        name="write",
        description="Write the note from the outline.",
        expected_output="A short note of one paragraph.",
        agent=writer,
        context=[outline],
    )
    return Crew(
        name="tracing-note",
        agents=[researcher, writer],
        tasks=[research, outline, write],
        process=Process.sequential,
    )
