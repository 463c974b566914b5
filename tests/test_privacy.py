"""Content capture off hides every piece of free text; secrets are masked; the switch and hooks are checked."""

from __future__ import annotations

import logging

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool

import crewtrace
from crewtrace import attributes
from crewtrace.offline_llm import OfflineLLM
from crewtrace.setup import configure
from tests.helpers import one_task_crew
from tests.receivers import GrpcReceiver

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

MARKERS = {
    "input": "zqxINPUT",
    "goal": "zqxGOAL",
    "backstory": "zqxBACKSTORY",
    "expected": "zqxEXPECTED",
    "tool": "zqxTOOLRESULT",
    "error": "zqxERRORMESSAGE",
    "feedback": "zqxFEEDBACK",
}


class EchoTool(BaseTool):
    name: str = "echo"
    description: str = "Echoes a topic."

    def _run(self, topic: str) -> str:
        return f"{MARKERS['tool']} about {topic}"


class FailingTool(BaseTool):
    name: str = "failing"
    description: str = "Always fails."

    def _run(self, topic: str) -> str:
        raise RuntimeError(f"{MARKERS['error']} while looking up {topic}")


def _marked_crew(llm: OfflineLLM) -> Crew:
    checks = {"n": 0}

    def picky(output):
        checks["n"] += 1
        return (True, output.raw) if checks["n"] > 1 else (False, f"{MARKERS['feedback']}: say more")

    researcher = Agent(
        role="Researcher", goal=MARKERS["goal"], backstory=MARKERS["backstory"], llm=llm, tools=[EchoTool()]
    )
    prober = Agent(role="Prober", goal="Probe", backstory="Careful.", llm=llm, tools=[FailingTool()])
    research = Task(
        name="research",
        description="Research {topic}.",
        expected_output=MARKERS["expected"],
        agent=researcher,
        guardrail=picky,
    )
    probe = Task(name="probe", description="Probe {topic}.", expected_output="x", agent=prober)
    return Crew(name="private", agents=[researcher, prober], tasks=[research, probe])


def _export(capture: bool | None) -> tuple[bytes, list, OfflineLLM]:
    llm = OfflineLLM()
    with GrpcReceiver() as receiver:
        handle = crewtrace.instrument(endpoint=receiver.endpoint, capture_content=capture)
        result = _marked_crew(llm).kickoff(inputs={"topic": MARKERS["input"]})
        handle.shutdown()
        wire = b"".join(r.SerializeToString() for r in [*receiver.requests, *receiver.metric_requests])
        records = receiver.records()
    assert result.raw
    return wire, records, llm


def test_with_capture_off_no_text_leaves_the_process_but_structure_and_numbers_do():
    wire, records, llm = _export(capture=False)
    for field, marker in MARKERS.items():
        assert marker.encode() not in wire, field
    names = {r.name for r in records}
    assert {"invoke_workflow private", "execute_task research", "invoke_agent Researcher", "execute_tool echo"} <= names
    assert "guardrail picky" in names
    chats = [r for r in records if r.name == "chat crewtrace-offline"]
    assert [r.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] for r in chats] == [
        u["prompt_tokens"] for u in llm.usages
    ]
    failed = [r for r in records if r.name == "execute_tool failing"]
    assert failed and all(r.status == "ERROR" and r.attributes[attributes.ERROR_TYPE] == "RuntimeError" for r in failed)
    (root,) = [r for r in records if r.parent_id is None]
    assert root.attributes[attributes.USAGE_TOTAL_TOKENS] == sum(u["total_tokens"] for u in llm.usages)


