"""``crewtrace report``: the static site, read back in a real headless Chromium (tests/browser.py).

The runs: a crew with two parallel tasks, a tool and a failing tool; four runs in two sessions (one failing);
one run with capture off. Every number a page shows is checked against ``summary --json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest

import crewtrace
from crewtrace.cli import main
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.render import money, ms
from tests.browser import Browser, chromium
from tests.helpers import one_task_crew, record_parallel_run, record_runs
from tests.local_http import LocalHTTPServer

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Every run written to one file, then the site made from it by the CLI."""
    work = tmp_path_factory.mktemp("report")
    traces = work / "traces.jsonl"
    record_runs(exporter="file", file_path=str(traces))
    handle = crewtrace.instrument(exporter="file", file_path=str(traces), capture_content=False)
    one_task_crew(OfflineLLM(model=MODEL, provider="openai"), name="private").kickoff()
    handle.shutdown()
    record_parallel_run(traces, OfflineLLM(model=MODEL, provider="openai"))
    assert main(["report", str(traces), "--out", str(work / "site")]) == 0
    return work


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    with chromium(tmp_path_factory.mktemp("profile")) as running:
        yield running


def _json(capsys, *argv: str):
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _page_of(site: Path, trace_id: str) -> str:
    (page,) = (site / "site" / "runs").glob(f"{trace_id}-*.html")
    return page.as_uri()


def _run(capsys, site: Path, crew: str) -> dict:
    return next(r for r in _json(capsys, "runs", str(site / "traces.jsonl")) if r["crew"] == crew)


def test_the_index_lists_every_run_newest_first_with_the_numbers_of_runs(site, browser, capsys):
    runs = _json(capsys, "runs", str(site / "traces.jsonl"), "--limit", "100")
    page = browser.open((site / "site" / "index.html").as_uri())
    rows = page.locator("#runs tbody tr")
    assert rows.count() == len(runs) == 6
    for i, run in enumerate(runs):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        assert cells[1:] == [
            run["crew"],
            run["status"],
            ms(run["duration_s"]),
            f"{run['total_tokens']:,}",
            str(run["requests"]),
            money(run["cost_usd"]),
            str(run["findings"]),
            run["session_id"] or "-",
            run["user_id"] or "-",
            run["trace_id"],
        ]
    page.locator("#runs a", has_text="beta").click()
    assert page.locator("header h1").inner_text() == "beta"
    page.close()


def test_every_run_page_has_the_numbers_of_its_summary(site, browser, capsys):
    for run in _json(capsys, "runs", str(site / "traces.jsonl"), "--limit", "100"):
        data = _json(capsys, "summary", str(site / "traces.jsonl"), "--trace-id", run["trace_id"])
        page = browser.open(_page_of(site, run["trace_id"]))
        labels, values = page.locator(".card .label"), page.locator(".card .value")
        cards = dict(zip(labels.all_inner_texts(), values.all_inner_texts(), strict=True))
        assert cards == {
            "Total tokens": f"{data['total_tokens']:,}",
            "Prompt tokens": f"{data['input_tokens']:,}",
            "Completion tokens": f"{data['output_tokens']:,}",
            "Cached prompt tokens": f"{data['cached_input_tokens']:,}",
            "Requests": f"{data['requests']:,}",
            "Tool calls": f"{data['tool_calls']:,}",
            "Execution time": ms(data["duration_s"]),
            "Estimated cost": money(data["cost_usd"]),
        }, data["crew"]
        statuses = page.locator("#tasks tbody td:nth-child(5)").all_inner_texts()
        assert statuses == [t["status"] for t in data["tasks"]]
        page.close()


