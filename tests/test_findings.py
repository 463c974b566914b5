"""Findings from real crews, each number checked against what the LLM reported, the raw spans' own times, or the
vendor's published price (#26)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from crewai import Agent, Crew, Task

import crewtrace
from crewtrace.cli import main
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report import findings as kinds
from crewtrace.report.findings import Rules, findings
from crewtrace.report.records import read_otlp_file
from crewtrace.report.runs import all_runs
from crewtrace.report.summary import summarize
from crewtrace.report.what_if import what_if
from tests.helpers import Lookup, guarded_crew, record_crew
from tests.route_checks import Call, VendorPrice, usd

# OpenAI's published prices, USD per million tokens (input, cached input, output), platform.openai.com/pricing.
PUBLISHED = {
    "gpt-4o-mini": VendorPrice(0.15, 0.075, 0.60),
    "gpt-4o": VendorPrice(2.50, 1.25, 10.00),
    "gpt-4.1-nano": VendorPrice(0.10, 0.025, 0.40),
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    path = tmp_path_factory.mktemp("guarded") / "traces.jsonl"
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    record_crew(path, guarded_crew(llm))
    return summarize(read_otlp_file(path)), llm.usages, path


def _of(found, kind):
    return [f for f in found if f.kind == kind]


def test_the_same_tool_call_twice_is_a_redundant_operation(guarded):
    run, _, _ = guarded
    (finding,) = _of(findings(run), kinds.REDUNDANT_TOOL_CALLS)
    assert finding.numbers["calls"] == 2 and finding.numbers["repeats"] == 1 and finding.numbers["from_cache"] == 0
    assert finding.task == "research" and finding.agent == "Researcher" and len(finding.span_ids) == 2
    assert finding.numbers["repeat_seconds"] > 0


def test_the_calls_of_a_rejected_attempt_are_discarded_with_their_tokens_and_cost(guarded):
    run, usages, _ = guarded
    (finding,) = _of(findings(run), kinds.DISCARDED_CALLS)
    first_attempt = usages[:2]  # the tool call's answer and the final answer the guardrail rejected
    assert finding.numbers == {"reason": "guardrail rejected", "calls": 2}
    assert finding.tokens == sum(u["prompt_tokens"] + u["completion_tokens"] for u in first_attempt)
    calls = [Call(u["prompt_tokens"], u["completion_tokens"]) for u in first_attempt]
    assert finding.cost_usd == usd(sum(PUBLISHED["gpt-4o-mini"].cost(c) for c in calls))


def test_each_call_that_resends_the_previous_prompt_counts_what_a_cache_could_serve(guarded):
    run, usages, _ = guarded
    found = _of(findings(run), kinds.RESENT_PROMPT)
    assert len(found) == 2  # one per agent attempt, each of two calls
    for finding, attempt in zip(found, (usages[:2], usages[2:4]), strict=True):
        resent = attempt[0]["prompt_tokens"]  # the second call resends the whole first prompt
        assert finding.tokens == resent and finding.numbers["already_cached"] == 0
        price = PUBLISHED["gpt-4o-mini"]
        assert finding.cost_usd == usd(resent * (price.input - price.cached_input) / 1e6)


def test_what_if_prices_each_tasks_tokens_on_the_providers_other_models(guarded):
    run, usages, _ = guarded
    (row,) = what_if(run)
    assert row.task == "research" and row.provider == "openai" and row.models == ["gpt-4o-mini"]
    costs = dict(row.alternatives)
    calls = [Call(u["prompt_tokens"], u["completion_tokens"]) for u in usages]
    for model, price in PUBLISHED.items():
        assert costs[model] == usd(sum(price.cost(c) for c in calls)), model
    assert [c for _, c in row.alternatives] == sorted(c for _, c in row.alternatives)


def test_a_failed_call_that_crewai_retried_is_discarded_and_the_run_completed(tmp_path):
    path = tmp_path / "traces.jsonl"
    llm = OfflineLLM(fail_calls=[1])
    agent = Agent(role="Worker", goal="g", backstory="b", llm=llm, max_retry_limit=1)
    task = Task(name="job", description="Do the job.", expected_output="x", agent=agent)
    record_crew(path, Crew(name="retried", agents=[agent], tasks=[task]))
    run = summarize(read_otlp_file(path))
    assert run.status == "completed"
    (finding,) = _of(findings(run), kinds.DISCARDED_CALLS)
    assert finding.numbers["reason"] == "failed" and finding.task == "job" and finding.agent == "Worker"


def _task_seconds(path: Path, trace_id: str, task: str) -> float:
    """The task's duration straight from the raw file's nanoseconds."""
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    if span["traceId"] == trace_id and span["name"] == f"execute_task {task}":
                        return (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e9
    raise AssertionError(f"no task {task} in trace {trace_id}")


def test_a_task_slower_than_the_90th_percentile_of_its_earlier_runs(tmp_path, capsys):
    path = tmp_path / "traces.jsonl"
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    for pause in (0.0, 0.0, 0.0, 0.0, 0.4):
        agent = Agent(role="Analyst", goal="g", backstory="b", llm=OfflineLLM(), tools=[Lookup(pause=pause)])
        task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
        Crew(name="repeated", agents=[agent], tasks=[task]).kickoff()
    handle.shutdown()
    runs = all_runs(read_otlp_file(path))  # newest first
    latest, earlier = runs[0], runs[1:]
    (slow,) = _of(findings(latest, earlier), kinds.SLOWER)
    durations = [_task_seconds(path, run.trace_id, "analyse") for run in earlier]
    assert slow.numbers["median"] == pytest.approx(statistics.median(durations), abs=1e-9)
    p90 = statistics.quantiles(durations, n=10, method="inclusive")[8]
    assert slow.numbers["p90"] == pytest.approx(p90, abs=1e-9) and slow.numbers["runs"] == 4
    assert slow.numbers["time"] == pytest.approx(_task_seconds(path, latest.trace_id, "analyse"), abs=1e-9)
    usual = (kinds.SLOWER, kinds.MORE_TOKENS, kinds.COSTLIER)
    for run in earlier[-3:]:  # too few earlier runs to compare with
        assert [f for f in findings(run, runs) if f.kind in usual] == []
    assert _of(findings(latest, earlier, Rules(min_history=5)), kinds.SLOWER) == []  # too few runs for 5
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "slower than usual (task analyse, agent Analyst)" in out and "over 4 earlier runs" in out


def test_summary_shows_the_findings_in_text_and_json(guarded, capsys):
    _, _, path = guarded
    assert main(["summary", str(path)]) == 0
    text = capsys.readouterr().out
    findings_section = text.split("\nFindings\n", 1)[1].split("\n\n", 1)[0]
    assert "redundant tool calls (task research, agent Researcher): lookup called 2 times" in findings_section
    assert "Task shares\n  research:" in text and "Model what-if" in text and "gpt-4.1-nano $" in text
    assert main(["summary", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {f["kind"] for f in data["findings"]} == {
        kinds.REDUNDANT_TOOL_CALLS,
        kinds.DISCARDED_CALLS,
        kinds.RESENT_PROMPT,
    }
    assert data["task_shares"][0]["token_share"] == 1.0 and data["history_runs"] == 0


def test_the_demo_shows_a_findings_section_saying_none(tmp_path, capsys):
    llm = OfflineLLM()
    path = tmp_path / "plain.jsonl"
    agent = Agent(role="Writer", goal="g", backstory="b", llm=llm)
    record_crew(
        path, Crew(name="plain", agents=[agent], tasks=[Task(description="d", expected_output="x", agent=agent)])
    )
    assert main(["summary", str(path)]) == 0
    assert "\nFindings\n  none\n" in capsys.readouterr().out


@pytest.mark.parametrize(("variable", "value"), [(kinds.MIN_HISTORY_ENV, "0"), (kinds.PROMPT_GROWTH_ENV, "x")])
def test_bad_thresholds_are_one_line_errors(guarded, capsys, monkeypatch, variable, value):
    _, _, path = guarded
    monkeypatch.setenv(variable, value)
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{variable}={value!r} is not accepted" in err


def test_runs_counts_findings_and_marks_a_completed_run_with_failed_calls(tmp_path, capsys):
    path = tmp_path / "traces.jsonl"
    agent = Agent(role="Worker", goal="g", backstory="b", llm=OfflineLLM(fail_calls=[1]), max_retry_limit=1)
    record_crew(
        path, Crew(name="retried", agents=[agent], tasks=[Task(description="d", expected_output="x", agent=agent)])
    )
    capsys.readouterr()
    assert main(["runs", str(path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "completed" and row["failed_llm_calls"] == 1 and row["findings"] == 1
    assert main(["runs", str(path)]) == 0
    assert "completed (1 failed call retried)" in capsys.readouterr().out


def test_an_agent_cut_short_by_max_iter_is_a_forced_final_answer(tmp_path):
    path = tmp_path / "traces.jsonl"
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    agent = Agent(role="Analyst", goal="g", backstory="b", llm=llm, tools=[Lookup()], max_iter=1)
    task = Task(name="analyse", description="Analyse tracing.", expected_output="x", agent=agent)
    record_crew(path, Crew(name="short", agents=[agent], tasks=[task]))
    (finding,) = _of(findings(summarize(read_otlp_file(path))), kinds.FORCED_FINAL_ANSWER)
    forced = llm.usages[-1]
    assert finding.numbers == {"calls_before": len(llm.usages) - 1} and finding.agent == "Analyst"
    assert finding.tokens == forced["prompt_tokens"] + forced["completion_tokens"]
    call = Call(forced["prompt_tokens"], forced["completion_tokens"])
    assert finding.cost_usd == usd(PUBLISHED["gpt-4o-mini"].cost(call))


def test_the_forced_final_answer_text_is_crewais_own():
    from crewai.utilities.i18n import I18N

    assert I18N().errors("force_final_answer").startswith(kinds.FORCE_FINAL_ANSWER_TEXT)
