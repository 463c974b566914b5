"""A user's application: one crewtrace.instrument() call (settings from OTEL_* env), then the demo crew.

Prints the token usage the offline LLM reported, one JSON object per LLM call, for the test to compare.
"""

import json

import crewtrace
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM

handle = crewtrace.instrument()
llm = OfflineLLM()
build_demo_crew(llm).kickoff()
handle.shutdown()
print(json.dumps(llm.usages))
