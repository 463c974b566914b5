"""A gunicorn-style worker: instrument, fork, and run a crew in both the parent and the child.

argv: the OTLP-JSON-lines file to write. Prints {"parent": pid, "child": pid}.
"""

import json
import os
import sys

import crewtrace
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import one_task_crew

handle = crewtrace.instrument(exporter="file", file_path=sys.argv[1])
parent = os.getpid()
child = os.fork()
if child == 0:
    one_task_crew(OfflineLLM(), name="child").kickoff()
    handle.shutdown()
    os._exit(0)
one_task_crew(OfflineLLM(), name="parent").kickoff()
_, status = os.waitpid(child, 0)
handle.shutdown()
print(json.dumps({"parent": parent, "child": child}))
sys.exit(os.waitstatus_to_exitcode(status))
