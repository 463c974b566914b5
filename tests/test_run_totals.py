"""Each kickoff is its own trace with its own exact totals: kickoff_for_each (CrewAI's own usage_metrics add up
across the copies; crewtrace's must not), a persisted flow restored by its id, and a task with human input."""

from __future__ import annotations

import asyncio
import builtins
from collections import defaultdict
from collections.abc import Iterator, Sequence

import pytest
from crewai.flow.flow import Flow, start
from crewai.flow.persistence import persist
from opentelemetry.sdk.trace import ReadableSpan
from pydantic import BaseModel

from crewtrace import attributes
from crewtrace.demo.crew import build_demo_crew
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import one_task_crew

pytestmark = pytest.mark.slow  # not in the fast tier (CONTRIBUTING.md, Tests)

# openai.com/api/pricing, read 2026-12-05: gpt-4o-mini, USD per million tokens.
GPT_4O_MINI_INPUT, GPT_4O_MINI_OUTPUT = 0.15, 0.60


def _vendor_cost(usages: Sequence[dict[str, int]]) -> float:
    """What OpenAI bills for these calls at its published gpt-4o-mini price (no cached input here)."""
    return (
        sum(u["prompt_tokens"] * GPT_4O_MINI_INPUT + u["completion_tokens"] * GPT_4O_MINI_OUTPUT for u in usages) / 1e6
    )


def _traces(spans: Sequence[ReadableSpan]) -> dict[int, list[ReadableSpan]]:
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        by_trace[span.context.trace_id].append(span)
    return by_trace


def _root(spans: Sequence[ReadableSpan]) -> ReadableSpan:
    (root,) = [s for s in spans if s.parent is None]
    return root


def _calls(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.attributes.get(attributes.GEN_AI_OPERATION_NAME) == attributes.OP_CHAT]


def _assert_root_totals_are_its_calls(spans: Sequence[ReadableSpan]) -> tuple[int, int, float]:
    """The root's roll-up equals the sum of the LLM spans in its own trace; returns (input, output, cost)."""
    root, calls = _root(spans), _calls(spans)
    tokens_in = sum(c.attributes[attributes.GEN_AI_USAGE_INPUT_TOKENS] for c in calls)
    tokens_out = sum(c.attributes[attributes.GEN_AI_USAGE_OUTPUT_TOKENS] for c in calls)
    cost = root.attributes[attributes.USAGE_COST_USD]
    assert root.attributes[attributes.USAGE_INPUT_TOKENS] == tokens_in
    assert root.attributes[attributes.USAGE_OUTPUT_TOKENS] == tokens_out
    assert root.attributes[attributes.USAGE_REQUESTS] == len(calls) > 0
    assert cost == pytest.approx(sum(c.attributes[attributes.LLM_COST_USD] for c in calls), rel=1e-12)
    return tokens_in, tokens_out, cost


@pytest.mark.parametrize("asynchronous", [False, True])
def test_kickoff_for_each_totals_are_per_run(memory, asynchronous):
    _, exporter = memory
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    crew = build_demo_crew(llm)
    inputs = [{"topic": "a"}, {"topic": "b"}, {"topic": "c"}]
    outputs = asyncio.run(crew.kickoff_for_each_async(inputs)) if asynchronous else crew.kickoff_for_each(inputs)
    traces = _traces(exporter.get_finished_spans())
    assert len(traces) == len(inputs) == len(outputs)
    sums = [_assert_root_totals_are_its_calls(spans) for spans in traces.values()]
    # Over the three traces, each token the vendor reported counts once, and so does each cent.
    assert sum(s[0] for s in sums) == sum(u["prompt_tokens"] for u in llm.usages)
    assert sum(s[1] for s in sums) == sum(u["completion_tokens"] for u in llm.usages)
    assert sum(s[2] for s in sums) == pytest.approx(_vendor_cost(llm.usages), rel=1e-9)
    # CrewAI's own usage_metrics keep adding up across the copies; a run's trace holds only its own calls.
    crewai_prompt_tokens = [o.token_usage.prompt_tokens for o in outputs]
    assert max(crewai_prompt_tokens) > max(s[0] for s in sums)


class _Notes(BaseModel):
    id: str = ""
    runs: int = 0


@persist()
class _NoteFlow(Flow[_Notes]):
    """A persisted flow: each run counts itself and runs a one-task crew."""

    llm: OfflineLLM | None = None

    @start()
    def write(self) -> int:
        self.state.runs += 1
        assert self.llm is not None
        one_task_crew(self.llm, name="note-crew").kickoff()
        return self.state.runs


def test_a_persisted_flow_restored_by_id_is_a_trace_of_its_own(memory):
    _, exporter = memory
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    first = _NoteFlow()
    first.llm = llm
    assert first.kickoff() == 1
    calls_of_first = len(llm.usages)
    restored = _NoteFlow()
    restored.llm = llm
    assert restored.kickoff(inputs={"id": first.state.id}) == 2  # the state came back from storage
    traces = list(_traces(exporter.get_finished_spans()).values())
    assert len(traces) == 2
    first_trace, second_trace = sorted(traces, key=lambda spans: _root(spans).start_time)
    for spans, usages in ((first_trace, llm.usages[:calls_of_first]), (second_trace, llm.usages[calls_of_first:])):
        tokens_in, tokens_out, cost = _assert_root_totals_are_its_calls(spans)
        assert tokens_in == sum(u["prompt_tokens"] for u in usages)
        assert tokens_out == sum(u["completion_tokens"] for u in usages)
        assert cost == pytest.approx(_vendor_cost(usages), rel=1e-9)


@pytest.fixture
def human_answers(monkeypatch) -> Iterator[list[str]]:
    """What the human types at CrewAI's feedback prompt, in order (asked once more than given: a test error)."""
    answers: list[str] = []

    def answer(prompt: object = "") -> str:
        return answers.pop(0)

    monkeypatch.setattr(builtins, "input", answer)
    yield answers
    assert answers == []


def test_human_input_rounds_stay_in_the_runs_trace(memory, human_answers):
    _, exporter = memory
    human_answers += ["Make it shorter.", ""]  # one round of feedback, then approval
    llm = OfflineLLM(model="gpt-4o-mini", provider="openai")
    crew = one_task_crew(llm, name="reviewed")
    crew.tasks[0].human_input = True
    crew.kickoff()
    traces = list(_traces(exporter.get_finished_spans()).values())
    assert len(traces) == 1
    (spans,) = traces
    tokens_in, tokens_out, cost = _assert_root_totals_are_its_calls(spans)
    assert len(_calls(spans)) == len(llm.usages) >= 2  # the answer, and the answer after the feedback
    assert tokens_in == sum(u["prompt_tokens"] for u in llm.usages)
    assert tokens_out == sum(u["completion_tokens"] for u in llm.usages)
    assert cost == pytest.approx(_vendor_cost(llm.usages), rel=1e-9)
    (task,) = [s for s in spans if s.name.startswith("execute_task")]
    assert all(c.start_time >= task.start_time and c.end_time <= task.end_time for c in _calls(spans))
