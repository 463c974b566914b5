"""An application that installed its own SDK TracerProvider before calling crewtrace.instrument()."""

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import crewtrace
from crewtrace.demo.crew import build_demo_crew

mine = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "my-app"}))
provider.add_span_processor(SimpleSpanProcessor(mine))
trace.set_tracer_provider(provider)

handle = crewtrace.instrument(exporter="file", file_path=sys.argv[1])
build_demo_crew().kickoff()
handle.shutdown()
print(json.dumps({"same_provider": handle.tracer_provider is provider, "app_spans": len(mine.get_finished_spans())}))
