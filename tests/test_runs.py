"""``crewtrace runs``: the runs of a file written by real crews, and of the real Jaeger v2 (tests/stack.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crewtrace.cli import EXIT_BROKEN_PIPE, main
from crewtrace.report.records import read_otlp_file
from crewtrace.report.runs import RUN_FIELDS
from tests import stack
from tests.helpers import RUNS, record_runs
from tests.processes import BackendError

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

CREWTRACE = str(Path(sys.executable).with_name("crewtrace"))
MODEL = "gpt-4o-mini"  # priced, so runs carry a cost


# (crew name, session, user, fails): written in this order, so newest first is the reverse.
@pytest.fixture
def runs_file(tmp_path) -> str:
    path = tmp_path / "runs.jsonl"
    record_runs(exporter="file", file_path=str(path))
    return str(path)


def _out(capsys, *argv: str) -> str:
    assert main(["runs", *argv]) == 0
    return capsys.readouterr().out


def _names(capsys, *argv: str) -> list[str]:
    return [run["crew"] for run in json.loads(_out(capsys, *argv, "--json"))]


def test_the_runs_newest_first_with_their_facts(runs_file, capsys):
    out = _out(capsys, runs_file)
    header, *rows = out.splitlines()
    columns = ("start", "crew", "/", "flow", "status", "time", "tokens", "requests", "cost", "findings", "session")
    columns += ("user",)
    assert header.split() == [*columns, "trace", "id"]
    assert [row.split()[2] for row in rows] == ["delta", "gamma", "beta", "alpha"]
    runs = json.loads(_out(capsys, runs_file, "--json"))
    assert [(r["crew"], r["session_id"], r["user_id"], r["status"]) for r in runs] == [
        (name, session, user, "failed" if fails else "completed") for name, session, user, fails in reversed(RUNS)
    ]
    assert [r["tags"] for r in runs] == [[], ["gamma"], ["beta"], ["alpha"]]
    assert all(r["total_tokens"] > 0 and r["requests"] >= 1 and r["cost_usd"] > 0 for r in runs)
    for run, row in zip(runs, rows, strict=True):
        assert re.search(
            rf"\s{run['status']}\s+\S+ m?s\s+{run['total_tokens']}\s+{run['requests']}\s+\${run['cost_usd']:.6f}\s+"
            rf"{run['findings']}\s+"
            rf"{run['session_id'] or '-'}\s+{run['user_id'] or '-'}\s+{run['trace_id']}$",
            row,
        ), row


def test_filters(runs_file, capsys):
    assert _names(capsys, runs_file, "--session", "s1") == ["beta", "alpha"]
    assert _names(capsys, runs_file, "--user", "alice") == ["gamma", "alpha"]
    assert _names(capsys, runs_file, "--status", "failed") == ["gamma"]
    assert _names(capsys, runs_file, "--status", "completed", "--user", "alice") == ["alpha"]
    assert _names(capsys, runs_file, "--limit", "2") == ["delta", "gamma"]
    assert _names(capsys, runs_file, "--since", "1h") == ["delta", "gamma", "beta", "alpha"]
    assert _names(capsys, runs_file, "--session", "nobody") == []
    assert _out(capsys, runs_file, "--session", "nobody") == "no runs match\n"
    runs = json.loads(_out(capsys, runs_file, "--json"))
    beta = next(r for r in runs if r["crew"] == "beta")
    since = datetime.fromtimestamp(beta["start_ns"] // 1000 / 1e6, UTC).isoformat()  # down to the microsecond
    assert _names(capsys, runs_file, "--since", since) == ["delta", "gamma", "beta"]
    local = datetime.fromtimestamp(beta["start_ns"] // 1000 / 1e6).isoformat()  # no offset: local time
    assert _names(capsys, runs_file, "--since", local) == ["delta", "gamma", "beta"]
    assert _names(capsys, runs_file, "--since", "2999-01-01") == []


@pytest.mark.parametrize(
    ("argv", "option", "accepted"),
    [
        (["--status", "done"], "--status", "completed or failed"),
        (["--limit", "0"], "--limit", "1 or more"),
        (["--limit", "ten"], "--limit", "1 or more"),
        (["--since", "yesterday"], "--since", "a duration (30m, 2h, 7d)"),
        (["--since", "2h30"], "--since", "ISO date"),
    ],
)
def test_bad_filter_values_are_one_line_errors(runs_file, capsys, argv, option, accepted):
    assert main(["runs", runs_file, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and option in err and accepted in err and repr(argv[1]) in err


def test_each_runs_numbers_equal_its_summary(runs_file, capsys):
    runs = json.loads(_out(capsys, runs_file, "--json"))
    assert len(runs) == len(RUNS)
    for run in runs:
        assert main(["summary", runs_file, "--trace-id", run["trace_id"], "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert set(run) == {*RUN_FIELDS, "findings", "failed_llm_calls"}
        assert {key: run[key] for key in RUN_FIELDS} == {key: summary[key] for key in RUN_FIELDS}, run["crew"]
        assert run["findings"] == len(summary["findings"])


def test_bad_sources(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "missing.jsonl")]) == 2
    assert "crewtrace runs: cannot read" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _out(capsys, str(empty)) == "no runs match\n"
    assert main(["runs", str(empty), "--service", "x"]) == 2
    assert "--service goes with --jaeger" in capsys.readouterr().err
    assert main(["runs", "--jaeger", "http://127.0.0.1:9"]) == 2
    assert "cannot reach Jaeger at http://127.0.0.1:9" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(runs_file, subprocess_env):
    process = subprocess.Popen(
        [CREWTRACE, "runs", runs_file], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env
    )
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert err == b"" and process.returncode == EXIT_BROKEN_PIPE, err.decode()


# --- The real Jaeger v2, built by scripts/build-stack, fed over OTLP by crewtrace directly ---------------------------


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory):
    try:
        server = stack.jaeger_server(tmp_path_factory.mktemp("jaeger"))
        with stack.running(server):
            yield server
    except BackendError as error:
        pytest.fail(str(error), pytrace=False)


def test_runs_from_jaeger_equal_the_runs_of_the_same_file(jaeger, fresh_global_provider, tmp_path, capsys):
    path = tmp_path / "sent.jsonl"
    service = "crewtrace-runs-test"
    endpoint = jaeger.base_url("grpc")
    record_runs(exporter="otlp,file", endpoint=endpoint, file_path=str(path), service_name=service)
    from_file = json.loads(_out(capsys, str(path), "--json"))
    reader = stack.JaegerReader(jaeger)
    spans = {}
    for record in read_otlp_file(path):
        spans[record.trace_id] = spans.get(record.trace_id, 0) + 1
    for trace_id, count in spans.items():
        reader.wait(trace_id, count)
    base = jaeger.base_url("query")
    assert json.loads(_out(capsys, "--jaeger", base, "--json")) == from_file
    assert json.loads(_out(capsys, "--jaeger", base, "--service", service, "--json")) == from_file
    assert _names(capsys, "--jaeger", base, "--session", "s1") == ["beta", "alpha"]
    assert _names(capsys, "--jaeger", base, "--status", "failed", "--since", "1h") == ["gamma"]
    assert _names(capsys, "--jaeger", base, "--service", "no-such-service") == []
    # summary --jaeger finds a run by a prefix of its trace id, and the latest run without one.
    gamma = next(r for r in from_file if r["crew"] == "gamma")
    assert main(["summary", "--jaeger", base, "--trace-id", gamma["trace_id"][:12], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["span_id"] == gamma["span_id"]
    assert main(["summary", "--jaeger", base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["crew"] == "delta"
    # crewtrace report: the site made from Jaeger is the site made from the file, page for page.
    assert main(["report", str(path), "--out", str(tmp_path / "from-file")]) == 0
    assert main(["report", "--jaeger", base, "--service", service, "--out", str(tmp_path / "from-jaeger")]) == 0
    pages = {p.relative_to(tmp_path / "from-file") for p in (tmp_path / "from-file").rglob("*.html")}
    assert len(pages) == len(from_file) + 1
    assert pages == {p.relative_to(tmp_path / "from-jaeger") for p in (tmp_path / "from-jaeger").rglob("*.html")}
    for page in pages:
        assert (tmp_path / "from-jaeger" / page).read_text() == (tmp_path / "from-file" / page).read_text(), page
