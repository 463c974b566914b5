"""An application that never imports crewtrace's API: run under `opentelemetry-instrument`."""

from crewtrace.demo.crew import build_demo_crew

print(build_demo_crew().kickoff().raw)
