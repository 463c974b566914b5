"""Property-based: generated OTLP-JSON (valid shapes with hostile strings, wrong shapes, cycles, huge numbers)
fed to ``summary``, ``runs`` and ``report`` never gives a traceback, never hangs, never writes outside --out,
never prints a control character, and never puts a live tag in a page (#25). Pages of a hostile run are
also opened in headless Chromium: no script runs and nothing is fetched."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crewtrace.cli import main
from tests.browser import chromium
from tests.helpers import record_one_task_run

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

HOSTILE = [
    "<script>document.title='pwned'</script>",
    '"><img src=x onerror="document.title=\'pwned\'">',
    "\x1b]0;pwned\x07",
    "\x1b[2J\x1b[H",
    "\x9b31m",
    "\u202eevil\u202c",
    "\ud800",
    "../../../../tmp/x",
    "javascript:alert(1)",
    "sk-proj-" + "A" * 30,
    "x" * 5000,
    "[" * 3000 + "]" * 3000,  # JSON nested past the parser's limit, where captured messages are read as JSON
    "",
]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60))
UNSAFE_OUTPUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
SETTINGS = settings(
    max_examples=100,
    deadline=20_000,  # ms per example: a hang fails it (the quickest examples take a few ms)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> list[dict[str, Any]]:
    """One real run's spans as OTLP/JSON (recorded before any example: strategies must not run crews)."""
    path = record_one_task_run(tmp_path_factory.mktemp("fuzz") / "traces.jsonl", "fuzzed")
    return [
        span
        for line in path.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    ]


def _line(spans: list[Any]) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


@st.composite
def hostile_texts(draw: st.DrawFn, recorded: list[dict[str, Any]]) -> str:
    """The real run with hostile strings in names, attribute values, events and status messages."""
    spans = copy.deepcopy(recorded)
    for span in spans:
        if draw(st.booleans()):
            span["name"] = draw(TEXT)
        for kv in span.get("attributes", []):
            if "stringValue" in kv["value"] and draw(st.booleans()):
                kv["value"] = {"stringValue": draw(TEXT)}
        if draw(st.booleans()):
            span["events"] = [{"name": draw(TEXT), "timeUnixNano": "1", "attributes": [
                {"key": draw(TEXT), "value": {"stringValue": draw(TEXT)}}]}]  # fmt: skip
        if draw(st.booleans()):
            span["status"] = {"code": 2, "message": draw(TEXT)}
    return _line(spans)


@st.composite
def wrong_shapes(draw: st.DrawFn, recorded: list[dict[str, Any]]) -> str:
    """The real run with one value of the wrong JSON shape, or a top level that is not an object."""
    spans = copy.deepcopy(recorded)
    junk = draw(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(min_value=-(10**30), max_value=10**30),
            st.floats(allow_nan=False),
            st.just("9" * 400),
            st.just({"intValue": "9" * 40}),  # wider than OTLP's int64
            st.just({"doubleValue": "1e400"}),
            st.just(1e300),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
            TEXT,
        )
    )
    where = draw(st.sampled_from(["top", "spans", "name", "start", "end", "attributes", "value", "status", "events"]))
    span = spans[draw(st.integers(min_value=0, max_value=len(spans) - 1))]
    if where == "top":
        return json.dumps(junk)
    if where == "spans":
        return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": junk}]}]})
    key = {"name": "name", "start": "startTimeUnixNano", "end": "endTimeUnixNano", "status": "status"}.get(where)
    if key:
        span[key] = junk
    elif where == "attributes":
        span["attributes"] = junk
    elif where == "value" and span.get("attributes"):
        span["attributes"][0]["value"] = junk
    elif where == "events":
        span["events"] = junk
    return _line(spans)


@st.composite
def cycles(draw: st.DrawFn, recorded: list[dict[str, Any]]) -> str:
    """The real run with parent links bent into loops, and spans repeated."""
    spans = copy.deepcopy(recorded)
    ids = [s["spanId"] for s in spans]
    for span in spans:
        if draw(st.booleans()):
            span["parentSpanId"] = draw(st.sampled_from(ids))
    spans += [copy.deepcopy(s) for s in spans if draw(st.booleans())]
    return _line(spans)


