"""Supported crewai releases: an unsupported one is named in one line and nothing is instrumented, and a
failure half-way through instrumenting leaves nothing wrapped. (The releases themselves are tested by
scripts/test-releases, each in its own environment.)"""

from __future__ import annotations

import logging

import pytest
from crewai.crew import Crew
from crewai.events.event_bus import CrewAIEventsBus
from opentelemetry.sdk.trace import TracerProvider

from crewtrace import CrewAIInstrumentor, crewai_releases, instrumentor

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)


def _wrapped() -> list[str]:
    hooks = {"emit": CrewAIEventsBus.emit, "kickoff": Crew.kickoff, "akickoff": Crew.akickoff}
    return [name for name, function in hooks.items() if hasattr(function, "__wrapped__")]


def test_the_installed_release_is_supported():
    assert crewai_releases.unsupported() is None


def test_an_unsupported_release_is_one_line_and_nothing_is_instrumented(monkeypatch, caplog):
    monkeypatch.setattr(crewai_releases, "unsupported", lambda: "its events carry no event ids")
    with caplog.at_level(logging.WARNING, logger="crewtrace"):
        CrewAIInstrumentor().instrument(tracer_provider=TracerProvider())
    assert _wrapped() == []
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("crewtrace")]
    assert len(lines) == 1
    assert crewai_releases.installed_release() in lines[0] and crewai_releases.SUPPORTED in lines[0]


def test_a_failure_half_way_leaves_nothing_wrapped(monkeypatch, caplog):
    real = instrumentor.wrap_function_wrapper

    def failing(module: str, name: str, wrapper: object) -> None:
        if name == "Crew.akickoff":  # the last thing wired: everything before it is done by then
            raise RuntimeError("wrapping failed")
        real(module, name, wrapper)

    monkeypatch.setattr(instrumentor, "wrap_function_wrapper", failing)
    with caplog.at_level(logging.ERROR, logger="crewtrace"):
        CrewAIInstrumentor().instrument(tracer_provider=TracerProvider())
    assert _wrapped() == []
    assert any("nothing is instrumented" in r.getMessage() for r in caplog.records)
    CrewAIInstrumentor().uninstrument()  # and uninstrumenting after it is harmless


@pytest.mark.parametrize("stream", [False, True])
def test_the_offline_llm_streams_as_asked(memory, stream):
    from crewtrace.offline_llm import OfflineLLM
    from tests.helpers import one_task_crew

    _, exporter = memory
    one_task_crew(OfflineLLM(stream=stream)).kickoff()
    (chat,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert any(e.name == "crewai.llm.first_chunk" for e in chat.events) is stream
