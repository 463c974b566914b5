"""The detail of one task, as CrewAI's Traces page shows it: its texts, every LLM call and tool call beneath it,
the agent's thoughts and the failure points. Text fields are None when not captured (see spans.py)."""

from __future__ import annotations

from dataclasses import dataclass

from crewtrace import attributes
from crewtrace.masking import shorten
from crewtrace.report.records import SpanRecord
from crewtrace.report.spans import Failure, amount, count, descendants, failures_in, is_llm, status_of, text
from crewtrace.report.summary import Summary, TaskRow


@dataclass
class LLMCall:
    """One LLM call (a ``chat`` span) beneath the task."""

    span_id: str
    model: str  # gen_ai.request.model ("-" if unknown)
    status: str  # "completed" | "failed"
    start_ns: int
    duration_s: float
    input_tokens: int  # as the provider reported them, cached input included
    output_tokens: int
    cached_input_tokens: int
    cost_usd: float | None  # None: the model has no known price; 0: a free (local) model


@dataclass
class ToolCall:
    """One tool attempt (an ``execute_tool`` span) beneath the task; CrewAI's retries are separate attempts."""

    span_id: str
    name: str
    status: str  # "completed" | "failed"
    start_ns: int
    duration_s: float
    arguments: str | None  # None: not captured
    result: str | None  # None: not captured, or a failed attempt (no result; see error)
    error_type: str | None  # None: the attempt succeeded
    error: str | None  # the failed attempt's message; None: succeeded, or not captured


@dataclass
class TaskDetail:
    """One task: its row in the tasks table plus its texts, calls, thoughts and failures."""

    number: int
    name: str
    span_id: str
    task_key: str | None  # crewai.task.key
    task_id: str | None  # crewai.task.id
    agent: str
    model: str  # the models its LLM calls used ("-" if none)
    status: str
    start_ns: int
    end_ns: int
    duration_s: float
    tokens: int
    cost_usd: float | None
    description: str | None  # None: not captured
    expected_output: str | None
    context: str | None  # the task's input: outputs of earlier tasks handed to it ("" if none)
    output: str | None
    llm_calls: list[LLMCall]
    tool_calls: list[ToolCall]
    thoughts: list[str] | None  # the agent's "Thought:" texts; None: not captured
    failures: list[Failure]


def _llm_call(record: SpanRecord) -> LLMCall:
    attrs = record.attributes
    return LLMCall(
        span_id=record.span_id,
        model=str(attrs.get(attributes.GEN_AI_REQUEST_MODEL, "-")),
        status=status_of(record),
        start_ns=record.start_ns,
        duration_s=record.duration_s,
        input_tokens=count(attrs, attributes.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=count(attrs, attributes.GEN_AI_USAGE_OUTPUT_TOKENS),
        cached_input_tokens=count(attrs, attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        cost_usd=amount(attrs, attributes.LLM_COST_USD),
    )


def _tool_call(record: SpanRecord, content: bool, failure: Failure | None) -> ToolCall:
    attrs = record.attributes
    failed = record.status == "ERROR"
    return ToolCall(
        span_id=record.span_id,
        name=str(attrs.get(attributes.GEN_AI_TOOL_NAME, record.name.removeprefix(f"{attributes.OP_EXECUTE_TOOL} "))),
        status=status_of(record),
        start_ns=record.start_ns,
        duration_s=record.duration_s,
        arguments=text(attrs, attributes.GEN_AI_TOOL_CALL_ARGUMENTS, content),
        result=None if failed else text(attrs, attributes.GEN_AI_TOOL_CALL_RESULT, content),
        error_type=str(attrs.get(attributes.ERROR_TYPE, "error")) if failed else None,
        error=failure.message if failure is not None else None,
    )


def task_detail(summary: Summary, which: str) -> TaskDetail:
    """The detail of one task, by its name or its number in the tasks table."""
    rows = [t for t in summary.tasks if t.name == which or str(t.number) == which]
    if not rows:
        names = shorten(", ".join(f"{t.number} {t.name}" for t in summary.tasks) or "none")
        raise ValueError(f"no task {shorten(which)!r} in this run; its tasks: {names}")
    return detail_of(summary, rows[0])


def detail_of(summary: Summary, row: TaskRow) -> TaskDetail:
    """The detail of the task of one row of the tasks table."""
    task = summary.by_id[row.span_id]
    under = sorted(descendants(summary.children, task.span_id), key=lambda r: r.start_ns)
    content = summary.content_captured
    failures = failures_in([task, *under], content)
    failed_spans = {f.span_id: f for f in failures if f.kind == "execute tool"}
    thought_events = [e for r in under for e in r.events if e.name == attributes.EVENT_AGENT_THOUGHT]
    thoughts = [str(e.attributes.get(attributes.AGENT_THOUGHT_TEXT, "")) for e in thought_events]
    attrs = task.attributes
    return TaskDetail(
        number=row.number,
        name=row.name,
        span_id=row.span_id,
        task_key=_optional(attrs.get(attributes.TASK_KEY)),
        task_id=_optional(attrs.get(attributes.TASK_ID)),
        agent=row.agent,
        model=row.model,
        status=row.status,
        start_ns=row.start_ns,
        end_ns=row.end_ns,
        duration_s=row.duration_s,
        tokens=row.tokens,
        cost_usd=row.cost_usd,
        description=text(attrs, attributes.TASK_DESCRIPTION, content),
        expected_output=text(attrs, attributes.TASK_EXPECTED_OUTPUT, content),
        context=text(attrs, attributes.TASK_CONTEXT, content),
        output=text(attrs, attributes.TASK_OUTPUT, content),
        llm_calls=[_llm_call(r) for r in under if is_llm(r)],
        tool_calls=[
            _tool_call(r, content, failed_spans.get(r.span_id))
            for r in under
            if r.operation == attributes.OP_EXECUTE_TOOL
        ],
        thoughts=[t for t in thoughts if t] if content else None,
        failures=failures,
    )


def _optional(value: object) -> str | None:
    """An identifier attribute as text, None when absent."""
    return None if value is None else str(value)
