"""The facts of one crew or flow execution, as CrewAI's Traces page shows them: totals, labels, tasks and
agents, final output, failure points. One task's detail is in task_detail.py, rendering in render.py.

Text fields are None when the run's text was not captured and "" when it was captured but empty: see
spans.py for how the two are told apart.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crewtrace import attributes
from crewtrace.report.records import SpanRecord
from crewtrace.report.spans import (
    Failure,
    amount,
    call_cost,
    captured,
    children_of,
    count,
    descendants,
    failures_in,
    is_llm,
    role_of,
    status_of,
    text,
    total,
)

__all__ = ["AgentRow", "Failure", "Summary", "TaskRow", "descendants", "find_root", "summarize", "summarize_run"]


@dataclass
class TaskRow:
    """One row of the tasks table."""

    number: int  # 1-based, in start order
    name: str
    span_id: str
    agent: str  # role of the agent that ran it ("-" if none)
    model: str  # the models its LLM calls used, comma-separated ("-" if none)
    status: str  # "completed" | "failed"
    duration_s: float
    start_ns: int
    end_ns: int
    tokens: int  # input + output tokens of the LLM calls beneath
    requests: int  # LLM calls beneath
    cost_usd: float | None  # None: no call beneath had a known price; 0: free (local) models


@dataclass
class AgentRow:
    """One agent (by role) over the whole run: the LLM calls it made itself (not those of agents it delegated to)."""

    role: str
    models: list[str]  # the models its calls used (else its configured model)
    tasks: list[str]  # names of the tasks it worked on, in order
    status: str  # "failed" if its last run failed, else "completed"
    duration_s: float  # time spent in its invoke_agent spans
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: none of its calls had a known price

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Summary:
    """One execution: the root ``invoke_workflow`` span of a crew or a flow and everything beneath it."""

    trace_id: str
    span_id: str  # the root span's id
    crew: str  # crew or flow name
    kind: str  # "crew" | "flow"
    status: str  # "completed" | "failed"
    duration_s: float
    start_ns: int
    end_ns: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    requests: int
    unpriced_requests: int  # calls whose model had no price (not in cost_usd)
    tool_calls: int
    cost_usd: float | None  # None: no known price; 0: free (local) models only
    session_id: str | None  # crewtrace.context(session_id=...)
    user_id: str | None
    tags: list[str]
    metadata: dict[str, Any]  # crewai.metadata.{key}; left out with capture off
    content_captured: bool  # whether the run's text was captured (else text fields are None)
    inputs: str | None  # kickoff inputs as JSON; None: not captured
    final_output: str | None  # None: not captured
    tasks: list[TaskRow]
    agents: list[AgentRow]
    failures: list[Failure]
    records: list[SpanRecord] = field(default_factory=list, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @functools.cached_property
    def children(self) -> dict[str | None, list[SpanRecord]]:
        """The run's spans by parent id, built once (not a field: the JSON leaves it out)."""
        return children_of(self.records)

    def below(self, span_id: str) -> list[SpanRecord]:
        """Every span of the run beneath ``span_id``."""
        return descendants(self.children, span_id)

    @functools.cached_property
    def by_id(self) -> dict[str, SpanRecord]:
        """The run's spans by span id, built once."""
        return {record.span_id: record for record in self.records}


def _cost(record: SpanRecord, llm_calls: Sequence[SpanRecord]) -> float | None:
    """A span's roll-up cost, else the sum of its LLM calls' costs; None when no price was known."""
    cost = amount(record.attributes, attributes.USAGE_COST_USD)
    return cost if cost is not None else call_cost(llm_calls)


