"""A trace file or a Jaeger server of the wrong shape, too big or too slow: always one line, never a traceback,
never unbounded memory or time (#25 items 4 and 8)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import pytest

from crewtrace.cli import main
from crewtrace.report import jaeger
from tests.helpers import record_one_task_run, rewrite_spans, set_attribute
from tests.local_http import LocalHTTPServer, QuietHandler

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    return record_one_task_run(tmp_path_factory.mktemp("recorded") / "traces.jsonl", "sources")


def _one_line_error(capsys, argv: list[str], *wanted: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    for text in wanted:
        assert text in out.err, out.err
    return out.err


def _span(**changes) -> dict:
    span = {"traceId": TRACE_ID, "spanId": "b7ad6b7169203331", "name": "invoke_workflow c"}
    span |= {"startTimeUnixNano": "1", "endTimeUnixNano": "2"}
    return span | changes


def _line(*spans) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


WRONG_SHAPES = {
    "a list at top level": "[1, 2, 3]",
    "a string at top level": '"traces"',
    "a number at top level": "42",
    "null at top level": "null",
    "resourceSpans not a list": '{"resourceSpans": {"a": 1}}',
    "spans given as strings": json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": ["x", "y"]}]}]}),
    "a value of null": _line(_span(attributes=[{"key": "k", "value": None}, {"key": "j", "value": 5}])),
    "a list where a number is expected": _line(_span(startTimeUnixNano=[1, 2])),
    "a time of 400 digits": _line(_span(endTimeUnixNano="9" * 400)),
    "a time of 1e400": _line(_span(endTimeUnixNano=1e400)).replace("Infinity", "1e400"),
    "a negative time": _line(_span(startTimeUnixNano=-5)),
    "an int of 5000 digits": _line(_span(attributes=[{"key": "k", "value": {"intValue": "7" * 5000}}])),
    "a name that is an object": _line(_span(name={"a": 1})),
    "an event list of numbers": _line(_span(events=[1, 2])),
    "a status that is a string": _line(_span(status="ERROR")),
    "deep nesting": '{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "deep attribute values": _line(_span(attributes=[{"key": "k", "value": "@"}])).replace(
        '"@"', '{"arrayValue": {"values": [' * 1000 + "]}}" * 1000
    ),
}


@pytest.mark.parametrize("content", WRONG_SHAPES.values(), ids=WRONG_SHAPES.keys())
@pytest.mark.parametrize("command", ["summary", "runs", "report"])
def test_a_file_of_the_wrong_shape_is_one_line_naming_file_and_line(tmp_path, capsys, content, command):
    path = tmp_path / "bad.jsonl"
    path.write_text(_line(_span(spanId="1111111111111111", name="ok")) + "\n" + content + "\n")
    argv = [command, str(path)] + (["--out", str(tmp_path / "site")] if command == "report" else [])
    _one_line_error(capsys, argv, f"{path}:2 is not an OTLP/JSON line")


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "codec can't decode"), (b'{"a": "\xe9t\xe9"}\n', "utf-8")],
    ids=["binary", "latin-1"],
)
def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path, capsys, content, why):
    path = tmp_path / "image.png"
    path.write_bytes(content)
    _one_line_error(capsys, ["summary", str(path)], f"{path}:1 is not an OTLP/JSON line", why)


def test_numbers_of_the_wrong_type_on_known_attributes_are_read_as_absent(recorded, tmp_path, capsys):
    """A hand-made file may put a string or a list where crewtrace writes a count or a cost."""
    wrong = {"stringValue": "lots"}

    def edit(span):
        for kv in span.get("attributes", []):
            if "tokens" in kv["key"] or "cost" in kv["key"] or "requests" in kv["key"]:
                kv["value"] = wrong

    path = rewrite_spans(recorded, tmp_path / "wrong-types.jsonl", edit)
    capsys.readouterr()
    assert main(["summary", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_tokens"] == 0 and summary["cost_usd"] is None


# --- Jaeger ------------------------------------------------------------------------------------------------------


def _serving(answer) -> LocalHTTPServer:
    """A Jaeger stand-in: ``answer(handler)`` writes the whole response to every GET."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # crewtrace hung up, as it should
                answer(self)

    return LocalHTTPServer(Handler)


JAEGER_SHAPES = {
    "a list": b"[1, 2, 3]",
    "an error string": b'{"error": "boom"}',
    "an error object": b'{"error": {"httpCode": 500, "message": "boom"}}',
    "not JSON": b"<html>proxy error</html>",
    "a string": b'"hello"',
    "spans given as numbers": b'{"result": {"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}}',
}


@pytest.mark.parametrize("body", JAEGER_SHAPES.values(), ids=JAEGER_SHAPES.keys())
@pytest.mark.parametrize("by_id", [True, False], ids=["trace id", "search"])
def test_a_jaeger_answer_of_the_wrong_shape_is_one_line(capsys, body, by_id):
    with _serving(lambda handler: handler.reply(200, body, "application/json")) as server:
        argv = ["summary", "--jaeger", server.base_url] + (["--trace-id", TRACE_ID] if by_id else [])
        _one_line_error(capsys, argv, f"Jaeger at {server.base_url}")
        _one_line_error(capsys, ["runs", "--jaeger", server.base_url, "--service", "s"], "Jaeger at")


