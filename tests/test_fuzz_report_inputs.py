"""Fuzzing ``crewtrace summary``, ``runs`` and ``report`` (``cli.main``) with generated trace files.

The base shape is one real recorded run (tests.helpers.record_one_task_run); hypothesis substitutes hostile
text into it, breaks its shape, or tangles its span tree. Whatever the file holds, every command must:

1. end with exit 0 or 2, never an exception escaping ``main``; on 2, exactly one line on stderr;
2. end in bounded time (hypothesis' deadline per example, and a hard watchdog per command);
3. write no file outside ``--out``;
4. write no character a terminal acts on (C0 controls but newline and tab, DEL, C1, bidi overrides and isolates),
   and ``--json`` prints standard JSON;
5. put no text of the trace into a page's markup unescaped (every tag and attribute is one the report makes).

Each example builds its file from a small, readable "case" (the edits made to the recorded run), so a
falsifying example says what was done to the run rather than dumping kilobytes of JSON.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import re
import resource
import signal
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from crewtrace.cli import main
from tests.browser import TIMEOUT_MS, chromium
from tests.helpers import record_one_task_run

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

DEADLINE = timedelta(seconds=5)  # one example: the five commands on one generated file
HARD_LIMIT_S = 20.0  # one command: past this it is a hang (hypothesis' deadline only measures, never stops)
MEMORY_HEADROOM = 2 * 1024**3  # bytes of address space one command may take beyond what the process holds
# Output (stdout, or the site's pages) may be this many times the input file, plus 1 MiB: a page is a few times
# its file (each text shown in a few places, escaped); gigabytes from kilobytes are a bug, and too much to parse.
AMPLIFICATION = 100
SETTINGS = {
    "deadline": DEADLINE,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}

# --- hostile text ------------------------------------------------------------------------------------------------

MARKUP = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</pre></td></tr></table><script>alert(1)</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    "<iframe src=javascript:alert(1)>",
    "<a href=javascript:alert(1)>x</a>",
    "<style>*{display:none}</style>",
    "</title><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
]
HOSTILE = [
    *MARKUP,
    "<!--",
    "]]>",
    "&lt;script&gt;",
    "&amp;",
    "javascript:alert(1)",
    "\x1b]0;pwned\x07",
    "\x1b[2J",
    "\x1b]52;c;Y3VybA==\x07",
    "\x9b31m",
    "\x85",
    "\u202e",
    "\u2066evil\u2069",
    "\x00",
    "\r",
    "\x7f",
    "\t",
    "\u2028\u2029",
    "\ud800",  # a lone surrogate: written as the JSON escape \ud800 (or as invalid UTF-8, see _dump)
    "\udfff",
    "\U0001f600",
    "A" * 5000,
    "x " * 2000,
    "[" * 20_000,  # deeper than any JSON parser recurses, where a text attribute holds JSON (LLM messages)
    '{"a":' * 3000,
    "[]",
    "null",
    "sk-" + "a" * 40,
    "Bearer abcdefghijklmnopqrstuvwxyz0123456789",
    "../../../../tmp/crewtrace-fuzz-escaped",
    "{{7*7}}%s%n",
    "",
    " ",
]

texts = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.lists(st.one_of(st.sampled_from(HOSTILE[:20]), st.text(max_size=8)), min_size=2, max_size=4).map("".join),
)

_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


# --- the recorded run --------------------------------------------------------------------------------------------

ROLES = ("workflow", "task", "agent", "chat")
_OPERATIONS = {"invoke_workflow": "workflow", "execute_task": "task", "invoke_agent": "agent", "chat": "chat"}
TEXT_KEYS = {
    "workflow": (
        "gen_ai.workflow.name",
        "crewai.crew.final_output",
        "crewai.crew.inputs",
        "crewai.crew.process",
        "session.id",
        "user.id",
        "crewai.metadata.note",
        "error.type",
    ),
    "task": (
        "crewai.task.name",
        "crewai.task.description",
        "crewai.task.expected_output",
        "crewai.task.output",
        "crewai.task.context",
        "crewai.task.agent_role",
        "crewai.task.key",
        "crewai.task.id",
        "error.type",
    ),
    "agent": (
        "gen_ai.agent.name",
        "crewai.agent.goal",
        "crewai.agent.backstory",
        "crewai.agent.output",
        "gen_ai.request.model",
        "gen_ai.provider.name",
    ),
    "chat": (
        "gen_ai.request.model",
        "gen_ai.provider.name",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "error.type",
    ),
}
EVENT_NAMES = ("exception", "crewai.tool.failure", "crewai.agent.thought", "crewai.tool.input_error")
EVENT_KEYS = (
    "exception.message",
    "exception.type",
    "crewai.tool.error",
    "gen_ai.tool.name",
    "error.type",
    "crewai.agent.thought.text",
)
OTHER_TRACE = "ab" * 16
GHOST_SPAN = "0badc0de0badc0de"

_RECORDED: list[dict] = []  # the recorded run's messages, kept out of hypothesis' falsifying examples


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> list[dict]:
    """One real run (a crew, its task, its agent, one LLM call), as the OTLP/JSON messages of its file."""
    path = record_one_task_run(tmp_path_factory.mktemp("recorded") / "traces.jsonl", "fuzzed")
    messages = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert sorted(_by_role(messages)) == sorted(ROLES)
    _RECORDED[:] = messages
    return messages


def _spans_of(messages: list[dict]) -> list[dict]:
    return [s for m in messages for rs in m["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def _attribute(span: dict, key: str) -> Any:
    found = [kv["value"] for kv in span.get("attributes", []) if kv["key"] == key]
    return next(iter(found[0].values())) if found else None


def _by_role(messages: list[dict]) -> dict[str, dict]:
    operations = ((_attribute(span, "gen_ai.operation.name"), span) for span in _spans_of(messages))
    return {_OPERATIONS[op]: span for op, span in operations if op in _OPERATIONS}


def _set_attribute(span: dict, key: str, value: dict) -> None:
    attributes = span.setdefault("attributes", [])
    for kv in attributes:
        if kv["key"] == key:
            kv["value"] = value
            return
    attributes.append({"key": key, "value": value})


def _string(text: str) -> dict:
    return {"stringValue": text}


def _scope_spans_of(messages: list[dict], span: dict) -> list[dict]:
    """The ``spans`` list that holds ``span``."""
    return next(
        ss["spans"] for m in messages for rs in m["resourceSpans"] for ss in rs["scopeSpans"] if span in ss["spans"]
    )


_TOKEN = re.compile(r'"\\u0000T([^"\\]*)\\u0000"')


def _dump(messages: list[Any], ascii_only: bool) -> bytes:
    """OTLP-JSON lines. Token(...) markers become raw JSON text (1e400, 400-digit numbers); with ascii_only off,
    a lone surrogate is written as its (invalid) UTF-8 bytes, as a broken writer would."""
    lines = [json.dumps(m, ensure_ascii=ascii_only) for m in messages]
    text = "\n".join(_TOKEN.sub(lambda match: match.group(1), line) for line in lines) + "\n"
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Token:
    """Raw JSON text put in place of a value (a number JSON allows but Python's float or int may not hold)."""

    text: str

    def marker(self) -> str:
        return f"\x00T{self.text}\x00"


# --- 1. valid shapes, hostile text -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Name:
    role: str
    text: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        spans[self.role]["name"] = self.text


@dataclass(frozen=True)
class Attr:
    role: str
    key: str
    text: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        _set_attribute(spans[self.role], self.key, _string(self.text))


@dataclass(frozen=True)
class Metadata:
    """A ``crewai.metadata.<key>`` label on the run: both its key and its value are shown."""

    key: str
    text: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        _set_attribute(spans["workflow"], "crewai.metadata." + self.key, _string(self.text))


@dataclass(frozen=True)
class Tags:
    texts: tuple[str, ...]

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        values = {"arrayValue": {"values": [_string(t) for t in self.texts]}}
        _set_attribute(spans["workflow"], "crewai.tags", values)


@dataclass(frozen=True)
class Failed:
    """The span failed: ERROR status with a message (and the same text as its error.type)."""

    role: str
    text: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        spans[self.role]["status"] = {"code": 2, "message": self.text}
        _set_attribute(spans[self.role], "error.type", _string(self.text))


@dataclass(frozen=True)
class Event:
    role: str
    name: str
    key: str
    text: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        span = spans[self.role]
        event = {"timeUnixNano": span["endTimeUnixNano"], "name": self.name, "attributes": []}
        event["attributes"].append({"key": self.key, "value": _string(self.text)})
        span.setdefault("events", []).append(event)


@dataclass(frozen=True)
class Tool:
    """A tool call under the agent, after its LLM call: its name, arguments and result (or error)."""

    name: str
    arguments: str
    result: str
    failed: bool
    times: int = 1  # the same call made this many times (a redundant-tool-calls finding from 2)

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        for _ in range(self.times):
            self._add(messages, spans)

    def _add(self, messages: list[dict], spans: dict[str, dict]) -> None:
        agent, chat = spans["agent"], spans["chat"]
        siblings = _scope_spans_of(messages, agent)
        span = {
            "traceId": agent["traceId"],
            "spanId": f"{0xA0 + len(siblings):016x}",
            "parentSpanId": agent["spanId"],
            "name": f"execute_tool {self.name}",
            "kind": 1,
            "startTimeUnixNano": chat["endTimeUnixNano"],
            "endTimeUnixNano": chat["endTimeUnixNano"],
            "attributes": [
                {"key": "gen_ai.operation.name", "value": _string("execute_tool")},
                {"key": "gen_ai.tool.name", "value": _string(self.name)},
                {"key": "gen_ai.tool.call.arguments", "value": _string(self.arguments)},
                {"key": "gen_ai.tool.call.result", "value": _string(self.result)},
            ],
            "status": {"code": 2, "message": self.result} if self.failed else {},
        }
        siblings.append(span)


@dataclass(frozen=True)
class Guardrail:
    """A guardrail under the task that rejected the agent's output, with feedback."""

    name: str
    feedback: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        task = spans["task"]
        siblings = _scope_spans_of(messages, task)
        siblings.append(
            {
                "traceId": task["traceId"],
                "spanId": f"{0xC0 + len(siblings):016x}",
                "parentSpanId": task["spanId"],
                "name": f"guardrail {self.name}",
                "kind": 1,
                "startTimeUnixNano": spans["agent"]["endTimeUnixNano"],
                "endTimeUnixNano": task["endTimeUnixNano"],
                "attributes": [
                    {"key": "crewai.guardrail.name", "value": _string(self.name)},
                    {"key": "crewai.guardrail.passed", "value": {"boolValue": False}},
                    {"key": "crewai.guardrail.feedback", "value": _string(self.feedback)},
                ],
                "status": {},
            }
        )


@dataclass(frozen=True)
class Call:
    """Another LLM call of the agent, after the first, with these input messages (the findings parse them as
    JSON to tell whether each call resent the previous prompt)."""

    messages: str
    input_tokens: int

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        chat = spans["chat"]
        siblings = _scope_spans_of(messages, chat)
        call = copy.deepcopy(chat)
        call["spanId"] = f"{0xE0 + len(siblings):016x}"
        call["startTimeUnixNano"] = call["endTimeUnixNano"]
        _set_attribute(call, "gen_ai.input.messages", _string(self.messages))
        _set_attribute(call, "gen_ai.usage.input_tokens", {"intValue": str(self.input_tokens)})
        siblings.append(call)


@dataclass(frozen=True)
class Number:
    """A count or a cost at the edges of what OTLP/JSON holds: an int64 (written as a string) or a double."""

    role: str
    key: str
    value: int | float

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        value = {"intValue": str(self.value)} if isinstance(self.value, int) else {"doubleValue": self.value}
        _set_attribute(spans[self.role], self.key, value)


@dataclass(frozen=True)
class Typed:
    """An attribute holding any kind of OTLP AnyValue (a list, a map, bytes, a bool, NaN...) where the report
    expects text or a number: still a valid file."""

    role: str
    key: str
    value: dict

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        _set_attribute(spans[self.role], self.key, self.value)


@dataclass(frozen=True)
class Times:
    """Any start and end (fixed64, so 0 to 2**64 - 1; the end may come before the start)."""

    role: str
    start: int
    end: int

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        spans[self.role].update(startTimeUnixNano=str(self.start), endTimeUnixNano=str(self.end))


@dataclass(frozen=True)
class Flow:
    """The run made a flow's: its name, inputs and output."""

    name: str
    inputs: str
    output: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        for key, text in (
            ("crewai.flow.name", self.name),
            ("crewai.flow.inputs", self.inputs),
            ("crewai.flow.output", self.output),
        ):
            _set_attribute(spans["workflow"], key, _string(text))


def _earlier(messages: list[dict], n: int) -> list[dict]:
    """A copy of the run in trace n (an id of its own), n seconds earlier, its spans taking half as long: the
    history that "slower than usual" and the like compare with."""
    copied = copy.deepcopy(messages)
    for span in _spans_of(copied):
        span["traceId"] = f"{n:032x}"
        start, end = (int(span.get(key, 0)) for key in ("startTimeUnixNano", "endTimeUnixNano"))
        start = max(start - n * 10**9, 0)
        span.update(startTimeUnixNano=str(start), endTimeUnixNano=str(max(start + (end - start) // 2, 0)))
        for event in span.get("events", []):
            event["timeUnixNano"] = str(start)
    return copied


@dataclass(frozen=True)
class Hostile:
    """The recorded run, a valid OTLP/JSON file, with hostile text in its names, attributes, events, statuses;
    after ``history`` earlier runs of the same crew (copies in traces of their own)."""

    edits: tuple[Any, ...]
    ascii_only: bool  # False: non-ASCII written as UTF-8 (a lone surrogate then makes the file invalid UTF-8)
    history: int = 0

    def build(self, base: list[dict]) -> bytes:
        messages = copy.deepcopy(base)
        spans = _by_role(messages)
        for edit in self.edits:
            edit.apply(messages, spans)
        earlier = [m for n in range(1, self.history + 1) for m in _earlier(messages, n)]
        return _dump(earlier + messages, self.ascii_only)


NUMBER_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "crewai.llm.cost_usd",
    "crewai.usage.input_tokens",
    "crewai.usage.output_tokens",
    "crewai.usage.total_tokens",
    "crewai.usage.requests",
    "crewai.usage.unpriced_requests",
    "crewai.usage.cost_usd",
)
TYPED_KEYS = (
    *sorted({key for keys in TEXT_KEYS.values() for key in keys}),
    *NUMBER_KEYS,
    "crewai.tags",
    "crewai.guardrail.passed",
    "crewai.tool.from_cache",
    "gen_ai.tool.call.arguments",
    "crewai.flow.name",
)
_fixed64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 10**9, 2**63, 2**64 - 1]))
INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([2**63 - 1, -(2**63), -1, 0, 10**18, 2**53 + 1]))
DOUBLES = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1.7e308, -1.7e308, 5e-324]))
# Every kind of OTLP/JSON AnyValue; doubles also as the strings protobuf's JSON mapping writes for NaN and infinities.
any_values = st.recursive(
    st.one_of(
        texts.map(lambda text: {"stringValue": text}),
        st.booleans().map(lambda flag: {"boolValue": flag}),
        INT64.map(lambda number: {"intValue": str(number)}),
        DOUBLES.map(lambda number: {"doubleValue": number}),
        st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(lambda word: {"doubleValue": word}),
        st.binary(max_size=20).map(lambda raw: {"bytesValue": base64.b64encode(raw).decode()}),
        st.just({}),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda values: {"arrayValue": {"values": values}}),
        st.lists(st.tuples(texts, inner), max_size=3).map(
            lambda pairs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in pairs]}}
        ),
    ),
    max_leaves=6,
)
# Text that the findings parse as JSON (an LLM call's input messages): nested deep, or any JSON, or hostile text.
json_texts = st.one_of(
    st.integers(1000, 100_000).map(lambda n: "[" * n + "]" * n),  # past the recursion limit, with or without
    st.integers(1000, 100_000).map(lambda n: '{"a":' * n + "0" + "}" * n),  # hypothesis' raised one
    _json_values.map(json.dumps),
    texts,
)
_role_and_key = st.sampled_from([(role, key) for role, keys in TEXT_KEYS.items() for key in keys])
edits = st.one_of(
    st.builds(Name, st.sampled_from(ROLES), texts),
    _role_and_key.flatmap(lambda pair: st.builds(Attr, st.just(pair[0]), st.just(pair[1]), texts)),
    st.builds(Metadata, texts, texts),
    st.builds(Tags, st.lists(texts, min_size=1, max_size=3).map(tuple)),
    st.builds(Failed, st.sampled_from(ROLES), texts),
    st.builds(
        Event,
        st.sampled_from(ROLES),
        st.one_of(st.sampled_from(EVENT_NAMES), texts),
        st.sampled_from(EVENT_KEYS),
        texts,
    ),
    st.builds(Tool, texts, texts, texts, st.booleans(), st.integers(1, 3)),
    st.builds(Guardrail, texts, texts),
    st.builds(Attr, st.just("chat"), st.just("gen_ai.input.messages"), json_texts),
    st.builds(Call, json_texts, INT64),
    st.builds(Number, st.sampled_from(ROLES), st.sampled_from(NUMBER_KEYS), st.one_of(INT64, DOUBLES)),
    st.builds(Typed, st.sampled_from(ROLES), st.sampled_from(TYPED_KEYS), any_values),
    st.builds(Times, st.sampled_from(ROLES), _fixed64, _fixed64),
    st.builds(Flow, texts, texts, texts),
)
hostile_cases = st.builds(
    Hostile, st.lists(edits, min_size=1, max_size=6).map(tuple), st.booleans(), st.sampled_from([0, 0, 1, 3])
)


