"""``crewtrace summary``: one run rendered from an OTLP-JSON-lines file and from Jaeger's v3 query API."""

from __future__ import annotations

import base64
import json
import re

import pytest
from crewai import Agent, Crew, Task

import crewtrace
from crewtrace import crewai_releases
from crewtrace.cli import main
from crewtrace.demo.crew import NotebookTool
from crewtrace.offline_llm import OfflineLLM
from crewtrace.setup.exporters import spans_to_otlp_json
from crewtrace.usage.pricing import PriceTable
from crewtrace.usage.tokens import normalize_usage
from tests import crewai_fixes
from tests.helpers import BrokenTool
from tests.local_http import LocalHTTPServer, QuietHandler

SECTIONS = ("Execution summary", "Tasks and agents", "Final output", "Timeline", "Failure points")


def _run_recorded(path, llm: OfflineLLM) -> None:
    """A crew with two parallel tasks, a tool, a failing tool and a final task, written to ``path``."""
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    researcher = Agent(role="Researcher", goal="g", backstory="b", llm=llm, tools=[NotebookTool()])
    prober = Agent(role="Prober", goal="g", backstory="b", llm=llm, tools=[BrokenTool()])
    writer = Agent(role="Writer", goal="g", backstory="b", llm=llm)
    tasks = [
        Task(name="research", description="Research tracing.", expected_output="facts", agent=researcher),
        Task(name="probe", description="Probe the backend.", expected_output="x", agent=prober, async_execution=True),
        Task(name="check", description="Check the notes.", expected_output="x", agent=writer, async_execution=True),
        Task(name="write", description="Write the note.", expected_output="a note", agent=writer),
    ]
    Crew(name="recorded", agents=[researcher, prober, writer], tasks=tasks).kickoff()
    handle.shutdown()


@pytest.fixture
def recorded(tmp_path) -> tuple[str, OfflineLLM]:
    path = tmp_path / "traces.jsonl"
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    _run_recorded(path, llm)
    return str(path), llm


def _summary(capsys, *argv: str) -> str:
    assert main(["summary", *argv]) == 0
    return capsys.readouterr().out