def test_a_run_page_shows_every_section_with_the_summarys_numbers(site, browser, capsys):
    run = _run(capsys, site, "recorded")
    data = _json(capsys, "summary", str(site / "traces.jsonl"), "--trace-id", run["trace_id"])
    page = browser.open(_page_of(site, run["trace_id"]))
    headings = page.locator("section > h2").all_inner_texts()
    expected_sections = ["Execution summary", "Tasks and agents", "Cost per agent", "Final output", "Timeline"]
    assert headings == [*expected_sections, "Waterfall", "Task details", "Failure points", "Findings"]

    def card(label: str) -> str:
        return page.locator(f'.card[data-label="{label}"] .value').inner_text()

    assert card("Total tokens") == f"{data['total_tokens']:,}"
    assert card("Prompt tokens") == f"{data['input_tokens']:,}"
    assert card("Completion tokens") == f"{data['output_tokens']:,}"
    assert card("Requests") == str(data["requests"])
    assert card("Estimated cost") == money(data["cost_usd"]) and data["cost_usd"] > 0
    tasks = page.locator("#tasks tbody tr")
    assert tasks.count() == len(data["tasks"]) == 4
    for i, task in enumerate(data["tasks"]):
        cells = [c.strip() for c in tasks.nth(i).locator("td").all_inner_texts()]
        assert cells == [
            str(task["number"]),
            task["name"],
            task["agent"],
            task["model"],
            task["status"],
            ms(task["duration_s"]),
            f"{task['tokens']:,}",
            str(task["requests"]),
            money(task["cost_usd"]),
        ]
    agents = page.locator("#agents tbody tr")
    assert [agents.nth(i).locator("td").first.inner_text() for i in range(agents.count())] == [
        a["role"] for a in data["agents"]
    ]
    assert page.locator("#agents tbody tr td:last-child").all_inner_texts() == [
        money(a["cost_usd"]) for a in data["agents"]
    ]
    assert page.locator("#final-output pre").inner_text() == data["final_output"]
    page.close()


def _bar_box(page, task: str) -> dict:
    return page.locator(f'details.task[data-task="{task}"] > summary .bar').bounding_box()


def test_the_timeline_overlaps_parallel_tasks_and_opens_each_to_its_steps(site, browser, capsys):
    run = _run(capsys, site, "recorded")
    page = browser.open(_page_of(site, run["trace_id"]))
    boxes = {task: _bar_box(page, task) for task in ("research", "probe", "check", "write")}
    right = {task: box["x"] + box["width"] for task, box in boxes.items()}
    assert boxes["probe"]["x"] < right["check"] and boxes["check"]["x"] < right["probe"]  # side by side
    assert right["research"] <= min(boxes["probe"]["x"], boxes["check"]["x"]) + 1  # research came first
    assert boxes["write"]["x"] >= max(right["probe"], right["check"]) - 1  # write came last
    steps = page.locator('details.task[data-task="research"] > .row .name')
    assert not steps.first.is_visible()  # closed until opened
    page.locator('details.task[data-task="research"] > summary').click()
    names = steps.all_inner_texts()
    assert names[0] == "invoke_agent Researcher"
    assert "execute_tool notebook_lookup" in names and names.count("chat gpt-4o-mini") >= 2
    assert all(steps.nth(i).is_visible() for i in range(steps.count()))
    page.close()


def test_failure_points_link_to_their_spans_and_task_details_show_the_tools(site, browser, capsys):
    run = _run(capsys, site, "recorded")
    page = browser.open(_page_of(site, run["trace_id"]))
    links = page.locator("#failures a")
    assert links.count() >= 3
    assert "ConnectionError" in page.locator("#failures").inner_text()
    target = links.first.get_attribute("href")
    links.first.click()
    assert page.evaluate("location.hash") == target
    failed = page.locator(target)
    assert failed.is_visible() and "execute_tool broken_lookup" in failed.inner_text()  # its task opened
    assert failed.locator(".bar.failed").count() == 1
    page.locator("#task-1 > summary").click()
    detail = page.locator("#task-1").inner_text()
    assert "Research tracing." in detail and "notebook_lookup" in detail and "Arguments" in detail
    page.close()


def test_a_run_recorded_with_capture_off_says_what_was_not_captured(site, browser, capsys):
    run = _run(capsys, site, "private")
    page = browser.open(_page_of(site, run["trace_id"]))
    assert page.locator("#final-output").inner_text().endswith("(not captured)")
    page.locator("#task-1 > summary").click()
    assert page.locator("#task-1").inner_text().count("(not captured)") >= 4  # description, expected, input, output
    assert page.locator('.card[data-label="Total tokens"] .value').inner_text() == f"{run['total_tokens']:,}"
    page.close()


def test_served_by_a_static_server_it_loads_nothing_else_and_keeps_a_screenshot(site, browser, capsys, tmp_path):
    handler = functools.partial(_Quiet, directory=str(site / "site"))
    with LocalHTTPServer(handler) as server:  # type: ignore[arg-type]
        first = len(browser.requests)
        page = browser.open(f"{server.base_url}/index.html")
        page.locator("#runs a", has_text="recorded").click()
        page.locator('details.task[data-task="research"] > summary').click()
        assert page.locator("header h1").inner_text() == "recorded"
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        page.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    asked = browser.requests[first:]
    assert asked and all(url.startswith(server.base_url + "/") for url in asked), asked
    assert len(asked) == 2  # the two pages: no stylesheet, script, font or image from anywhere


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass
