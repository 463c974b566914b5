"""Findings: the judgements CrewAI's Traces page leaves to the reader ("Using traces for debugging"), computed
from one run's spans, and from earlier runs of the same crew when the source holds them.

Pure functions of Summaries, computed when reading: they never change the spans, so they work on a file, on
Jaeger, and on any run recorded with crewtrace. Each finding says what, where (task, agent, span ids), its
evidence numbers, and the tokens and cost it concerns. The thresholds are ``Rules`` (report/env.py reads them).
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crewtrace import attributes
from crewtrace.report.env import positive
from crewtrace.report.records import SpanRecord
from crewtrace.report.spans import amount, count, descendants, is_llm, role_of
from crewtrace.report.summary import Summary

REDUNDANT_TOOL_CALLS = "redundant tool calls"
DISCARDED_CALLS = "discarded LLM calls"
FORCED_FINAL_ANSWER = "forced final answer"
GROWING_PROMPT = "growing prompt"
RESENT_PROMPT = "resent prompt"
SLOWER = "slower than usual"
COSTLIER = "costlier than usual"
MORE_TOKENS = "more tokens than usual"
KINDS: tuple[str, ...] = (REDUNDANT_TOOL_CALLS, DISCARDED_CALLS, FORCED_FINAL_ANSWER, GROWING_PROMPT, RESENT_PROMPT)
KINDS += (SLOWER, MORE_TOKENS, COSTLIER)

# The message CrewAI adds when an agent reaches max_iter (its translations' errors.force_final_answer, the same
# in every supported release: tests/test_findings.py checks it against the installed CrewAI).
FORCE_FINAL_ANSWER_TEXT = "Now it's time you MUST give your absolute best final answer"
MIN_HISTORY_ENV = "CREWTRACE_FINDINGS_MIN_HISTORY"
PROMPT_GROWTH_ENV = "CREWTRACE_FINDINGS_PROMPT_GROWTH"
MIN_CALLS_ENV = "CREWTRACE_FINDINGS_MIN_CALLS"


@dataclass(frozen=True)
class Rules:
    """The thresholds findings use (documented in the README, each an environment variable)."""

    min_history: int = 3  # earlier runs of the same crew needed before "than usual" is said
    prompt_growth: float = 2.0  # an agent's last prompt at least this many times its first
    min_calls: int = 3  # LLM calls an agent must make before its prompt growth is a finding

    @classmethod
    def from_env(cls) -> Rules:
        """The thresholds from CREWTRACE_FINDINGS_* (a one-line error naming the variable when bad)."""
        return cls(
            int(positive(MIN_HISTORY_ENV, cls.min_history, "a whole number above 0", int)),
            positive(PROMPT_GROWTH_ENV, cls.prompt_growth, "a number above 0", float),
            int(positive(MIN_CALLS_ENV, cls.min_calls, "a whole number above 0", int)),
        )


@dataclass
class Finding:
    """One judgement about a run, with the numbers behind it."""

    kind: str  # one of KINDS
    task: str | None  # the task's name, None for the whole run
    agent: str | None
    what: str  # one line of facts
    span_ids: list[str]  # the spans it is about, for links
    tokens: int = 0  # the tokens it concerns (spent in vain, or resent)
    cost_usd: float | None = None  # their cost, when priced
    numbers: dict[str, Any] = field(default_factory=dict)  # the evidence


def findings(run: Summary, earlier: Sequence[Summary] = (), rules: Rules | None = None) -> list[Finding]:
    """Every finding about ``run``; ``earlier`` are other runs of any crew from the same source (those of the
    same crew that started before ``run`` are its history)."""
    rules = rules or Rules()
    found = redundant_tool_calls(run) + discarded_calls(run) + forced_final_answers(run)
    found += prompt_growth(run, rules) + resent_prompts(run)
    history = [r for r in earlier if r.crew == run.crew and r.kind == run.kind and r.start_ns < run.start_ns]
    return found + than_usual(run, history, rules)


def _task_and_agent(run: Summary, record: SpanRecord) -> tuple[str | None, str | None]:
    """The task (by name) and the agent (by role) a span ran in: its nearest such ancestors."""
    task = agent = None
    node: SpanRecord | None = record
    seen = 0
    while node is not None and seen < len(run.records):
        if agent is None and node.operation == attributes.OP_INVOKE_AGENT:
            agent = role_of(node)
        if node.operation == attributes.OP_EXECUTE_TASK:
            task = node.name.removeprefix(f"{attributes.OP_EXECUTE_TASK} ")
            break
        node = run.by_id.get(node.parent_id) if node.parent_id else None
        seen += 1
    return task, agent


def _cost(calls: Sequence[SpanRecord]) -> float | None:
    costs = [cost for c in calls if (cost := amount(c.attributes, attributes.LLM_COST_USD)) is not None]
    return sum(costs) if costs else None


def _tokens(calls: Sequence[SpanRecord]) -> int:
    used = (attributes.GEN_AI_USAGE_INPUT_TOKENS, attributes.GEN_AI_USAGE_OUTPUT_TOKENS)
    return sum(count(c.attributes, key) for c in calls for key in used)


def redundant_tool_calls(run: Summary) -> list[Finding]:
    """The same tool called with the same arguments more than once in the run (arguments must be captured)."""
    groups: dict[tuple[str, str], list[SpanRecord]] = {}
    for record in run.records:
        arguments = record.attributes.get(attributes.GEN_AI_TOOL_CALL_ARGUMENTS)
        if record.operation == attributes.OP_EXECUTE_TOOL and arguments is not None:
            tool = str(record.attributes.get(attributes.GEN_AI_TOOL_NAME, record.name))
            groups.setdefault((tool, str(arguments)), []).append(record)
    found = []
    for (tool, arguments), calls in groups.items():
        if len(calls) < 2:
            continue
        calls.sort(key=lambda r: r.start_ns)
        repeats = calls[1:]
        cached = sum(1 for r in repeats if r.attributes.get(attributes.TOOL_FROM_CACHE) is True)
        seconds = sum(r.duration_s for r in repeats)
        task, agent = _task_and_agent(run, calls[0])
        served = f"{cached} served from CrewAI's tool cache" if cached else "none served from CrewAI's tool cache"
        found.append(
            Finding(
                REDUNDANT_TOOL_CALLS,
                task,
                agent,
                f"{tool} called {len(calls)} times with the same arguments ({served}); the repeats took "
                f"{seconds * 1000:.1f} ms",
                [r.span_id for r in calls],
                numbers={"tool": tool, "calls": len(calls), "repeats": len(repeats), "from_cache": cached,
                         "repeat_seconds": seconds, "arguments": arguments},
            )
        )  # fmt: skip
    return found


def failed_llm_calls(run: Summary) -> int:
    """How many LLM calls of the run failed (CrewAI may have retried them and completed the run)."""
    return sum(1 for r in run.records if is_llm(r) and r.status == "ERROR")


def discarded_calls(run: Summary) -> list[Finding]:
    """LLM calls whose result was thrown away: failed calls, and the calls of an attempt a guardrail rejected."""
    found = []
    failed = [r for r in run.records if is_llm(r) and r.status == "ERROR"]
    for record in failed:
        task, agent = _task_and_agent(run, record)
        error = str(record.attributes.get(attributes.ERROR_TYPE, "error"))
        found.append(
            Finding(
                DISCARDED_CALLS,
                task,
                agent,
                f"{record.name} failed ({error}); its tokens were spent for nothing",
                [record.span_id],
                _tokens([record]),
                _cost([record]),
                {"reason": "failed", "error_type": error, "calls": 1},
            )
        )
    for task_row in run.tasks:
        found += _rejected_attempts(run, run.by_id[task_row.span_id])
    return found


def _rejected_attempts(run: Summary, task: SpanRecord) -> list[Finding]:
    """The LLM calls of each agent attempt that a guardrail then rejected (CrewAI ran the agent again)."""
    children = sorted(run.children.get(task.span_id, []), key=lambda r: r.start_ns)
    found, since = [], task.start_ns
    name = task.name.removeprefix(f"{attributes.OP_EXECUTE_TASK} ")
    for guardrail in (c for c in children if c.attributes.get(attributes.GUARDRAIL_PASSED) is not None):
        agents = (c for c in children if c.operation == attributes.OP_INVOKE_AGENT)
        attempt = [c for c in agents if since <= c.start_ns <= guardrail.start_ns]
        since = guardrail.end_ns
        if guardrail.attributes.get(attributes.GUARDRAIL_PASSED) is not False or not attempt:
            continue
        calls = [r for a in attempt for r in [a, *descendants(run.children, a.span_id)] if is_llm(r)]
        found.append(
            Finding(
                DISCARDED_CALLS,
                name,
                role_of(attempt[0]),
                f"{guardrail.name} rejected the output of {len(calls)} LLM call(s); the agent ran again",
                [guardrail.span_id, *(c.span_id for c in calls)],
                _tokens(calls),
                _cost(calls),
                {"reason": "guardrail rejected", "calls": len(calls)},
            )
        )
    return found


def _agent_calls(run: Summary) -> list[tuple[SpanRecord, list[SpanRecord]]]:
    """Each agent span with its own LLM calls (not those of agents it delegated to), in start order."""
    found = []
    for agent in (r for r in run.records if r.operation == attributes.OP_INVOKE_AGENT):
        own, stack = [], list(run.children.get(agent.span_id, []))
        while stack:
            record = stack.pop()
            if is_llm(record):
                own.append(record)
            if record.operation != attributes.OP_INVOKE_AGENT:
                stack += run.children.get(record.span_id, [])
        found.append((agent, sorted(own, key=lambda r: r.start_ns)))
    return found


def _last_user_text(record: SpanRecord) -> str:
    """The text of the last user message of an LLM call's captured input ("" when not captured)."""
    users = [m for m in _messages(record) or [] if isinstance(m, dict) and m.get("role") == "user"]
    parts = users[-1].get("parts") if users else None
    texts = [p["content"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("content"), str)]
    return " ".join(texts)


