"""``python -m tests.release_check FILE``: whether the demo's trace in an OTLP-JSON-lines file is whole.

Used by scripts/test-releases on each crewai release: one trace, the demo crew's tree span for span (the
same as tests/test_span_tree.py expects), and every LLM span with its token counts. Exit 1 and say why if not.
"""

from __future__ import annotations

import sys

from crewtrace import attributes, crewai_releases
from crewtrace.report.records import read_otlp_file
from tests.helpers import outline
from tests.test_span_tree import EXPECTED_TREE


def problems(path: str) -> list[str]:
    records = read_otlp_file(path)
    found = []
    if len({r.trace_id for r in records}) != 1:
        found.append(f"{len({r.trace_id for r in records})} traces instead of one")
    if outline(records) != EXPECTED_TREE:
        found.append("the tree differs:\n" + "\n".join(outline(records)))
    chats = [r for r in records if r.name.startswith("chat ")]
    if not all(r.attributes.get(attributes.GEN_AI_USAGE_INPUT_TOKENS, 0) > 0 for r in chats):
        found.append("an LLM span has no tokens")
    root = next((r for r in records if r.parent_id is None), None)
    if root is None or root.attributes.get(attributes.USAGE_REQUESTS) != len(chats):
        found.append("the crew's roll-up does not count every LLM call")
    return found


if __name__ == "__main__":
    issues = problems(sys.argv[1])
    release = crewai_releases.installed_release()
    for issue in issues:
        print(f"crewai {release}: {issue}")
    if not issues:
        print(f"crewai {release}: the demo's trace is whole")
    sys.exit(1 if issues else 0)