def _task_row(number: int, task: SpanRecord, children: Mapping[str | None, list[SpanRecord]]) -> TaskRow:
    under = descendants(children, task.span_id)
    agents = [
        r.attributes.get(attributes.GEN_AI_AGENT_NAME, "?") for r in under if r.operation == attributes.OP_INVOKE_AGENT
    ]
    llm_calls = [r for r in under if is_llm(r)]
    models = {str(r.attributes.get(attributes.GEN_AI_REQUEST_MODEL)) for r in llm_calls}
    tokens = total(llm_calls, attributes.GEN_AI_USAGE_INPUT_TOKENS) + total(
        llm_calls, attributes.GEN_AI_USAGE_OUTPUT_TOKENS
    )
    return TaskRow(
        number=number,
        name=task.name.removeprefix(f"{attributes.OP_EXECUTE_TASK} "),
        span_id=task.span_id,
        agent=str(agents[0] if agents else task.attributes.get(attributes.TASK_AGENT_ROLE, "-")),
        model=", ".join(sorted(models)) or "-",
        status=status_of(task),
        duration_s=task.duration_s,
        start_ns=task.start_ns,
        end_ns=task.end_ns,
        tokens=count(task.attributes, attributes.USAGE_TOTAL_TOKENS, tokens),
        requests=count(task.attributes, attributes.USAGE_REQUESTS, len(llm_calls)),
        cost_usd=_cost(task, llm_calls),
    )


def _agents(records: Sequence[SpanRecord], below: Sequence[SpanRecord]) -> list[AgentRow]:
    """Agents by role; each LLM call counts for its nearest agent, so delegated work is not counted twice."""
    by_id = {r.span_id: r for r in records}
    runs = sorted((r for r in below if r.operation == attributes.OP_INVOKE_AGENT), key=lambda r: r.start_ns)
    calls: dict[str, list[SpanRecord]] = {}
    tasks: dict[str, list[str]] = {}
    for record in sorted(below, key=lambda r: r.start_ns):
        parent, agent, task = by_id.get(record.parent_id or ""), None, None
        while parent is not None and (agent is None or task is None):
            if agent is None and parent.operation == attributes.OP_INVOKE_AGENT:
                agent = parent
            if task is None and parent.operation == attributes.OP_EXECUTE_TASK:
                task = parent
            parent = by_id.get(parent.parent_id or "")
        if record.operation == attributes.OP_INVOKE_AGENT and task is not None:
            names = tasks.setdefault(role_of(record), [])
            name = task.name.removeprefix(f"{attributes.OP_EXECUTE_TASK} ")
            if name not in names:
                names.append(name)
        if is_llm(record) and agent is not None:
            calls.setdefault(role_of(agent), []).append(record)
    rows: dict[str, AgentRow] = {}
    for run in runs:
        role = role_of(run)
        mine = calls.get(role, [])
        models = sorted({str(c.attributes[attributes.GEN_AI_REQUEST_MODEL]) for c in mine if _model(c)})
        configured = run.attributes.get(attributes.GEN_AI_REQUEST_MODEL)
        row = rows.get(role)
        if row is None:
            row = rows[role] = AgentRow(
                role=role,
                models=models or ([str(configured)] if configured else []),
                tasks=tasks.get(role, []),
                status=status_of(run),
                duration_s=0.0,
                requests=len(mine),
                input_tokens=total(mine, attributes.GEN_AI_USAGE_INPUT_TOKENS),
                output_tokens=total(mine, attributes.GEN_AI_USAGE_OUTPUT_TOKENS),
                cost_usd=call_cost(mine),
            )
        row.status, row.duration_s = status_of(run), row.duration_s + run.duration_s
    return list(rows.values())


def _model(record: SpanRecord) -> bool:
    """Whether the LLM span names its model."""
    return attributes.GEN_AI_REQUEST_MODEL in record.attributes


def run_roots(records: Sequence[SpanRecord]) -> list[SpanRecord]:
    """Every execution: each ``invoke_workflow`` span with no ``invoke_workflow`` above it in its trace."""
    by_id = {(r.trace_id, r.span_id): r for r in records}
    roots = []
    for record in records:
        if record.operation != attributes.OP_INVOKE_WORKFLOW:
            continue
        parent = by_id.get((record.trace_id, record.parent_id or ""))
        while parent is not None and parent.operation != attributes.OP_INVOKE_WORKFLOW:
            parent = by_id.get((parent.trace_id, parent.parent_id or ""))
        if parent is None:
            roots.append(record)
    return roots


def find_root(records: Sequence[SpanRecord], trace_id: str | None = None) -> SpanRecord:
    """The run to summarise: the latest of trace ``trace_id`` (a unique prefix will do), else the latest of all."""
    roots = run_roots(records)
    if not roots:
        where = f" with trace id {trace_id}" if trace_id else ""
        raise ValueError(f"no crew or flow run (invoke_workflow span){where} among {len(records)} spans")
    if trace_id is not None:
        roots = [r for r in roots if r.trace_id == resolve_trace_id([r.trace_id for r in roots], trace_id)]
    return max(roots, key=lambda r: r.start_ns)


def resolve_trace_id(known: Iterable[str], prefix: str) -> str:
    """The one trace id among ``known`` that starts with ``prefix``; a one-line ValueError otherwise."""
    wanted = prefix.strip().lower()
    if not wanted or any(c not in "0123456789abcdef" for c in wanted) or len(wanted) > 32:
        raise ValueError(f"--trace-id {prefix!r} is not a trace id: up to 32 hexadecimal digits")
    ids = sorted(set(known))
    matches = [i for i in ids if i.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"--trace-id {prefix} is ambiguous: {_listed(matches)}")
    raise ValueError(f"no run with a trace id starting {prefix}; the runs' trace ids: {_listed(ids) or 'none'}")


def _listed(ids: Sequence[str], most: int = 10) -> str:
    return ", ".join(ids[:most]) + (f", ... ({len(ids) - most} more)" if len(ids) > most else "")


def summarize(records: Sequence[SpanRecord], trace_id: str | None = None) -> Summary:
    """Summarise one run in ``records`` (the one of ``trace_id`` or a unique prefix of it, else the latest)."""
    root = find_root(records, trace_id)
    return summarize_run([r for r in records if r.trace_id == root.trace_id], root)


def summarize_run(trace: Sequence[SpanRecord], root: SpanRecord) -> Summary:
    """Summarise the run of ``root``, whose trace's spans are ``trace``: what `summary` and `runs` both show."""
    children = children_of(trace)
    below = descendants(children, root.span_id)
    llm_calls = [r for r in below if is_llm(r)]
    tasks = sorted((r for r in below if r.operation == attributes.OP_EXECUTE_TASK), key=lambda r: r.start_ns)
    attrs = root.attributes
    content = captured([root, *below])
    is_flow = attributes.FLOW_NAME in attrs
    final = text(attrs, attributes.FLOW_OUTPUT if is_flow else attributes.CREW_FINAL_OUTPUT, content)

    def usage(key: str, per_call: str) -> int:
        return count(attrs, key, total(llm_calls, per_call))

    return Summary(
        trace_id=root.trace_id,
        span_id=root.span_id,
        crew=str(attrs.get(attributes.GEN_AI_WORKFLOW_NAME, root.name)),
        kind="flow" if is_flow else "crew",
        status=status_of(root),
        duration_s=root.duration_s,
        start_ns=root.start_ns,
        end_ns=root.end_ns,
        input_tokens=usage(attributes.USAGE_INPUT_TOKENS, attributes.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=usage(attributes.USAGE_OUTPUT_TOKENS, attributes.GEN_AI_USAGE_OUTPUT_TOKENS),
        cached_input_tokens=usage(
            attributes.USAGE_CACHE_READ_INPUT_TOKENS, attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
        ),
        requests=count(attrs, attributes.USAGE_REQUESTS, len(llm_calls)),
        unpriced_requests=count(attrs, attributes.USAGE_UNPRICED_REQUESTS),
        tool_calls=sum(1 for r in below if r.operation == attributes.OP_EXECUTE_TOOL),
        cost_usd=_cost(root, llm_calls),
        session_id=_label(attrs.get(attributes.SESSION_ID)),
        user_id=_label(attrs.get(attributes.USER_ID)),
        tags=[str(t) for t in tags] if isinstance(tags := attrs.get(attributes.RUN_TAGS), list) else [],
        metadata={
            k.removeprefix(attributes.RUN_METADATA_PREFIX): v
            for k, v in sorted(attrs.items())
            if k.startswith(attributes.RUN_METADATA_PREFIX)
        },
        content_captured=content,
        inputs=text(attrs, attributes.FLOW_INPUTS if is_flow else attributes.CREW_INPUTS, content),
        final_output=final,
        tasks=[_task_row(n, task, children) for n, task in enumerate(tasks, 1)],
        agents=_agents(trace, below),
        failures=failures_in([root, *below], content),
        records=list(trace),
    )


def _label(value: Any) -> str | None:
    """A label attribute as text, None when absent."""
    return None if value is None else str(value)