class Tags(HTMLParser):
    """The tags of a page that could run something: a script, or any attribute of an event handler."""

    def __init__(self) -> None:
        super().__init__()
        self.live: list[str] = []
        self.csp = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed", "img", "svg"):
            self.live.append(tag)
        self.live += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]
        urls = [(name, value or "") for name, value in attrs if name in ("href", "src", "action", "formaction")]
        self.live += [f"{tag} {name}" for name, value in urls if value.strip().lower().startswith("javascript:")]
        self.csp |= tag == "meta" and ("http-equiv", "Content-Security-Policy") in attrs


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _check(content: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = root / "traces.jsonl"
        path.write_text(content + "\n", encoding="utf-8", errors="surrogatepass")
        site = root / "site"
        for argv in (["summary", str(path)], ["summary", str(path), "--json"], ["runs", str(path)],
                     ["runs", str(path), "--json"], ["report", str(path), "--out", str(site)]):  # fmt: skip
            code, out, err = _run(argv)
            assert code in (0, 2), (argv, code, err)
            if code == 2:
                assert err.count("\n") == 1 and "Traceback" not in err, err
            assert not UNSAFE_OUTPUT.search(out + err), (argv, out + err)
            if code == 0 and "--json" in argv:
                json.loads(out)  # still JSON, its escapes included
        written = {p for p in root.rglob("*") if p.is_file()} - {path}
        assert all(site in p.parents for p in written), written
        for page in site.rglob("*.html"):
            tags = Tags()
            tags.feed(page.read_text(encoding="utf-8"))
            assert tags.live == [], (page, tags.live)
            assert tags.csp, page


@SETTINGS
@given(data=st.data())
def test_hostile_texts_are_shown_inert(recorded, data):
    _check(data.draw(hostile_texts(recorded)))


@SETTINGS
@given(data=st.data())
def test_wrong_shapes_are_one_line_errors_or_read(recorded, data):
    _check(data.draw(wrong_shapes(recorded)))


@SETTINGS
@given(data=st.data())
def test_loops_and_repeats_end(recorded, data):
    _check(data.draw(cycles(recorded)))


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_in_one_line(data):
    _check(data.decode("utf-8", errors="surrogateescape"))


@pytest.fixture
def hostile_site(tmp_path, recorded) -> Path:
    """A real run whose every name and text tries to run a script: the report's site."""
    spans = copy.deepcopy(recorded)
    payload = HOSTILE[0] + HOSTILE[1]
    for span in spans:
        span["name"] += payload
        for kv in span.get("attributes", []):
            if "stringValue" in kv["value"] and kv["key"] != "gen_ai.operation.name":  # (it tells a run's root)
                kv["value"]["stringValue"] += payload
    path = tmp_path / "hostile.jsonl"
    path.write_text(_line(spans) + "\n")
    assert main(["report", str(path), "--out", str(tmp_path / "site")]) == 0
    return tmp_path / "site"


def test_a_hostile_run_runs_no_script_in_chromium(hostile_site, tmp_path):
    pages = [hostile_site / "index.html", *sorted((hostile_site / "runs").glob("*.html"))]
    assert len(pages) == 2
    with chromium(tmp_path / "profile") as browser:
        for page_path in pages:
            dialogs: list[str] = []
            page = browser.open(page_path.as_uri())
            page.on("dialog", lambda dialog, seen=dialogs: (seen.append(dialog.message), dialog.dismiss()))
            page.wait_for_load_state("load")
            assert page.title() != "pwned" and page.title().endswith("crewtrace")  # a script would set 'pwned'
            assert dialogs == []
            assert page.locator("script").count() == 0 and page.locator("img").count() == 0
            assert page.get_by_text("<script>document.title='pwned'</script>").count() >= 1  # shown as text
            page.close()
    assert all(url.startswith("file://") for url in browser.requests), browser.requests
