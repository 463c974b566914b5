"""Text no encoder can write (lone surrogates) and text no wrapper should crawl (one huge word): exported and
shown whole, without a logged traceback (#25 items 9 and 10)."""

from __future__ import annotations

import json
import logging

from crewai import Agent, Crew, Task
from crewai.tools import BaseTool

import crewtrace
from crewtrace import attributes
from crewtrace.cli import main
from crewtrace.offline_llm import OfflineLLM
from crewtrace.report.render import _TEXT_WIDTH, render_text
from crewtrace.report.summary import summarize
from tests.helpers import record_one_task_run, rewrite_spans, set_attribute
from tests.receivers import GrpcReceiver

BROKEN = "bad \ud800 text \udfff end"  # what a tool's careless decode("utf-8", "surrogateescape") can return


class SurrogateTool(BaseTool):
    name: str = "lookup"
    description: str = "Looks a topic up."

    def _run(self, topic: str) -> str:
        return BROKEN


def test_lone_surrogates_from_a_tool_are_exported_replaced_without_an_error(fresh_global_provider, caplog):
    agent = Agent(role="Worker", goal="g", backstory="b", llm=OfflineLLM(), tools=[SurrogateTool()])
    crew = Crew(name="surrogates", agents=[agent], tasks=[Task(description="d", expected_output="x", agent=agent)])
    with GrpcReceiver() as receiver, caplog.at_level(logging.WARNING):
        handle = crewtrace.instrument(endpoint=receiver.endpoint)
        result = crew.kickoff()
        handle.shutdown()
        records = receiver.records()
    assert BROKEN in result.raw  # the crew's own result is untouched
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [], caplog.text
    (tool,) = [r for r in records if r.name == "execute_tool lookup"]
    assert tool.attributes[attributes.GEN_AI_TOOL_CALL_RESULT] == "bad \ufffd text \ufffd end"
    (root,) = [r for r in records if r.parent_id is None]
    assert "\ufffd text \ufffd" in root.attributes[attributes.CREW_FINAL_OUTPUT]


def test_lone_surrogates_in_a_file_are_shown_replaced(tmp_path, capsys):
    recorded = record_one_task_run(tmp_path / "clean.jsonl", "surrogates")

    def edit(span):
        span["name"] += " \ud800"
        span.setdefault("attributes", []).append({"key": "k\udfff", "value": {"stringValue": "v\ud800"}})

    path = rewrite_spans(recorded, tmp_path / "surrogates.jsonl", edit)
    for argv in (["summary", str(path)], ["summary", str(path), "--json"], ["runs", str(path)]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "\ufffd" in out or argv[0] == "runs"  # runs shows no span name
    assert main(["report", str(path), "--out", str(tmp_path / "site")]) == 0
    assert any("\ufffd" in page.read_text(encoding="utf-8") for page in (tmp_path / "site").rglob("*.html"))


def test_one_huge_word_is_shown_whole_in_lines_of_the_text_width(tmp_path):
    """The summary slices a word longer than a line itself (textwrap does it in quadratic time); the speed is in
    docs/benchmarks.md, this checks the slicing keeps every character and the line width."""
    from crewtrace.report.records import read_otlp_file

    recorded = record_one_task_run(tmp_path / "clean.jsonl", "wordy")
    word = "".join(chr(ord("a") + i % 26) for i in range(250_003))
    final = {"stringValue": f"Start {word} end."}
    path = rewrite_spans(
        recorded, tmp_path / "wordy.jsonl", lambda span: set_attribute(span, attributes.CREW_FINAL_OUTPUT, final)
    )
    text = render_text(summarize(read_otlp_file(path)))
    section = text.split("Final output", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert all(len(line) <= _TEXT_WIDTH for line in section)
    assert "".join(line.strip() for line in section).replace(" ", "") == f"Start{word}end."


def test_json_output_stays_json_with_controls_a_terminal_would_act_on(tmp_path, capsys):
    """C1 controls, DEL and bidi overrides are written as JSON's own \\u escapes (not \\x, which is no JSON)."""
    recorded = record_one_task_run(tmp_path / "clean.jsonl", "controls")
    hostile = "crew\x9b31m\x7f\u202eevil\u202c"
    name = {"stringValue": hostile}
    path = rewrite_spans(
        recorded, tmp_path / "controls.jsonl", lambda span: set_attribute(span, attributes.GEN_AI_WORKFLOW_NAME, name)
    )
    for command in ("summary", "runs"):
        assert main([command, str(path), "--json"]) == 0
        out = capsys.readouterr().out
        assert "\x9b" not in out and "\u202e" not in out and "\\u009b" in out
        data = json.loads(out)
        assert (data if command == "summary" else data[0])["crew"] == hostile