def test_with_capture_on_every_marker_is_there():
    """The same run with capture on: shows the markers reach the wire, so the test above can fail."""
    wire, _, _ = _export(capture=True)
    for field, marker in MARKERS.items():
        assert marker.encode() in wire, field


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CREWTRACE_CAPTURE_CONTENT": "false"}, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}, False),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"}, True),
        ({"CREWTRACE_CAPTURE_CONTENT": "true", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}, True),
        ({}, True),
    ],
)
def test_the_switch_from_the_environment(monkeypatch, memory_provider, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    provider, exporter = memory_provider
    crewtrace.instrument(tracer_provider=provider, exporter="none")
    one_task_crew(OfflineLLM()).kickoff()
    (task,) = [s for s in exporter.get_finished_spans() if s.name == "execute_task job"]
    assert (attributes.TASK_DESCRIPTION in task.attributes) is expected


def test_the_argument_wins_over_the_environment(monkeypatch, memory_provider):
    monkeypatch.setenv("CREWTRACE_CAPTURE_CONTENT", "false")
    provider, exporter = memory_provider
    crewtrace.instrument(tracer_provider=provider, exporter="none", capture_content=True)
    one_task_crew(OfflineLLM()).kickoff()
    (task,) = [s for s in exporter.get_finished_spans() if s.name == "execute_task job"]
    assert attributes.TASK_DESCRIPTION in task.attributes


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({}, {"CREWTRACE_CAPTURE_CONTENT": "maybe"}, "CREWTRACE_CAPTURE_CONTENT='maybe'"),
        ({}, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "2"}, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_"),
        ({"capture_content": "no"}, {}, "capture_content='no'"),
        ({"redact": ["ok", "bad("]}, {}, "redact=['ok', 'bad('] is not accepted; redact takes a regular"),
    ],
)
def test_bad_content_settings_are_one_line_errors(monkeypatch, kwargs, env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError) as error:
        crewtrace.instrument(exporter="none", **kwargs)
    assert str(error.value).startswith(f"crewtrace: {named}") and "\n" not in str(error.value)


SECRETS = (
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_" + "b" * 36,
    "Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
    "https://admin:hunter2@db.internal/app",
)


def _crew_with_text(text: str) -> Crew:
    agent = Agent(role="Worker", goal="Do the job", backstory="Reliable.", llm=OfflineLLM())
    task = Task(name="job", description=text, expected_output="A result.", agent=agent)
    return Crew(name="secrets", agents=[agent], tasks=[task])


def test_common_secrets_are_masked_by_default(memory):
    _, exporter = memory
    _crew_with_text("Use these: " + " ; ".join(SECRETS)).kickoff()
    text = " ".join(str(v) for s in exporter.get_finished_spans() for v in s.attributes.values())
    for secret in ("abcdefghijklmnopqrstuvwxyz0123", "AKIAIOSFODNN7EXAMPLE", "b" * 36, "eyJhbGci", "hunter2"):
        assert secret not in text, secret
    assert "Bearer [REDACTED]" in text and "https://admin:[REDACTED]@db.internal/app" in text


def test_user_patterns_and_hook(memory_provider):
    provider, exporter = memory_provider
    crewtrace.instrument(
        tracer_provider=provider, exporter="none", redact=lambda text: text.replace("Acme", "<customer>")
    )
    result = _crew_with_text("Write to Acme about order 12345.").kickoff()
    (task,) = [s for s in exporter.get_finished_spans() if s.name == "execute_task job"]
    assert task.attributes[attributes.TASK_DESCRIPTION] == "Write to <customer> about order 12345."
    assert "Acme" in result.raw  # the crew itself is untouched
    configure._active.shutdown()
    exporter.clear()
    crewtrace.instrument(tracer_provider=provider, exporter="none", redact=[r"order \d+"])
    _crew_with_text("Write to Acme about order 12345.").kickoff()
    (task,) = [s for s in exporter.get_finished_spans() if s.name == "execute_task job"]
    assert task.attributes[attributes.TASK_DESCRIPTION] == "Write to Acme about [REDACTED]."


def test_a_failing_redaction_hook_drops_the_value_logs_once_and_never_reaches_the_crew(memory_provider, caplog):
    provider, exporter = memory_provider

    def broken(text: str) -> str:
        raise KeyError("hook bug")

    crewtrace.instrument(tracer_provider=provider, exporter="none", redact=broken)
    with caplog.at_level(logging.WARNING):
        result = one_task_crew(OfflineLLM()).kickoff()
    assert result.raw.startswith("Offline answer")
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    (task,) = [s for s in spans if s.name == "execute_task job"]
    assert attributes.TASK_DESCRIPTION not in task.attributes  # never the unredacted text
    assert len([r for r in caplog.records if "redact hook raised" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "secret", [*SECRETS, "BEARER " + "z" * 20, "bearer " + "y" * 20, "sk-ant-" + "c" * 24], ids=repr
)
def test_each_secret_alone_is_masked(secret):
    """Each kind on its own, so that the quick test for their markers (content.py) misses none."""
    from crewtrace.tracing.content import ContentPolicy

    masked = ContentPolicy().text(f"call it with {secret} please")
    assert masked is not None and "[REDACTED]" in masked
    assert secret not in masked
    assert masked.startswith("call it with ") and masked.endswith(" please")
