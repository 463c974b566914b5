"""An application that turns on the openai SDK's own GenAI instrumentation, then crewtrace, and runs a crew.

argv: the OpenAI-compatible base URL, and "native" or "litellm". Prints the finished spans as JSON lines.
"""

import json
import sys

from crewai import LLM, Agent, Crew, Task
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crewtrace import CrewAIInstrumentor
from crewtrace.demo.crew import NotebookTool

base_url, path = sys.argv[1], sys.argv[2]
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
OpenAIInstrumentor().instrument(tracer_provider=provider)
CrewAIInstrumentor().instrument(tracer_provider=provider)

litellm = path == "litellm"
model = "openai/gpt-4o-mini" if litellm else "gpt-4o-mini"
llm = LLM(model=model, is_litellm=litellm, base_url=base_url, api_key="sk-test-not-a-real-key")
agent = Agent(role="Analyst", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
Crew(name="sdk-crew", agents=[agent], tasks=[task]).kickoff()
open_spans = CrewAIInstrumentor().tracker.open_span_count()
for span in exporter.get_finished_spans():
    row = {
        "name": span.name,
        "scope": span.instrumentation_scope.name,
        "span_id": span.context.span_id,
        "trace_id": span.context.trace_id,
        "parent_id": span.parent.span_id if span.parent else None,
        "attributes": dict(span.attributes),
        "events": [event.name for event in span.events],
        "open_spans": open_spans,
    }
    print(json.dumps(row, default=list))