def forced_final_answers(run: Summary) -> list[Finding]:
    """Agents that reached max_iter: CrewAI stopped their loop and asked for a final answer at once (the
    call's captured input tells it, so content must be captured)."""
    found = []
    for agent, calls in _agent_calls(run):
        forced = [c for c in calls if _last_user_text(c).lstrip().startswith(FORCE_FINAL_ANSWER_TEXT)]
        for call in forced:
            task, _ = _task_and_agent(run, agent)
            before = calls.index(call)
            found.append(
                Finding(
                    FORCED_FINAL_ANSWER,
                    task,
                    role_of(agent),
                    f"the agent reached its max_iter after {before} call(s); CrewAI cut its work short and forced a "
                    "final answer",
                    [call.span_id],
                    _tokens([call]),
                    _cost([call]),
                    {"calls_before": before},
                )
            )
    return found


def prompt_growth(run: Summary, rules: Rules) -> list[Finding]:
    """An agent whose prompt grows call after call (its loop appends every answer and tool result)."""
    found = []
    for agent, calls in _agent_calls(run):
        inputs = [count(c.attributes, attributes.GEN_AI_USAGE_INPUT_TOKENS) for c in calls]
        if len(calls) < rules.min_calls or not inputs[0] or inputs[-1] < rules.prompt_growth * inputs[0]:
            continue
        task, _ = _task_and_agent(run, agent)
        added = sum(tokens - inputs[0] for tokens in inputs[1:])
        found.append(
            Finding(
                GROWING_PROMPT,
                task,
                role_of(agent),
                f"the prompt grew from {inputs[0]:,} to {inputs[-1]:,} tokens over {len(calls)} calls "
                f"({inputs[-1] / inputs[0]:.1f}x); {added:,} input tokens were added by the growth",
                [c.span_id for c in calls],
                added,
                numbers={"input_tokens": inputs, "growth": inputs[-1] / inputs[0]},
            )
        )
    return found


