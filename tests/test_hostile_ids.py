"""Ids read back from a trace name the report's files and HTML anchors: only 16 or 32 hex digits (or their
base64 form) are accepted, anything else refuses the file in one line, and no page is written outside --out."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import crewtrace
from crewtrace.cli import main
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import one_task_crew


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """One real run, written as OTLP-JSON lines."""
    path = tmp_path_factory.mktemp("recorded") / "traces.jsonl"
    handle = crewtrace.instrument(exporter="file", file_path=str(path))
    one_task_crew(OfflineLLM(), name="hostile").kickoff()
    handle.shutdown()
    return path


def _spans(path: Path) -> list[dict]:
    return [s for line in path.read_text().splitlines() for s in _spans_of(json.loads(line))]


def _spans_of(message: dict) -> list[dict]:
    return [s for rs in message["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def _rewritten(recorded: Path, tmp_path: Path, old: str, new: str) -> Path:
    """The recorded file with one id replaced everywhere it occurs."""
    path = tmp_path / "traces.jsonl"
    path.write_text(recorded.read_text().replace(f'"{old}"', json.dumps(new)))
    return path


@pytest.mark.parametrize(
    ("which", "hostile"),
    [
        ("spanId", '"><img src=x onerror=alert(1)>'),
        ("spanId", "ab/cd/ef/01234567"),
        ("traceId", "../../../../../../tmp/crewtrace-escaped"),
        ("traceId", "0123456789abcdef0123456789abcdeg"),
    ],
)
def test_an_id_that_is_not_hex_refuses_the_file_in_one_line(recorded, tmp_path, capsys, which, hostile):
    root = next(s for s in _spans(recorded) if not s.get("parentSpanId"))
    path = _rewritten(recorded, tmp_path, root[which], hostile)
    out = tmp_path / "site"
    capsys.readouterr()
    assert main(["report", str(path), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{path}:1" in error and "hex digits" in error, error
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != path]
    assert written == []
    assert list(Path("/tmp").glob("crewtrace-escaped*")) == []


def test_ids_in_protobufs_base64_json_form_are_read_as_hex(recorded, tmp_path):
    spans = _spans(recorded)
    text = recorded.read_text()
    for span in spans:
        for key in ("traceId", "spanId", "parentSpanId"):
            if span.get(key):
                text = text.replace(f'"{span[key]}"', json.dumps(base64.b64encode(bytes.fromhex(span[key])).decode()))
    path = tmp_path / "traces.jsonl"
    path.write_text(text)
    assert main(["report", str(path), "--out", str(tmp_path / "site")]) == 0
    (root,) = [s for s in spans if not s.get("parentSpanId")]
    (task,) = [s for s in spans if s["name"].startswith("execute_task")]
    page = tmp_path / "site" / "runs" / f"{root['traceId']}-{root['spanId']}.html"
    assert page.is_file() and f'id="span-{task["spanId"]}"' in page.read_text()


def test_every_page_forbids_scripts_and_loads(recorded, tmp_path):
    """A Content-Security-Policy in each page's head: even a script that got past escaping would not run."""
    assert main(["report", str(recorded), "--out", str(tmp_path / "site")]) == 0
    pages = sorted((tmp_path / "site").rglob("*.html"))
    assert len(pages) == 2
    for page in pages:
        head = page.read_text().split("</head>", 1)[0]
        assert 'http-equiv="Content-Security-Policy" content="default-src \'none\';' in head, page
        assert "<script" not in page.read_text()
