"""``crewtrace summary``: one run rendered from an OTLP-JSON-lines file and from Jaeger's v3 query API."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from crewai import Agent, Crew, Task

import crewtrace
from crewtrace import crewai_releases
from crewtrace.cli import EXIT_BROKEN_PIPE, main
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.records import read_otlp_file
from crewtrace.report.summary import resolve_trace_id, run_roots
from crewtrace.setup.exporters import spans_to_otlp_json
from crewtrace.usage.pricing import PriceTable
from crewtrace.usage.tokens import normalize_usage
from tests import crewai_fixes
from tests.helpers import BrokenTool, analyst_crew, record_parallel_run
from tests.local_http import LocalHTTPServer, QuietHandler

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

CREWTRACE = str(Path(sys.executable).with_name("crewtrace"))
SECTIONS = ("Execution summary", "Tasks and agents", "Final output", "Timeline", "Failure points")


@pytest.fixture
def recorded(tmp_path) -> tuple[str, OfflineLLM]:
    path = tmp_path / "traces.jsonl"
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    record_parallel_run(path, llm)
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
    printed = re.search(r"Estimated cost\s+\$(\d+\.\d{6})\n", out)
    # Exact to the printed digit: a sum that falls on a half (0.0004065) may round either way, by summing order.
    assert printed and cost > 0 and abs(float(printed.group(1)) - cost) <= 0.5e-6 + 1e-12, (printed, cost)
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
    for part in ("Description", "Research tracing.", "Expected output", "facts", "Output", "Tool calls (1)"):
        assert part in detail
    assert "Task key" in detail and "Task id" in detail and "LLM       gpt-4o-mini" in detail
    tool = detail.split("Tool calls (1)")[1]
    assert "notebook_lookup: completed" in tool
    assert re.search(r"arguments:\n\s+\{.*topic", tool) and "result:" in tool
    assert "I should use notebook_lookup first" in detail  # the agent's thought
    data = json.loads(_summary(capsys, path, "--task", "2", "--json"))
    probe = data["task_detail"]
    assert probe["name"] == "probe" and probe["task_key"] and probe["task_id"]
    assert [(t["name"], t["status"], t["error_type"]) for t in probe["tool_calls"]] == [
        ("broken_lookup", "failed", "ConnectionError")
    ] * 3
    assert all("backend unreachable" in t["error"] and t["result"] is None for t in probe["tool_calls"])
    assert all(t["arguments"] and t["span_id"] and t["duration_s"] >= 0 for t in probe["tool_calls"])
    calls = probe["llm_calls"]
    assert calls and all(c["model"] == "gpt-4o-mini" and c["status"] == "completed" for c in calls)
    assert sum(c["input_tokens"] + c["output_tokens"] for c in calls) == probe["tokens"]
    assert sum(c["cost_usd"] for c in calls) == pytest.approx(probe["cost_usd"])
    assert probe["context"] == ""  # captured, and nothing was handed to it: empty, not "not captured"
    # Each call's tokens and cost in the text view.
    text = _summary(capsys, path, "--task", "probe")
    first = calls[0]
    assert f"{first['input_tokens']} in (0 cached), {first['output_tokens']} out  ${first['cost_usd']:.6f}" in text
    assert "Input (context)\n  (none)" in text


def test_agents_and_labels_in_the_summary(recorded, capsys):
    path, llm = recorded
    data = json.loads(_summary(capsys, path, "--json"))
    agents = {a["role"]: a for a in data["agents"]}
    assert next(iter(agents)) == "Researcher" and set(agents) == {"Researcher", "Prober", "Writer"}  # in start order
    assert agents["Writer"]["tasks"] == ["check", "write"] and agents["Writer"]["models"] == ["gpt-4o-mini"]
    assert sum(a["requests"] for a in agents.values()) == data["requests"] == len(llm.usages)
    assert sum(a["tokens"] for a in agents.values()) == data["total_tokens"]
    assert sum(a["cost_usd"] for a in agents.values()) == pytest.approx(data["cost_usd"])
    assert (data["session_id"], data["user_id"], data["tags"], data["metadata"]) == (None, None, [], {})
    assert data["content_captured"] is True and data["kind"] == "crew"
    failure = data["failures"][0]
    assert (
        failure["span_id"] in {r["span_id"] for r in data["task_detail"]["tool_calls"]}
        if "task_detail" in data
        else True
    )
    out = _summary(capsys, path)
    assert re.search(r"Cost per agent\n.*\n.*\n\s+Researcher\s+gpt-4o-mini\s+completed", out)


def test_failures_point_at_their_spans(recorded, capsys):
    path, _ = recorded
    data = json.loads(_summary(capsys, path, "--task", "probe", "--json"))
    tool_spans = {t["span_id"] for t in data["task_detail"]["tool_calls"]}
    failed = [f for f in data["failures"] if f["kind"] == "execute tool"]
    assert len(failed) == 3 and {f["span_id"] for f in failed} == tool_spans


def _labelled_file(path, capture: bool, llm: OfflineLLM) -> None:
    handle = crewtrace.instrument(exporter="file", file_path=str(path), capture_content=capture)
    with crewtrace.context(session_id="chat-1", user_id="user-7", tags=["beta"], metadata={"plan": "pro"}):
        analyst_crew(llm, "labelled").kickoff()
    handle.shutdown()


def test_session_user_tags_and_metadata(tmp_path, capsys):
    path = tmp_path / "labelled.jsonl"
    _labelled_file(path, True, OfflineLLM())
    data = json.loads(_summary(capsys, str(path), "--json"))
    assert (data["session_id"], data["user_id"], data["tags"], data["metadata"]) == (
        "chat-1",
        "user-7",
        ["beta"],
        {"plan": "pro"},
    )
    out = _summary(capsys, str(path))
    for line in ("Session            chat-1", "User               user-7", "Tags               beta"):
        assert line in out
    assert "Metadata           plan=pro" in out


def test_with_capture_off_text_says_not_captured(tmp_path, capsys):
    path = tmp_path / "private.jsonl"
    _labelled_file(path, False, OfflineLLM())
    data = json.loads(_summary(capsys, str(path), "--task", "1", "--json"))
    assert data["content_captured"] is False and data["final_output"] is None and data["inputs"] is None
    assert data["metadata"] == {} and data["session_id"] == "chat-1"  # identifiers stay, metadata is content
    detail = data["task_detail"]
    assert [detail[k] for k in ("description", "expected_output", "context", "output", "thoughts")] == [None] * 5
    (tool,) = detail["tool_calls"]
    assert tool["arguments"] is None and tool["result"] is None and tool["status"] == "completed"
    assert detail["llm_calls"] and all(c["input_tokens"] > 0 for c in detail["llm_calls"])  # numbers stay
    out = _summary(capsys, str(path), "--task", "1")
    assert "Final output\n  (not captured)" in out
    for title in ("Description", "Expected output", "Input (context)", "Output", "Agent thoughts"):
        assert f"{title}\n  (not captured)" in out, title
    assert "arguments:\n       (not captured)" in out and "result:\n       (not captured)" in out
    assert "(none)" not in out


def test_free_and_unknown_costs(tmp_path, capsys):
    free, unknown = tmp_path / "free.jsonl", tmp_path / "unknown.jsonl"
    _labelled_file(free, True, OfflineLLM())  # the offline model's provider is a local one: it costs 0
    _labelled_file(unknown, True, OfflineLLM(model="mystery-model-9", provider="nowhere"))
    out = _summary(capsys, str(free))
    assert re.search(r"Estimated cost\s+free\n", out) and "$0.000000" not in out
    assert re.search(r"1\s+analyse\s+Analyst\s+crewtrace-offline\s+completed\s+\S+ ms\s+\d+\s+free", out)
    assert json.loads(_summary(capsys, str(free), "--json"))["cost_usd"] == 0
    out = _summary(capsys, str(unknown))
    assert re.search(r"Estimated cost\s+unknown \(no price for the model\)\n", out)
    assert re.search(r"analyse\s+Analyst\s+mystery-model-9\s+completed\s+\S+ ms\s+\d+\s+unknown", out)
    data = json.loads(_summary(capsys, str(unknown), "--task", "1", "--json"))
    assert data["cost_usd"] is None and data["unpriced_requests"] == data["requests"] == 2
    assert [c["cost_usd"] for c in data["task_detail"]["llm_calls"]] == [None, None]


def test_trace_id_prefix(tmp_path, capsys):
    path = tmp_path / "two.jsonl"
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    for name in ("first", "second"):
        analyst_crew(OfflineLLM(), name).kickoff()
    handle.shutdown()
    runs = {r.trace_id: r for r in run_roots(read_otlp_file(path))}
    assert len(runs) == 2
    for trace_id, root in runs.items():
        length = next(n for n in range(1, 33) if sum(t.startswith(trace_id[:n]) for t in runs) == 1)
        data = json.loads(_summary(capsys, str(path), "--trace-id", trace_id[: max(length, 4)].upper(), "--json"))
        assert (data["trace_id"], data["span_id"]) == (trace_id, root.span_id)
    unknown = next(p for p in ("0000", "ffff", "abcd") if not any(t.startswith(p) for t in runs))
    assert main(["summary", str(path), "--trace-id", unknown]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(t in err for t in runs)
    assert main(["summary", str(path), "--trace-id", "xyz"]) == 2
    assert "not a trace id" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"ambiguous: ab12\w+, ab13\w+$"):
        resolve_trace_id(["ab12" + "0" * 28, "ab13" + "0" * 28, "cd" + "0" * 30], "ab1")


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"crewtrace {crewtrace.__version__}\n"


def test_a_closed_pipe_ends_quietly(recorded, subprocess_env):
    """`crewtrace summary f | head`: the reader is gone before the output is written."""
    path, _ = recorded
    for argv in (["summary", path, "--task", "probe"], ["summary", path, "--json"]):
        process = subprocess.Popen(
            [CREWTRACE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env
        )
        process.stdout.close()  # nobody reads: the first write fails with EPIPE
        _, err = process.communicate(timeout=120)
        assert err == b"" and process.returncode == EXIT_BROKEN_PIPE, err.decode()
    shell = subprocess.run(
        f"{CREWTRACE} summary {path} --task probe | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
        check=False,
    )
    assert shell.stdout.startswith("Execution summary") and shell.stderr == ""


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
    assert main(["summary", "--jaeger", "http://127.0.0.1:9"]) == 2  # no trace id: the latest there
    assert "cannot reach Jaeger" in capsys.readouterr().err
