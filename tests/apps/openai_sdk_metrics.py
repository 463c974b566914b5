"""An application with the openai SDK's own GenAI instrumentation and crewtrace, under a trace sampler: runs a
crew and prints its metric totals as one JSON line.

argv: the OpenAI-compatible base URL, and the sampling ratio (1.0 keeps every trace, 0.0 none).
"""

import json
import sys

from crewai import LLM, Agent, Crew, Task
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from crewtrace import CrewAIInstrumentor
from crewtrace.demo.crew import NotebookTool

base_url, ratio = sys.argv[1], float(sys.argv[2])
exporter = InMemorySpanExporter()
provider = TracerProvider(sampler=TraceIdRatioBased(ratio))
provider.add_span_processor(SimpleSpanProcessor(exporter))
reader = InMemoryMetricReader()
meters = MeterProvider(metric_readers=[reader])
OpenAIInstrumentor().instrument(tracer_provider=provider, meter_provider=meters)
CrewAIInstrumentor().instrument(tracer_provider=provider, meter_provider=meters)

llm = LLM(model="gpt-4o-mini", base_url=base_url, api_key="sk-test-not-a-real-key")
agent = Agent(role="Analyst", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
Crew(name="sdk-crew", agents=[agent], tasks=[task]).kickoff()

totals: dict[str, dict[str, list[float]]] = {}
data = reader.get_metrics_data()
for rm in data.resource_metrics if data else ():
    for sm in rm.scope_metrics:
        for metric in sm.metrics:
            for point in metric.data.data_points:
                key = str(dict(point.attributes).get("gen_ai.token.type", ""))
                count = getattr(point, "count", 1)
                value = point.sum if hasattr(point, "bucket_counts") else point.value
                entry = totals.setdefault(metric.name, {}).setdefault(key, [0, 0.0])
                entry[0] += count
                entry[1] += value if "duration" not in metric.name else 0.0
print(json.dumps({"spans": len(exporter.get_finished_spans()), "metrics": totals}))
