"""Ids read back from a trace name the report's files and HTML anchors: only 16 or 32 hex digits (or their
base64 form) are accepted, anything else refuses the file in one line, and no page is written outside --out."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from crewtrace.cli import main
from tests.helpers import record_one_task_run


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """One real run, written as OTLP-JSON lines."""
    return record_one_task_run(tmp_path_factory.mktemp("recorded") / "traces.jsonl", "hostile")


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


def _relinked(recorded: Path, tmp_path: Path, links: dict[str, str], repeat: str | None = None) -> Path:
    """The recorded file with some spans' parents changed (span name -> parent span name), and one span repeated."""
    messages = [json.loads(line) for line in recorded.read_text().splitlines()]
    spans = [s for m in messages for s in _spans_of(m)]
    by_name = {s["name"]: s for s in spans}
    for child, parent in links.items():
        by_name[child]["parentSpanId"] = by_name[parent]["spanId"]
    if repeat is not None:
        _spans_of(messages[-1]).append(dict(by_name[repeat], name="impostor"))
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


@pytest.mark.parametrize(
    ("links", "repeat"),
    [
        ({"invoke_workflow hostile": "invoke_workflow hostile"}, None),  # its own parent
        ({"invoke_workflow hostile": "execute_task job"}, None),  # the crew under its task: a loop of two
        ({"execute_task job": "invoke_agent Worker"}, "invoke_agent Worker"),  # a loop, and a repeated id
    ],
)
def test_parent_loops_and_repeated_ids_end_in_every_command(recorded, tmp_path, capsys, caplog, links, repeat):
    """Each command finishes (a loop is cut and said, never followed)."""
    path = _relinked(recorded, tmp_path, links, repeat)
    for argv in (["summary", str(path)], ["runs", str(path)], ["report", str(path), "--out", str(tmp_path / "site")]):
        caplog.clear()
        assert main(argv) in (0, 2), argv
        assert "Traceback" not in capsys.readouterr().err
        said = caplog.text
        assert ("1 parent link(s) that formed a loop cut" in said) or ("1 span(s) with a repeated id" in said), said


def test_control_characters_from_a_trace_never_reach_the_terminal(recorded, tmp_path, capsys):
    """A crew name with ESC sequences (retitle, clear the screen, write the clipboard) and a bidi override
    comes out escaped in summary and runs, as text and as JSON."""
    hostile = "evil\x1b]0;pwned\x07\x1b[2J\x1b]52;c;Y3VybA==\x07\u202etxt.exe\x9b"
    path = _rewritten(recorded, tmp_path, "hostile", hostile)
    for argv in (["summary", str(path)], ["runs", str(path)], ["summary", str(path), "--json"]):
        capsys.readouterr()
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert not any(c in out for c in "\x1b\x07\u202e\x9b"), (argv, out)
        assert "evil" in out
    capsys.readouterr()
    main(["summary", str(path)])
    assert "\\x1b]0;pwned\\x07" in capsys.readouterr().out  # shown, not acted on


def test_trace_files_and_pages_only_their_owner_can_read(tmp_path):
    """They hold prompts and answers: 0600 files in 0700 directories, under the usual umask 022."""
    old = os.umask(0o022)
    try:
        path = record_one_task_run(tmp_path / "new" / "traces.jsonl", "private")
        assert main(["report", str(path), "--out", str(tmp_path / "site")]) == 0
    finally:
        os.umask(old)
    files = [path, *(tmp_path / "site").rglob("*.html")]
    assert len(files) == 3
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    assert {stat.S_IMODE(d.stat().st_mode) for d in (path.parent, tmp_path / "site" / "runs")} == {0o700}