def test_a_jaeger_answer_over_the_size_cap_is_abandoned_after_the_cap(capsys, monkeypatch):
    sent = []

    def endless(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"result": {"resourceSpans": [' + b" " * 1024)
        for _ in range(64 * 1024):  # 64 MiB at most, far past the cap: crewtrace must hang up before
            handler.wfile.write(b" " * 1024)
            sent.append(1024)

    monkeypatch.setenv(jaeger.MAX_BYTES_ENV, "1000000")
    with _serving(endless) as server:
        _one_line_error(
            capsys, ["summary", "--jaeger", server.base_url, "--trace-id", TRACE_ID], "more than 1000000 bytes"
        )
    assert sum(sent) < 8 * 1024 * 1024
    assert jaeger.DEFAULT_MAX_BYTES == 256 * 1024 * 1024


def test_a_jaeger_that_trickles_is_abandoned_at_the_overall_deadline(capsys, monkeypatch):
    """One byte every 0.2 s keeps every socket read under its timeout; the deadline for the whole read ends it."""
    stop = threading.Event()
    started = []

    def trickle(handler) -> None:
        handler.send_response(200)
        handler.end_headers()
        started.append(time.monotonic())
        for _ in range(300):  # 60 s at most, so the test ends even if crewtrace never hung up
            if stop.is_set():
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)

    monkeypatch.setenv(jaeger.TIMEOUT_ENV, "1.5")
    with _serving(trickle) as server:
        _one_line_error(
            capsys, ["runs", "--jaeger", server.base_url, "--service", "s"], "did not answer within 1.5 s in all"
        )
        stop.set()
    assert started, "the server never answered"


@pytest.mark.parametrize(("env", "value"), [(jaeger.MAX_BYTES_ENV, "lots"), (jaeger.TIMEOUT_ENV, "-1")])
def test_bad_read_limits_are_one_line_naming_the_variable(capsys, monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    _one_line_error(capsys, ["runs", "--jaeger", "http://127.0.0.1:9"], f"{env}={value!r} is not accepted")


def test_a_password_in_the_jaeger_url_is_never_printed(capsys):
    err = _one_line_error(capsys, ["runs", "--jaeger", "http://reader:hunter2@127.0.0.1:9"], "cannot reach Jaeger")
    assert "hunter2" not in err and "reader:[REDACTED]@127.0.0.1:9" in err


def test_an_int_beyond_64_bits_is_a_shape_error(tmp_path, capsys):
    """OTLP's intValue is int64: anything wider is refused in one line, not turned into an overflow later."""
    path = tmp_path / "wide.jsonl"
    path.write_text(_line(_span(attributes=[{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9" * 30}}])))
    _one_line_error(capsys, ["summary", str(path)], f"{path}:1 is not an OTLP/JSON line", "64-bit integer")


def test_captured_messages_nested_without_end_are_read_as_not_json(recorded, tmp_path, capsys):
    """The findings read the captured messages: JSON nested 5,000 deep there is skipped, not a crash."""
    deep = {"stringValue": "[" * 5000 + "]" * 5000}
    path = rewrite_spans(
        recorded, tmp_path / "deep.jsonl", lambda span: set_attribute(span, "gen_ai.input.messages", deep)
    )
    capsys.readouterr()
    assert main(["summary", str(path)]) == 0
    assert "\nFindings\n" in capsys.readouterr().out


def test_times_outside_the_run_keep_the_timeline_on_its_track(recorded, tmp_path, capsys):
    """A task before its run, a run that ends before it starts: the bars stay within the timeline's width."""

    def edit(span):
        if not span.get("parentSpanId"):
            span["startTimeUnixNano"], span["endTimeUnixNano"] = str(2**64 - 1), "0"
        elif span["name"].startswith("execute_task"):
            span["startTimeUnixNano"] = "0"

    capsys.readouterr()
    assert main(["summary", str(rewrite_spans(recorded, tmp_path / "edited.jsonl", edit))]) == 0
    out = capsys.readouterr().out
    timeline = out.split("\nTimeline\n", 1)[1].split("\n\n", 1)[0]
    assert all(len(line) < 200 for line in timeline.splitlines()), timeline[:400]


@pytest.mark.parametrize(
    ("value", "wanted"),
    [({"doubleValue": 10**400}, "not a 64-bit float"), ({"stringValue": 10**400}, "not a 64-bit value")],
    ids=["double", "string"],
)
def test_a_number_wider_than_64_bits_anywhere_is_a_shape_error(recorded, tmp_path, capsys, value, wanted):
    def edit(span):
        span.setdefault("attributes", []).append({"key": "crewai.usage.input_tokens", "value": value})

    _one_line_error(capsys, ["summary", str(rewrite_spans(recorded, tmp_path / "edited.jsonl", edit))], wanted)


def test_nan_and_infinity_are_read_as_text_so_json_output_stays_json(recorded, tmp_path, capsys):
    def edit(span):
        span.setdefault("attributes", []).extend(
            [{"key": "crewai.metadata.note", "value": {"doubleValue": "NaN"}},
             {"key": "crewai.metadata.far", "value": {"doubleValue": "Infinity"}}]
        )  # fmt: skip

    path = rewrite_spans(recorded, tmp_path / "edited.jsonl", edit)
    for command in ("summary", "runs"):
        capsys.readouterr()
        assert main([command, str(path), "--json"]) == 0
        data = json.loads(capsys.readouterr().out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
        run = data if command == "summary" else data[0]
        assert run["metadata"] == {"far": "Infinity", "note": "NaN"}
