"""An application whose collector is unreachable: runs crews, reports RSS, exits (timed by the test).

argv: endpoint, number of crews, shutdown timeout (s), exporter timeout (s), "explicit" or "atexit".
Prints JSON lines: {"crews": n, "rss_mb": x} every 25 crews, then {"done": t} before exiting.
"""

import json
import sys
import time

import crewtrace
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import one_task_crew

endpoint, crews, shutdown_timeout, timeout, how = (
    sys.argv[1],
    int(sys.argv[2]),
    float(sys.argv[3]),
    float(sys.argv[4]),
    sys.argv[5],
)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


handle = crewtrace.instrument(endpoint=endpoint, timeout=timeout, shutdown_timeout=shutdown_timeout)
expected = one_task_crew(OfflineLLM()).kickoff().raw
for n in range(1, crews + 1):
    assert one_task_crew(OfflineLLM()).kickoff().raw == expected
    if n % 25 == 0:
        print(json.dumps({"crews": n, "rss_mb": rss_mb()}), flush=True)
print(json.dumps({"done": time.time()}), flush=True)
if how == "explicit":
    handle.shutdown()