def _messages(record: SpanRecord) -> list[Any] | None:
    text = record.attributes.get(attributes.GEN_AI_INPUT_MESSAGES)
    if not isinstance(text, str):
        return None
    try:
        messages = json.loads(text)
    except (ValueError, RecursionError):  # a hand-made file may hold anything, nested without end too
        return None
    return messages if isinstance(messages, list) else None


def resent_prompts(run: Summary) -> list[Finding]:
    """An agent whose every call resends the whole previous prompt (verified on the captured messages): those
    tokens are what a provider's prompt cache could serve; the cache reads the calls already had are subtracted."""
    from crewtrace.report.what_if import cached_savings

    found = []
    for agent, calls in _agent_calls(run):
        messages = [_messages(c) for c in calls]
        if len(calls) < 2 or any(m is None for m in messages):
            continue
        if not all(later[: len(earlier)] == earlier for earlier, later in itertools.pairwise(messages)):  # type: ignore[index, arg-type]
            continue
        resent = sum(count(c.attributes, attributes.GEN_AI_USAGE_INPUT_TOKENS) for c in calls[:-1])
        cached = sum(count(c.attributes, attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) for c in calls[1:])
        uncached = max(resent - cached, 0)
        if not uncached:
            continue
        saving = cached_savings(calls[1:], uncached)
        task, _ = _task_and_agent(run, agent)
        found.append(
            Finding(
                RESENT_PROMPT,
                task,
                role_of(agent),
                f"{len(calls) - 1} call(s) resent the previous prompt whole: {uncached:,} input tokens a prompt "
                "cache could serve" + ("" if saving is None else f", saving up to ${saving:.6f}"),
                [c.span_id for c in calls],
                uncached,
                saving,
                {"calls": len(calls), "resent_tokens": resent, "already_cached": cached},
            )
        )
    return found


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _count(tokens: float) -> str:
    return f"{tokens:,.0f}"


def _dollars(usd: float) -> str:
    return f"${usd:.6f}"


def than_usual(run: Summary, history: Sequence[Summary], rules: Rules) -> list[Finding]:
    """Each task above the 90th percentile of its own earlier runs, in time, tokens and cost."""
    if len(history) < rules.min_history:
        return []
    found = []
    for row in run.tasks:
        earlier = [t for r in history for t in r.tasks if t.name == row.name]
        if len(earlier) < rules.min_history:
            continue
        measures: list[tuple[str, str, float | None, list[float], Callable[[float], str]]] = [
            (SLOWER, "time", row.duration_s, [t.duration_s for t in earlier], _milliseconds),
            (MORE_TOKENS, "tokens", row.tokens, [t.tokens for t in earlier], _count),
            (COSTLIER, "cost", row.cost_usd, [t.cost_usd for t in earlier if t.cost_usd is not None], _dollars),
        ]
        for kind, label, value, values, shown in measures:
            if value is None or len(values) < rules.min_history:
                continue
            median, p90 = statistics.median(values), statistics.quantiles(values, n=10, method="inclusive")[8]
            if value <= p90:
                continue
            found.append(
                Finding(
                    kind,
                    row.name,
                    row.agent,
                    f"{label} {shown(value)} against a median of {shown(median)} and a 90th percentile of "
                    f"{shown(p90)} over {len(values)} earlier runs",
                    [row.span_id],
                    row.tokens if kind == MORE_TOKENS else 0,
                    row.cost_usd if kind == COSTLIER else None,
                    {label: value, "median": median, "p90": p90, "runs": len(values)},
                )
            )
    return found
