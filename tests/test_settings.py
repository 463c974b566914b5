"""Property tests of the setting parsers and the attribute serialiser: any input gives a value or a one-line
error naming the setting; any value CrewAI hands over becomes a valid attribute, never an exception."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import sampling
from pydantic import BaseModel

import crewtrace
from crewtrace.setup import settings as setting_table
from crewtrace.tracing.builders.common import put
from crewtrace.tracing.content import ContentPolicy, to_text

TEXT = st.text(max_size=80)


def _one_line_error(call, *names: str) -> None:
    try:
        call()
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("crewtrace: ") and "\n" not in message, message
        assert any(name in message for name in names), message


@settings(max_examples=200, deadline=None)
@given(endpoint=TEXT)
def test_any_endpoint_is_accepted_or_a_one_line_error(endpoint):
    _one_line_error(lambda: setting_table.read("endpoint", endpoint), "endpoint=")


@settings(max_examples=200, deadline=None)
@given(headers=TEXT)
def test_any_headers_string_is_parsed_or_a_one_line_error(headers):
    _one_line_error(lambda: setting_table.read("headers", headers), "headers=")


@settings(max_examples=200, deadline=None)
@given(name=TEXT, arg=st.one_of(TEXT, st.floats(allow_nan=True)))
def test_any_sampler_setting_is_a_sampler_or_a_one_line_error(name, arg):
    _one_line_error(
        lambda: setting_table.make_sampler(setting_table.read("sampler", name), None),
        "sampler=",
    )
    _one_line_error(lambda: setting_table.read("sampler_arg", arg), "sampler_arg=")


@settings(max_examples=100, deadline=None)
@given(value=st.one_of(st.none(), TEXT, st.floats(allow_nan=True), st.integers(), st.booleans()))
def test_any_shutdown_timeout_is_positive_seconds_or_a_one_line_error(value):
    try:
        seconds = setting_table.read("shutdown_timeout", value)
    except ValueError as exc:
        assert str(exc).startswith("crewtrace: shutdown_timeout=") and "\n" not in str(exc)
    else:
        assert 0 < seconds < math.inf


@settings(max_examples=100, deadline=None)
@given(value=TEXT.map(lambda v: v.replace("\x00", "")))
def test_any_capture_switch_in_the_environment_is_a_bool_or_a_one_line_error(value):
    saved = os.environ.get("CREWTRACE_CAPTURE_CONTENT")
    os.environ["CREWTRACE_CAPTURE_CONTENT"] = value
    try:
        _one_line_error(lambda: setting_table.read("capture_content"), "CREWTRACE_CAPTURE_CONTENT=")
    finally:
        if saved is None:
            os.environ.pop("CREWTRACE_CAPTURE_CONTENT", None)
        else:
            os.environ["CREWTRACE_CAPTURE_CONTENT"] = saved


@pytest.mark.parametrize(
    ("name", "arg", "expected"),
    [
        ("traceidratio", 0.25, sampling.TraceIdRatioBased(0.25).get_description()),
        ("parentbased_traceidratio", 0.5, sampling.ParentBased(sampling.TraceIdRatioBased(0.5)).get_description()),
        ("always_off", None, sampling.ALWAYS_OFF.get_description()),
        (None, None, sampling.ParentBased(sampling.ALWAYS_ON).get_description()),
    ],
)
def test_samplers_from_arguments(name, arg, expected):
    sampler = setting_table.make_sampler(setting_table.read("sampler", name), setting_table.read("sampler_arg", arg))
    assert sampler.get_description() == expected


def test_the_sampler_from_the_environment_reaches_the_provider(subprocess_env):
    """In a fresh process, where crewtrace creates the TracerProvider (an existing one keeps its sampler)."""
    code = "import crewtrace; print(crewtrace.instrument(exporter='none').tracer_provider.sampler.get_description())"
    env = {**subprocess_env, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == sampling.TraceIdRatioBased(0.1).get_description()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes'"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG='2'"),
        ({"OTEL_TRACES_SAMPLER_ARG": "half"}, "OTEL_TRACES_SAMPLER_ARG='half'"),
    ],
)
def test_bad_samplers_are_one_line_errors(monkeypatch, env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError) as error:
        crewtrace.instrument(exporter="none")
    assert str(error.value).startswith(f"crewtrace: {named}") and "\n" not in str(error.value)


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class Output(BaseModel):
    title: str
    score: float
    tags: list[str]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(max_size=64),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
ODD = st.one_of(
    JSONISH,
    st.builds(Unprintable),
    st.builds(Output, title=st.text(), score=st.floats(allow_nan=True), tags=st.lists(st.text(), max_size=3)),
    st.sets(st.integers(), max_size=3),
    st.just(b"\xff\xfe invalid utf-8 \xc3\x28"),
    st.integers(20_000, 30_000).map(lambda n: "x" * n),  # a huge output
)


@settings(max_examples=300, deadline=None)
@given(value=ODD)
def test_any_value_becomes_text_without_raising(value):
    assert isinstance(to_text(value), str)


@settings(max_examples=300, deadline=None)
@given(value=ODD, max_length=st.integers(1, 5000))
def test_captured_text_is_bounded_and_valid_utf8(value, max_length):
    text = ContentPolicy(max_length=max_length).text(value)
    assert text is None if value is None else isinstance(text, str)
    if text is not None:
        assert len(text) <= max_length + len("…[truncated  chars]") + 10
        text.encode("utf-8")  # what OTLP will do with it


@settings(max_examples=300, deadline=None)
@given(value=ODD)
def test_put_sets_only_values_opentelemetry_accepts(value):
    attrs: dict = {}
    put(attrs, "k", value)
    if value is None:
        assert attrs == {}
    else:
        stored = attrs["k"]
        assert isinstance(stored, (str, bool, int, float)) or (
            isinstance(stored, list) and all(isinstance(v, str) for v in stored)
        )
