"""A crew on CrewAI's native OpenAI provider, run under `opentelemetry-instrument` with openai-v2 installed.

argv: the OpenAI-compatible base URL, then any of "stream" and "structured". Never imports crewtrace's API.
"""

import sys

from crewai import LLM, Agent, Crew, Task
from pydantic import BaseModel

from crewtrace.demo.crew import NotebookTool


class Finding(BaseModel):
    answer: str


base_url, options = sys.argv[1], set(sys.argv[2:])
llm = LLM(model="gpt-4o-mini", base_url=base_url, api_key="sk-test-not-a-real-key", stream="stream" in options)
agent = Agent(role="Analyst", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
structured = {"output_pydantic": Finding} if "structured" in options else {}
task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent, **structured)
print(Crew(name="zero-code-openai", agents=[agent], tasks=[task]).kickoff().raw)