# --- 2. wrong shapes ---------------------------------------------------------------------------------------------

DELETE = Token("<delete>")  # not written: the key or item is removed
TOKENS = [
    "1e400",
    "-1e400",
    "1e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "1" + "0" * 400,
    "-" + "9" * 400,
    "9" * 399,
    "9" * 5000,  # past Python's 4300-digit limit for int()
    "18446744073709551616",
    "0.5",
    "-1",
]
INTERESTING_KEYS = (
    "resourceSpans",
    "scopeSpans",
    "spans",
    "resource",
    "traceId",
    "spanId",
    "parentSpanId",
    "name",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "timeUnixNano",
    "attributes",
    "events",
    "status",
    "code",
    "message",
    "key",
    "value",
    "stringValue",
    "intValue",
    "doubleValue",
    "boolValue",
    "arrayValue",
    "values",
    "kvlistValue",
    "*",  # any value anywhere
)
_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
weird_values = st.one_of(
    _leaf,
    st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63), -1, 10**30, 10**400]),
    st.sampled_from(HOSTILE[:30]),
    st.sampled_from([Token(t) for t in TOKENS]),
    st.just(DELETE),
    st.sampled_from(["", "0", "00", "١٢٣", "²", "1e5", " 12", "0x10", "9" * 21, "9" * 401, "abc"]),
    st.lists(st.one_of(_leaf, st.sampled_from(["x", "0123456789abcdef"])), max_size=3),
    st.lists(st.dictionaries(st.sampled_from(INTERESTING_KEYS[:-1]), _leaf, max_size=2), max_size=2),
    st.dictionaries(st.one_of(st.sampled_from(INTERESTING_KEYS[:-1]), st.text(max_size=5)), _leaf, max_size=3),
)


