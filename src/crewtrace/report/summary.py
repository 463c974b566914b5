"""The facts of one crew execution, as CrewAI's Traces page shows them: totals, tasks and agents, final
output, timeline, failure points, and the detail of one task. Rendering is in render.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crewtrace import attributes
from crewtrace.report.records import SpanRecord


@dataclass
class TaskRow:
    number: int
    name: str
    agent: str
    model: str
    status: str
    duration_s: float
    start_ns: int
    end_ns: int
    tokens: int
    cost_usd: float | None


@dataclass
class Failure:
    """A failure point: a failed span, a guardrail's rejection, or a tool CrewAI gave up on."""

    kind: str
    name: str
    error_type: str
    message: str
    time_ns: int


@dataclass
class TaskDetail:
    name: str
    agent: str
    status: str
    duration_s: float
    description: str
    expected_output: str
    context: str
    output: str
    llm_calls: int
    tool_calls: list[tuple[str, str]]
    thoughts: list[str]
    failures: list[Failure]


@dataclass
class Summary:
    trace_id: str
    crew: str
    status: str
    duration_s: float
    start_ns: int
    end_ns: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    requests: int
    tool_calls: int
    cost_usd: float | None
    final_output: str
    tasks: list[TaskRow]
    failures: list[Failure]
    records: list[SpanRecord] = field(default_factory=list, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _children(records: Sequence[SpanRecord]) -> dict[str | None, list[SpanRecord]]:
    children: dict[str | None, list[SpanRecord]] = {}
    for record in records:
        children.setdefault(record.parent_id, []).append(record)
    return children


def descendants(records: Sequence[SpanRecord], span_id: str) -> list[SpanRecord]:
    """Every span beneath ``span_id``."""
    children = _children(records)
    found, stack = [], list(children.get(span_id, []))
    while stack:
        record = stack.pop()
        found.append(record)
        stack.extend(children.get(record.span_id, []))
    return found


def _status(record: SpanRecord) -> str:
    return "failed" if record.status == "ERROR" else "completed"


def _is_llm(record: SpanRecord) -> bool:
    return record.operation in (attributes.OP_CHAT, "text_completion", "generate_content")


def _sum(records: Sequence[SpanRecord], key: str) -> int:
    return sum(int(r.attributes.get(key, 0) or 0) for r in records)


def _cost(record: SpanRecord, llm_calls: Sequence[SpanRecord]) -> float | None:
    """A span's roll-up cost, else the sum of its LLM calls' costs; None when no price was known."""
    if attributes.USAGE_COST_USD in record.attributes:
        return float(record.attributes[attributes.USAGE_COST_USD])
    costs = [float(r.attributes[attributes.LLM_COST_USD]) for r in llm_calls if attributes.LLM_COST_USD in r.attributes]
    return sum(costs) if costs else None


def _failures(records: Sequence[SpanRecord]) -> list[Failure]:
    found = []
    for record in records:
        if record.status == "ERROR":
            exception = next((e for e in record.events if e.name == attributes.EXCEPTION_EVENT), None)
            message = str(
                (exception.attributes.get(attributes.EXCEPTION_MESSAGE) if exception else None) or record.status_message
            )
            kind = (record.operation or record.name.split(" ", 1)[0]).replace("_", " ")
            error_type = str(record.attributes.get(attributes.ERROR_TYPE, "error"))
            found.append(Failure(kind, record.name, error_type, message, record.end_ns))
        if record.attributes.get(attributes.GUARDRAIL_PASSED) is False:
            feedback = str(record.attributes.get(attributes.GUARDRAIL_FEEDBACK, ""))
            found.append(Failure("guardrail rejected", record.name, "rejected", feedback, record.end_ns))
        for event in record.events:
            if event.name == attributes.EVENT_TOOL_FAILURE:
                tool = str(event.attributes.get(attributes.GEN_AI_TOOL_NAME, "tool"))
                error_type = str(event.attributes.get(attributes.ERROR_TYPE, "tool_failure"))
                message = str(event.attributes.get(attributes.TOOL_ERROR, ""))
                found.append(Failure("tool gave up", f"{record.name}: {tool}", error_type, message, event.time_ns))
    return sorted(found, key=lambda f: f.time_ns)


def _task_row(number: int, task: SpanRecord, records: Sequence[SpanRecord]) -> TaskRow:
    under = descendants(records, task.span_id)
    agents = [
        r.attributes.get(attributes.GEN_AI_AGENT_NAME, "?") for r in under if r.operation == attributes.OP_INVOKE_AGENT
    ]
    llm_calls = [r for r in under if _is_llm(r)]
    models = {str(r.attributes.get(attributes.GEN_AI_REQUEST_MODEL)) for r in llm_calls}
    tokens = task.attributes.get(attributes.USAGE_TOTAL_TOKENS)
    if tokens is None:
        tokens = _sum(llm_calls, attributes.GEN_AI_USAGE_INPUT_TOKENS) + _sum(
            llm_calls, attributes.GEN_AI_USAGE_OUTPUT_TOKENS
        )
    return TaskRow(
        number=number,
        name=task.name.removeprefix(f"{attributes.OP_EXECUTE_TASK} "),
        agent=str(agents[0] if agents else task.attributes.get(attributes.TASK_AGENT_ROLE, "-")),
        model=", ".join(sorted(models)) or "-",
        status=_status(task),
        duration_s=task.duration_s,
        start_ns=task.start_ns,
        end_ns=task.end_ns,
        tokens=int(tokens),
        cost_usd=_cost(task, llm_calls),
    )


def find_root(records: Sequence[SpanRecord], trace_id: str | None = None) -> SpanRecord:
    """The run to summarise: the root workflow span of ``trace_id``, else of the latest trace."""
    ids = {r.span_id for r in records}
    roots = [
        r
        for r in records
        if r.operation == attributes.OP_INVOKE_WORKFLOW
        and r.parent_id not in ids
        and (trace_id is None or r.trace_id == trace_id.lower())
    ]
    if not roots:
        where = f" with trace id {trace_id}" if trace_id else ""
        raise ValueError(f"no crew or flow run (invoke_workflow span){where} among {len(records)} spans")
    return max(roots, key=lambda r: r.start_ns)


def summarize(records: Sequence[SpanRecord], trace_id: str | None = None) -> Summary:
    """Summarise one run in ``records`` (the one of ``trace_id``, else the latest)."""
    root = find_root(records, trace_id)
    trace = [r for r in records if r.trace_id == root.trace_id]
    below = descendants(trace, root.span_id)
    llm_calls = [r for r in below if _is_llm(r)]
    tasks = sorted((r for r in below if r.operation == attributes.OP_EXECUTE_TASK), key=lambda r: r.start_ns)
    attrs = root.attributes
    final = attrs.get(attributes.CREW_FINAL_OUTPUT, attrs.get(attributes.FLOW_OUTPUT, ""))
    return Summary(
        trace_id=root.trace_id,
        crew=str(attrs.get(attributes.GEN_AI_WORKFLOW_NAME, root.name)),
        status=_status(root),
        duration_s=root.duration_s,
        start_ns=root.start_ns,
        end_ns=root.end_ns,
        input_tokens=int(
            attrs.get(attributes.USAGE_INPUT_TOKENS, _sum(llm_calls, attributes.GEN_AI_USAGE_INPUT_TOKENS))
        ),
        output_tokens=int(
            attrs.get(attributes.USAGE_OUTPUT_TOKENS, _sum(llm_calls, attributes.GEN_AI_USAGE_OUTPUT_TOKENS))
        ),
        cached_input_tokens=int(
            attrs.get(
                attributes.USAGE_CACHE_READ_INPUT_TOKENS,
                _sum(llm_calls, attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
            )
        ),
        requests=int(attrs.get(attributes.USAGE_REQUESTS, len(llm_calls))),
        tool_calls=sum(1 for r in below if r.operation == attributes.OP_EXECUTE_TOOL),
        cost_usd=_cost(root, llm_calls),
        final_output=str(final or ""),
        tasks=[_task_row(n, task, trace) for n, task in enumerate(tasks, 1)],
        failures=_failures([root, *below]),
        records=trace,
    )


def task_detail(summary: Summary, which: str) -> TaskDetail:
    """The detail of one task, by its name or its number in the tasks table."""
    rows = [t for t in summary.tasks if t.name == which or str(t.number) == which]
    if not rows:
        names = ", ".join(f"{t.number} {t.name}" for t in summary.tasks) or "none"
        raise ValueError(f"no task {which!r} in this run; its tasks: {names}")
    row = rows[0]
    task = next(r for r in summary.records if r.operation == attributes.OP_EXECUTE_TASK and r.start_ns == row.start_ns)
    under = descendants(summary.records, task.span_id)
    in_order = sorted(under, key=lambda r: r.start_ns)
    thoughts = [
        str(e.attributes.get(attributes.AGENT_THOUGHT_TEXT, ""))
        for r in in_order
        for e in r.events
        if e.name == attributes.EVENT_AGENT_THOUGHT
    ]
    tools = [
        (r.name.removeprefix(f"{attributes.OP_EXECUTE_TOOL} "), _status(r))
        for r in in_order
        if r.operation == attributes.OP_EXECUTE_TOOL
    ]
    attrs: dict[str, Any] = task.attributes
    return TaskDetail(
        name=row.name,
        agent=row.agent,
        status=row.status,
        duration_s=row.duration_s,
        description=str(attrs.get(attributes.TASK_DESCRIPTION, "")),
        expected_output=str(attrs.get(attributes.TASK_EXPECTED_OUTPUT, "")),
        context=str(attrs.get(attributes.TASK_CONTEXT, "")),
        output=str(attrs.get(attributes.TASK_OUTPUT, "")),
        llm_calls=sum(1 for r in under if _is_llm(r)),
        tool_calls=tools,
        thoughts=[t for t in thoughts if t],
        failures=_failures([task, *under]),
    )
