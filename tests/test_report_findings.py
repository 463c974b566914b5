"""The report's waterfall and findings, read back in headless Chromium: every span of the run is a row, rows
are nested and placed by time, a click shows a span's attributes and events, and the findings link to their
spans (#26)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crewtrace.cli import main
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report import findings as kinds
from tests.browser import Browser, chromium
from tests.helpers import guarded_crew, record_crew

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("findings-site")
    record_crew(work / "traces.jsonl", guarded_crew(OfflineLLM(model="gpt-4o-mini", provider="openai")))
    assert main(["report", str(work / "traces.jsonl"), "--out", str(work / "site")]) == 0
    return work


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    with chromium(tmp_path_factory.mktemp("profile")) as running:
        yield running


def _raw_spans(path: Path) -> dict[str, dict]:
    """The file's spans by id, straight from the JSON."""
    return {
        span["spanId"]: span
        for line in path.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }


def test_the_waterfall_has_every_span_nested_and_placed_by_time(site, browser):
    spans = _raw_spans(site / "traces.jsonl")
    (page_file,) = (site / "site" / "runs").glob("*.html")
    page = browser.open(page_file.as_uri())
    rows = page.locator("#waterfall details.span")
    ids = [rows.nth(i).get_attribute("id").removeprefix("w-") for i in range(rows.count())]
    assert sorted(ids) == sorted(spans)  # every span, once
    depth = {span_id: int(rows.nth(i).get_attribute("data-depth")) for i, span_id in enumerate(ids)}
    for position, span_id in enumerate(ids):
        parent = spans[span_id].get("parentSpanId")
        if parent:
            assert ids.index(parent) < position and depth[span_id] == depth[parent] + 1, spans[span_id]["name"]
        else:
            assert depth[span_id] == 0 and position == 0
    boxes = {span_id: rows.nth(i).locator("summary .bar").bounding_box() for i, span_id in enumerate(ids)}
    by_start = sorted(spans, key=lambda s: int(spans[s]["startTimeUnixNano"]))
    lefts = [boxes[s]["x"] for s in by_start]
    assert lefts == sorted(lefts)  # bars left to right in start order
    for span_id, span in spans.items():
        parent = span.get("parentSpanId")
        if parent:  # a child's bar lies within its parent's
            assert boxes[span_id]["x"] >= boxes[parent]["x"] - 1
            assert boxes[span_id]["x"] + boxes[span_id]["width"] <= boxes[parent]["x"] + boxes[parent]["width"] + 1
    page.close()


def test_a_click_shows_the_spans_attributes_and_events(site, browser):
    spans = _raw_spans(site / "traces.jsonl")
    (page_file,) = (site / "site" / "runs").glob("*.html")
    page = browser.open(page_file.as_uri())
    chat = next(s for s in spans.values() if s["name"].startswith("chat ") and s.get("events"))
    row = page.locator(f"#w-{chat['spanId']}")
    body = row.locator(".span-body")
    assert not body.is_visible()
    row.locator("summary").click()
    assert body.is_visible()
    shown = {
        body.locator("tr.attribute").nth(i).locator("th").inner_text(): body.locator("tr.attribute").nth(i)
        for i in range(body.locator("tr.attribute").count())
    }
    assert set(shown) == {kv["key"] for kv in chat["attributes"]}
    tokens = next(kv for kv in chat["attributes"] if kv["key"] == "gen_ai.usage.input_tokens")
    assert shown["gen_ai.usage.input_tokens"].locator("td").inner_text() == tokens["value"]["intValue"]
    assert body.locator("li.event").count() == len(chat["events"])
    assert chat["events"][0]["name"] in body.locator("li.event").first.inner_text()
    page.close()


def test_the_findings_section_links_each_finding_to_its_spans(site, browser, capsys):
    capsys.readouterr()
    assert main(["summary", str(site / "traces.jsonl"), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)["findings"]
    (page_file,) = (site / "site" / "runs").glob("*.html")
    page = browser.open(page_file.as_uri())
    items = page.locator("#findings li.finding")
    assert [items.nth(i).get_attribute("data-kind") for i in range(items.count())] == [f["kind"] for f in expected]
    redundant = page.locator(f'#findings li.finding[data-kind="{kinds.REDUNDANT_TOOL_CALLS}"] a')
    assert redundant.count() == 2
    target = redundant.first.get_attribute("href")
    redundant.first.click()
    assert page.evaluate("location.hash") == target and "execute_tool lookup" in page.locator(target).inner_text()
    page.locator("#findings details.what-if > summary").first.click()
    assert "gpt-4.1-nano" in page.locator("#findings details.what-if").first.inner_text()
    index = browser.open((site / "site" / "index.html").as_uri())
    assert index.locator("#runs tbody tr td:nth-child(8)").all_inner_texts() == [str(len(expected))]
    index.close()
    page.close()