def _slots(node: Any, key: str) -> Iterator[tuple[Any, Any]]:
    """Every (container, key-or-index) whose key is ``key`` ("*": every one), depth first."""
    if isinstance(node, dict):
        for k, v in node.items():
            if key in ("*", k):
                yield node, k
            yield from _slots(v, key)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if key == "*":
                yield node, i
            yield from _slots(v, key)


def _replace(value: Any) -> Any:
    """A generated value as the messages hold it (Tokens become markers _dump writes raw)."""
    if isinstance(value, Token):
        return value.marker()
    if isinstance(value, list):
        return [_replace(v) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Mutation:
    key: str  # one of INTERESTING_KEYS
    index: int  # which of its occurrences (modulo their number); -1: every one
    value: Any

    def apply(self, messages: list[Any]) -> None:
        slots = list(_slots(messages, self.key))
        if not slots:
            return
        chosen = slots if self.index < 0 else [slots[self.index % len(slots)]]
        for container, k in reversed(chosen):  # from the end: list indices stay valid when deleting
            try:
                if self.value == DELETE:
                    del container[k]
                else:
                    container[k] = _replace(self.value)
            except (IndexError, KeyError):
                pass  # an earlier deletion took it


@dataclass(frozen=True)
class Reshaped:
    """The recorded run with values of the wrong shape or range at some places."""

    mutations: tuple[Mutation, ...]
    ascii_only: bool

    def build(self, base: list[dict]) -> bytes:
        messages: list[Any] = copy.deepcopy(base)
        for mutation in self.mutations:
            mutation.apply(messages)
        return _dump(messages, self.ascii_only)


@dataclass(frozen=True)
class Raw:
    """A file of these bytes (garbage, empty, whitespace, JSON that is not an object of resourceSpans)."""

    data: bytes

    def build(self, base: list[dict]) -> bytes:
        return self.data


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` deep in an attribute of a span, written as text (no Python recursion to build)."""

    kind: str  # "array" | "kvlist" | "json-array" | "json-object" | "string"
    depth: int
    role: str
    key: str

    def build(self, base: list[dict]) -> bytes:
        messages = copy.deepcopy(base)
        marker = "\x00DEEP\x00"
        _set_attribute(_by_role(messages)[self.role], self.key, {"stringValue": marker})
        n = self.depth
        text = {
            "array": '{"arrayValue":{"values":[' * n + '{"stringValue":"x"}' + "]}}" * n,
            "kvlist": '{"kvlistValue":{"values":[{"key":"k","value":' * n + '{"intValue":"1"}' + "}]}}" * n,
            "json-array": "[" * n + "]" * n,
            "json-object": '{"a":' * n + "1" + "}" * n,
            "string": '{"stringValue":' + json.dumps("[" * n + "]" * n) + "}",
        }[self.kind]
        return _dump(messages, True).replace(json.dumps({"stringValue": marker}).encode(), text.encode())


@dataclass(frozen=True)
class TopLevelDeep:
    depth: int
    opener: str  # "[" or '{"a":'

    def build(self, base: list[dict]) -> bytes:
        closer = "]" if self.opener == "[" else "}"
        return (self.opener * self.depth + "1" + closer * self.depth + "\n").encode()


@dataclass(frozen=True)
class Spliced:
    """A valid file with bytes put in at a place (invalid UTF-8, a NUL, a newline inside a string...)."""

    inner: Any
    at: float  # where, as a fraction of the file's length
    junk: bytes

    def build(self, base: list[dict]) -> bytes:
        data = self.inner.build(base)
        cut = int(self.at * len(data))
        return data[:cut] + self.junk + data[cut:]


@dataclass(frozen=True)
class Truncated:
    inner: Any
    at: float

    def build(self, base: list[dict]) -> bytes:
        data = self.inner.build(base)
        return data[: int(self.at * len(data))]


@dataclass(frozen=True)
class Lines:
    """Several files' contents as the lines of one."""

    parts: tuple[Any, ...]
    separator: bytes

    def build(self, base: list[dict]) -> bytes:
        return self.separator.join(part.build(base).rstrip(b"\n") for part in self.parts)


_not_objects = st.one_of(
    _json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode() + b"\n"),
    st.sampled_from(
        [
            b'{"resourceSpans": {}}\n',
            b'{"resourceSpans": "spans"}\n',
            b'{"resourceSpans": [1, 2]}\n',
            b'{"resourceSpans": [{"scopeSpans": [{"spans": ["a", "b"]}]}]}\n',
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [null]}]}]}\n',
            b'{"resourceSpans": [{"scopeSpans": null}]}\n',
            b'{"resourceSpans": null}\n',
            b"{}\n",
            b"[]\n",
            b'"resourceSpans"\n',
            b"null\n",
            b"1e400\n",
            b"-5\n",
        ]
    ),
)
_whitespace = st.text(alphabet=" \t\r\n\x0b\x0c\u00a0\u2028\u3000\ufeff", max_size=20).map(lambda s: s.encode("utf-8"))
_raw = st.builds(Raw, st.one_of(st.just(b""), _whitespace, st.binary(max_size=200), _not_objects))
_every_or_one = st.one_of(st.just(-1), st.integers(0, 60))  # -1: every occurrence of the key
_reshaped = st.builds(
    Reshaped,
    st.lists(
        st.builds(Mutation, st.sampled_from(INTERESTING_KEYS), _every_or_one, weird_values), min_size=1, max_size=4
    ).map(tuple),
    st.booleans(),
)
# The keys that hold numbers (values and times), the value kinds most read as numbers listed twice.
NUMERIC_KEYS = (
    "intValue",
    "intValue",
    "doubleValue",
    "doubleValue",
    "stringValue",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "timeUnixNano",
    "code",
)
_extreme_numbers = st.one_of(
    st.sampled_from(
        [
            *(10**400, -(10**400), 10**309, Token("1" + "0" * 400), Token("-" + "9" * 400), Token("9" * 399)),
            *("9" * 400, "9" * 309, "-" + "9" * 399),  # as OTLP/JSON writes an int64: a string
            *(2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30),
            *(Token(t) for t in TOKENS),
            *("9" * 21, "9" * 401, "1e400", "-1e400", "NaN", "inf", "-0", "1_000", "١٢٣", "²"),
        ]
    ),
    st.floats(),
    st.integers(),
)
_renumbered = st.builds(
    Reshaped,
    st.lists(
        st.builds(Mutation, st.sampled_from(NUMERIC_KEYS), _every_or_one, _extreme_numbers), min_size=1, max_size=3
    ).map(tuple),
    st.booleans(),
)
_depths = st.one_of(st.integers(1, 1500), st.sampled_from([2000, 5000, 100_000]))
_deep = st.one_of(
    st.builds(
        Deep,
        st.sampled_from(["array", "kvlist", "json-array", "json-object", "string"]),
        _depths,
        st.sampled_from(ROLES),
        st.sampled_from(
            [
                "crewai.metadata.deep",
                "gen_ai.workflow.name",
                "session.id",
                "crewai.tags",
                "crewai.usage.input_tokens",
                "crewai.usage.cost_usd",
                "crewai.crew.final_output",
                "gen_ai.input.messages",
                "gen_ai.agent.name",
                "gen_ai.usage.input_tokens",
            ]
        ),
    ),
    st.builds(TopLevelDeep, _depths, st.sampled_from(["[", '{"a":'])),
)
_junk = st.one_of(
    st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x00", b"\n", b"\r"]),
    st.binary(min_size=1, max_size=8),
)
_unchanged = st.builds(Reshaped, st.just(()), st.booleans())
_simple = st.one_of(_raw, _reshaped, _renumbered, _deep)
wrong_cases = st.one_of(
    _raw,
    _reshaped,
    _renumbered,
    _deep,
    st.builds(Spliced, st.one_of(_unchanged, _reshaped), st.floats(0, 1), _junk),
    st.builds(Truncated, st.one_of(_unchanged, _reshaped), st.floats(0, 1)),
    st.builds(
        Lines,
        st.lists(st.one_of(_simple, _unchanged), min_size=2, max_size=3).map(tuple),
        st.sampled_from([b"\n", b"\r\n", b"\n\n  \n", b"\r"]),
    ),
)


# --- 3. loops and repeated ids ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relink:
    child: str
    parent: str  # a role, "self", "none" (a root), "ghost" (an id no span has)

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        span = spans[self.child]
        if self.parent == "none":
            span.pop("parentSpanId", None)
        else:
            target = {"self": span["spanId"], "ghost": GHOST_SPAN}.get(self.parent)
            span["parentSpanId"] = target or spans[self.parent]["spanId"]


@dataclass(frozen=True)
class Mutual:
    """Two spans each other's parent."""

    first: str
    second: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        spans[self.first]["parentSpanId"] = spans[self.second]["spanId"]
        spans[self.second]["parentSpanId"] = spans[self.first]["spanId"]


@dataclass(frozen=True)
class Duplicate:
    """A second span with the same ids, with another name, start and parent; in the same list or a new line."""

    role: str
    name: str | None
    shift_ns: int
    parent: str | None  # a role whose id becomes its parent
    new_line: bool

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        original = spans[self.role]
        twin = copy.deepcopy(original)
        if self.name is not None:
            twin["name"] = self.name
        start = int(twin["startTimeUnixNano"]) + self.shift_ns
        twin["startTimeUnixNano"] = str(min(max(start, 0), 2**64 - 1))
        if self.parent is not None:
            twin["parentSpanId"] = spans[self.parent]["spanId"]
        if self.new_line:
            messages.append({"resourceSpans": [{"scopeSpans": [{"spans": [twin]}]}]})
        else:
            _scope_spans_of(messages, original).append(twin)


@dataclass(frozen=True)
class Retrace:
    """The span moved to another trace (its parent link now points across traces)."""

    role: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        spans[self.role]["traceId"] = OTHER_TRACE


@dataclass(frozen=True)
class Chain:
    """``length`` new spans under a span, each the parent of the next; ``loop``: the first's parent is the last."""

    under: str
    length: int
    loop: bool
    operation: str

    def apply(self, messages: list[dict], spans: dict[str, dict]) -> None:
        top = spans[self.under]
        siblings = _scope_spans_of(messages, top)
        ids = [f"{0xF000000 + i:016x}" for i in range(self.length)]
        for i, span_id in enumerate(ids):
            parent = ids[i - 1] if i else (ids[-1] if self.loop else top["spanId"])
            span = copy.deepcopy(spans["chat"])
            span.update(spanId=span_id, parentSpanId=parent, traceId=top["traceId"], name=f"{self.operation} {i}")
            _set_attribute(span, "gen_ai.operation.name", _string(self.operation))
            siblings.append(span)


@dataclass(frozen=True)
class Tangled:
    edits: tuple[Any, ...]
    repeat_file: int  # the whole file written this many more times

    def build(self, base: list[dict]) -> bytes:
        messages = copy.deepcopy(base)
        spans = _by_role(messages)
        for edit in self.edits:
            edit.apply(messages, spans)
        return _dump(messages * (1 + self.repeat_file), True)


_parents = st.sampled_from([*ROLES, "self", "none", "ghost"])
_operations = st.sampled_from(["chat", "invoke_agent", "execute_task", "invoke_workflow", "execute_tool"])
tangle_edits = st.one_of(
    st.builds(Relink, st.sampled_from(ROLES), _parents),
    st.builds(Mutual, st.sampled_from(ROLES), st.sampled_from(ROLES)),
    st.builds(
        Duplicate,
        st.sampled_from(ROLES),
        st.one_of(st.none(), texts),
        st.integers(-(10**12), 10**12),
        st.one_of(st.none(), st.sampled_from(ROLES)),
        st.booleans(),
    ),
    st.builds(Retrace, st.sampled_from(ROLES)),
    st.builds(Chain, st.sampled_from(ROLES), st.integers(1, 300), st.booleans(), _operations),
)
tangled_cases = st.builds(Tangled, st.lists(tangle_edits, min_size=1, max_size=5).map(tuple), st.integers(0, 2))


# --- running the commands and checking what they did ------------------------------------------------------------


class Hung(BaseException):
    """The watchdog's: a command still running after HARD_LIMIT_S (not an Exception: main must not catch it)."""


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _memory_cap(headroom: int) -> Iterator[None]:
    """At most ``headroom`` more bytes of address space (RLIMIT_AS, restored after): a command that tries to
    take gigabytes for a small file raises MemoryError instead of bringing the machine down."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        held = int(statm.read().split()[0]) * resource.getpagesize()
    cap = held + headroom if hard == resource.RLIM_INFINITY else min(held + headroom, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@dataclass
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str


def _run(argv: list[str]) -> Outcome:
    """``main(argv)`` with its output captured; an exception escaping it is re-raised naming the command."""
    out, err = io.StringIO(), io.StringIO()
    failure = None
    try:
        with redirect_stdout(out), redirect_stderr(err), _watchdog(HARD_LIMIT_S), _memory_cap(MEMORY_HEADROOM):
            code = main(argv)
    except Hung as hung:
        failure = f"crewtrace {argv[0]} hung: {hung}"
    except MemoryError as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        traceback.clear_frames(exc.__traceback__)  # let go of what it did allocate: hypothesis keeps failures
        failure = f"crewtrace {argv[0]} took over {MEMORY_HEADROOM >> 30} GiB, at {where.filename}:{where.lineno}"
        failure += f" ({where.line})"
    except BaseException as exc:  # anything escaping main is a failure: say which command
        exc.add_note(f"escaped main({argv[0]!r}, ...) with argv {argv[1:]!r}; stderr so far: {err.getvalue()!r}")
        raise
    if failure is not None:  # raised out here: one origin, wherever it happened (else hypothesis calls it flaky)
        raise AssertionError(failure)
    return Outcome(argv, code, out.getvalue(), err.getvalue())


# Characters a terminal acts on: C0 controls but tab and newline, DEL, C1, the bidi overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _most_output(data: bytes) -> int:
    return AMPLIFICATION * len(data) + 2**20


def _check_outcome(outcome: Outcome, data: bytes) -> None:
    command = " ".join(outcome.argv[:1] + [a for a in outcome.argv if a in ("--json", "--task")])
    assert outcome.code in (0, 2), f"{command}: exit {outcome.code}\nstderr: {outcome.err[:2000]!r}"
    assert len(outcome.out) <= _most_output(data), (
        f"{command}: {len(outcome.out):,} characters from {len(data):,} bytes"
    )
    assert "Traceback" not in outcome.err, f"{command}: {outcome.err}"
    if outcome.code == 2:
        assert outcome.err.count("\n") == 1 and outcome.err.endswith("\n"), (
            f"{command}: exit 2 without exactly one line on stderr: {outcome.err[:2000]!r}"
        )
    for stream, text in (("stdout", outcome.out), ("stderr", outcome.err)):
        bad = _UNSAFE.search(text)
        assert bad is None, (
            f"{command}: raw {bad.group()!r} on {stream}, near {text[max(bad.start() - 60, 0) : bad.end() + 60]!r}"
        )
    if outcome.code == 0 and "--json" in outcome.argv:
        try:
            json.loads(outcome.out, parse_constant=_reject_constant)
        except ValueError as exc:
            raise AssertionError(f"{command}: printed text that is not JSON: {exc}") from None


# --- the pages' markup --------------------------------------------------------------------------------------------

TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "div", "a", "main", "section",
    "table", "thead", "tbody", "tr", "th", "td", "dl", "dt", "dd", "p", "pre", "span", "details", "summary", "ol",
    "li", "footer", "code", "b",
}  # fmt: skip
VOID_TAGS = {"meta"}
ATTRIBUTES = {"charset", "class", "content", "href", "http-equiv", "id", "lang", "style", "title"}
_HREF = re.compile(r"#[A-Za-z0-9_-]+|runs/[0-9a-f]{32}-[0-9a-f]{16}\.html|\.\./index\.html")
_STYLE = re.compile(r"[a-z0-9:;.%\- ]*")
_CSP = "default-src 'none'"


class _Markup(HTMLParser):
    """Every tag and attribute a page holds must be one the report writes itself, tags balanced: text of the
    trace that reached the markup unescaped shows up as a tag, an attribute or a closing tag of its own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.open: list[str] = []
        self.csp = 0
        self.doctypes = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            self.problems.append(f"<{tag}> {attrs}")
        for name, value in attrs:
            if name not in ATTRIBUTES and not re.fullmatch(r"data-[a-z]+", name):
                self.problems.append(f"attribute {name}={value!r} on <{tag}>")
            elif name == "href" and not _HREF.fullmatch(value or ""):
                self.problems.append(f"href={value!r}")
            elif name == "style" and not _STYLE.fullmatch(value or ""):
                self.problems.append(f"style={value!r}")
            elif name == "content" and (value or "").startswith(_CSP):
                self.csp += 1
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"self-closing <{tag}/> {attrs}")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-3:]}")
        else:
            self.open.pop()

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment <!--{data[:80]}")

    def handle_decl(self, decl: str) -> None:
        self.doctypes += 1
        if decl.lower() != "doctype html":
            self.problems.append(f"declaration <!{decl[:80]}>")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction <?{data[:80]}")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration <![{data[:80]}")


def _check_pages(out: Path, data: bytes) -> None:
    pages = sorted(out.rglob("*.html"))
    assert (out / "index.html") in pages, sorted(out.rglob("*"))
    size = sum(page.stat().st_size for page in pages)
    assert size <= _most_output(data), f"report: {size:,} bytes of pages from {len(data):,} bytes"
    for page in pages:
        text = page.read_text(encoding="utf-8")
        parser = _Markup()
        parser.feed(text)
        parser.close()
        name = page.relative_to(out)
        assert not parser.problems, f"{name}: markup from the trace's text: {parser.problems[:5]}"
        assert not parser.open, f"{name}: unclosed {parser.open}"
        assert parser.csp == 1 and parser.doctypes == 1, f"{name}: {parser.csp} CSPs, {parser.doctypes} doctypes"
        assert "<script" not in text.lower(), f"{name}: <script"
        raw = [m for m in MARKUP if m in text]
        assert not raw, f"{name}: hostile text unescaped: {raw}"


def _files_under(root: Path) -> list[Path]:
    return [Path(d, f) for d, dirs, files in os.walk(root) for f in [*files, *dirs]]


def _all_commands(data: bytes) -> dict[str, Outcome]:
    """Every command on a file of ``data``, in a fresh directory; checks 1 to 5 on each. (``summary --task`` too:
    the task detail prints a task's texts, tool arguments and results, and the agent's thoughts.)"""
    with tempfile.TemporaryDirectory(prefix="crewtrace-fuzz-") as outer:
        root = Path(outer) / "root"
        root.mkdir()
        path, out = root / "traces.jsonl", root / "site"
        path.write_bytes(data)
        commands = {
            "summary": ["summary", str(path)],
            "summary --json": ["summary", str(path), "--json"],
            "summary --task": ["summary", str(path), "--task", "1"],  # the task's detail: its texts, its calls
            "runs": ["runs", str(path)],
            "runs --json": ["runs", str(path), "--json"],
            "report": ["report", str(path), "--out", str(out)],
        }
        outcomes = {name: _run(argv) for name, argv in commands.items()}
        for outcome in outcomes.values():
            _check_outcome(outcome, data)
        stray = [p for p in _files_under(Path(outer)) if p not in (root, path) and not p.is_relative_to(out)]
        assert not stray, f"report wrote outside --out: {stray}"
        if outcomes["report"].code == 0:
            _check_pages(out, data)
    return outcomes


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _noted(case: Any) -> bytes:
    """The case's file, built from the recorded run (and its first bytes noted for a falsifying example)."""
    data = case.build(_RECORDED)
    note(f"file ({len(data)} bytes): {data[:300]!r}{'...' if len(data) > 300 else ''}")
    return data


# --- the properties -----------------------------------------------------------------------------------------------


@settings(max_examples=150, **SETTINGS)
@given(case=hostile_cases)
@pytest.mark.usefixtures("recorded")
def test_hostile_text_in_a_real_run_is_shown_escaped_and_never_acted_on(case):
    data = _noted(case)
    outcomes = _all_commands(data)
    if _utf8(data):  # a valid OTLP/JSON file: whatever its texts say, every command shows the run
        refused = {name: o.err.strip() for name, o in outcomes.items() if o.code != 0}
        assert not refused, f"a valid file with hostile text was refused: {refused}"


@settings(max_examples=250, **SETTINGS)
@given(case=wrong_cases)
@pytest.mark.usefixtures("recorded")
def test_a_file_of_the_wrong_shape_ends_in_one_line_or_a_report(case):
    _all_commands(_noted(case))


@settings(max_examples=120, **SETTINGS)
@given(case=tangled_cases)
@pytest.mark.usefixtures("recorded")
def test_loops_and_repeated_ids_end_in_every_command(case):
    _all_commands(_noted(case))


# --- the pages in a real browser ----------------------------------------------------------------------------------

PWN_IMG = "<img src=x onerror=\"document.title='pwned'\">"
PWN_SCRIPT = "<script>document.title='pwned'</script>"
ALERT = "<img src=x onerror=alert(1)><svg onload=alert(2)>"
_INJECTED = """() => Array.from(document.querySelectorAll('*'))
    .filter(e => ['SCRIPT', 'IMG', 'SVG', 'IFRAME', 'OBJECT', 'EMBED'].includes(e.tagName.toUpperCase())
        || Array.from(e.attributes).some(a => a.name.toLowerCase().startsWith('on')))
    .map(e => e.outerHTML.slice(0, 200))"""


def test_a_hostile_run_runs_no_script_and_loads_nothing_in_chromium(recorded, tmp_path):
    case = Hostile(
        (
            Attr("workflow", "gen_ai.workflow.name", PWN_IMG),
            Attr("workflow", "crewai.crew.final_output", PWN_SCRIPT),
            Attr("workflow", "session.id", '"><img src=x onerror="document.title=\'pwned\'">'),
            Attr("workflow", "user.id", ALERT),
            Metadata(PWN_IMG, PWN_SCRIPT),
            Tags((PWN_SCRIPT, ALERT)),
            Name("task", "execute_task " + PWN_SCRIPT),
            Attr("task", "crewai.task.description", ALERT),
            Attr("task", "crewai.task.output", "</pre>" + PWN_SCRIPT),
            Failed("task", PWN_IMG),
            Event("task", "exception", "exception.message", ALERT),
            Attr("agent", "gen_ai.agent.name", ALERT),
            Name("chat", PWN_IMG),
            Event("chat", "crewai.agent.thought", "crewai.agent.thought.text", PWN_SCRIPT),
            Tool(PWN_IMG, PWN_SCRIPT, ALERT, failed=True),
            Guardrail(ALERT, PWN_IMG),
        ),
        ascii_only=False,
    )
    path, site = tmp_path / "traces.jsonl", tmp_path / "site"
    path.write_bytes(case.build(recorded))
    assert main(["report", str(path), "--out", str(site)]) == 0
    index = site / "index.html"
    (run,) = (site / "runs").glob("*.html")
    with chromium(tmp_path / "profile") as browser:
        dialogs: list[str] = []
        for page_path in (index, run):
            page = browser.context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_timeout(300)  # time for an onerror or a late script to fire
            title = page.title()
            assert title != "pwned" and title.endswith("· crewtrace"), (page_path.name, title)
            assert page.evaluate(_INJECTED) == [], page_path.name
            if page_path == index:
                assert title == "Runs · crewtrace"
                assert page.locator("#runs a").inner_text() == PWN_IMG  # shown as text, not made an element
            else:
                assert title.startswith(PWN_IMG + ": completed, ")  # (the task failed, not the run)
                assert page.locator("header h1").inner_text() == PWN_IMG
                assert PWN_SCRIPT in page.locator("#final-output").inner_text()
            page.close()
        assert dialogs == []
        asked = list(browser.requests)
    assert asked == [index.as_uri(), run.as_uri()], asked  # the two pages, nothing else from anywhere