def test_text_summary_of_a_recorded_file_has_every_section_and_exact_numbers(recorded, capsys):
    path, llm = recorded
    out = _summary(capsys, path)
    positions = [out.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    total = sum(u["total_tokens"] for u in llm.usages)
    assert re.search(rf"Total tokens\s+{total}\n", out)
    assert re.search(rf"Requests\s+{len(llm.usages)}\n", out)
    price = PriceTable.load().find("gpt-4o-mini", "openai")
    cost = sum(price.cost(normalize_usage(u)) for u in llm.usages)
    assert re.search(rf"Estimated cost\s+\${cost:.6f}\n", out) and cost > 0
    for name, agent in (("research", "Researcher"), ("probe", "Prober"), ("check", "Writer"), ("write", "Writer")):
        assert re.search(rf"\d  {name}\s+{agent}\s+gpt-4o-mini\s+completed", out), name
    # The writer's last task. Before crewai 1.14.4 its conversation still holds its earlier task ("check"),
    # whose description the offline LLM answers, being the first it reads.
    last = "Write the note." if crewai_fixes.executor_starts_each_task_afresh() else "Check the notes."
    assert f"Offline answer to '{last}'" in out.split("Final output")[1]
    failures = out.split("Failure points")[1]
    assert failures.count("[ConnectionError] backend unreachable") == 3
    assert ("tool gave up" in failures) is crewai_releases.reports_tool_failures()  # crewai 1.15.9


def test_timeline_bars_are_scaled_and_parallel_tasks_overlap(recorded, capsys):
    path, _ = recorded
    data = json.loads(_summary(capsys, path, "--json"))
    tasks = {t["name"]: t for t in data["tasks"]}
    assert (
        tasks["probe"]["start_ns"] < tasks["check"]["end_ns"] and tasks["check"]["start_ns"] < tasks["probe"]["end_ns"]
    )
    text = _summary(capsys, path)
    bars = {}
    for line in text.split("Timeline\n")[1].split("\n\n")[0].splitlines():
        name, bar = re.match(r"\s+(\w+)\s+\|(.*)\|", line).groups()
        cells = [i for i, c in enumerate(bar) if c != " "]
        bars[name] = (cells[0], cells[-1])
    assert set(bars) == set(tasks)
    assert bars["research"][1] <= bars["probe"][0] + 1  # research comes first
    assert bars["probe"][0] <= bars["check"][1] and bars["check"][0] <= bars["probe"][1]  # side by side in time
    assert bars["write"][0] >= max(bars["probe"][1], bars["check"][1]) - 1


def test_json_has_the_same_facts(recorded, capsys):
    path, llm = recorded
    data = json.loads(_summary(capsys, path, "--json"))
    assert data["crew"] == "recorded" and data["status"] == "completed"
    assert data["input_tokens"] == sum(u["prompt_tokens"] for u in llm.usages)
    assert data["output_tokens"] == sum(u["completion_tokens"] for u in llm.usages)
    assert data["requests"] == len(llm.usages)
    assert data["cost_usd"] > 0
    assert sum(t["tokens"] for t in data["tasks"]) == data["total_tokens"]
    assert [f["error_type"] for f in data["failures"]].count("ConnectionError") == 3


def test_task_detail(recorded, capsys):
    path, _ = recorded
    out = _summary(capsys, path, "--task", "research")
    detail = out.split("Task 'research'")[1]
    for part in ("Description", "Research tracing.", "Expected output", "facts", "Output", "Tool usage"):
        assert part in detail
    assert "notebook_lookup: completed" in detail
    assert "I should use notebook_lookup first" in detail  # the agent's thought
    data = json.loads(_summary(capsys, path, "--task", "2", "--json"))
    assert data["task_detail"]["name"] == "probe"
    assert data["task_detail"]["tool_calls"] == [["broken_lookup", "failed"]] * 3


def _jaeger(records_by_trace: dict[str, dict], base64_ids: bool = False) -> LocalHTTPServer:
    """Jaeger's query API v3 shape: GET /api/v3/traces/{id} -> {"result": TracesData as OTLP/JSON}."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            match = re.fullmatch(r"/api/v3/traces/([0-9a-f]{32})", self.path)
            data = records_by_trace.get(match.group(1)) if match else None
            if data is None:
                body = json.dumps({"error": {"httpCode": 404, "message": "trace not found"}}).encode()
                self.reply(404, body, "application/json")
            else:
                self.reply(200, json.dumps({"result": data}).encode(), "application/json")

    return LocalHTTPServer(Handler)


def _to_base64_ids(node):
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in ("traceId", "spanId", "parentSpanId") and v
            else _to_base64_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_to_base64_ids(item) for item in node]
    return node


@pytest.mark.parametrize("base64_ids", [False, True], ids=["hex ids", "base64 ids"])
def test_summary_from_the_jaeger_api(memory, capsys, base64_ids):
    _, exporter = memory
    llm = OfflineLLM()
    agent = Agent(role="Worker", goal="g", backstory="b", llm=llm, tools=[BrokenTool()])
    Crew(
        name="from-jaeger", agents=[agent], tasks=[Task(name="job", description="d", expected_output="x", agent=agent)]
    ).kickoff()
    spans = exporter.get_finished_spans()
    trace_id = f"{spans[0].context.trace_id:032x}"
    data = spans_to_otlp_json(spans)
    with _jaeger({trace_id: _to_base64_ids(data) if base64_ids else data}) as jaeger:
        out = _summary(capsys, "--jaeger", jaeger.base_url, "--trace-id", trace_id)
        assert main(["summary", "--jaeger", jaeger.base_url, "--trace-id", "0" * 32]) == 2
        missing = capsys.readouterr().err
    for section in SECTIONS:
        assert section in out
    assert re.search(rf"Total tokens\s+{sum(u['total_tokens'] for u in llm.usages)}\n", out)
    assert out.split("Failure points")[1].count("[ConnectionError]") == 3
    assert "404" in missing and missing.count("\n") == 1


def test_bad_sources_are_one_line_errors(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main(["summary", str(bad)]) == 2
    assert "bad.jsonl:1 is not an OTLP/JSON line" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["summary", str(empty)]) == 2
    assert "no crew or flow run" in capsys.readouterr().err
    assert main(["summary", "--jaeger", "http://127.0.0.1:9"]) == 2
    assert "--trace-id" in capsys.readouterr().err
