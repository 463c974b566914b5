"""A run's findings, task shares and model what-if as terminal text and as data (``summary`` and its --json)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crewtrace.report.findings import Finding, Rules, findings
from crewtrace.report.render import money
from crewtrace.report.summary import Summary
from crewtrace.report.what_if import WhatIf, what_if

WHAT_IF_SHOWN = 5  # cheapest alternatives the text shows per task (the JSON and the page have all)


@dataclass
class Review:
    """Everything ``summary`` adds about a run beyond CrewAI's Traces page."""

    findings: list[Finding]
    shares: list[dict[str, Any]]  # per task: tokens and cost, and their share of the run's
    what_if: list[WhatIf]
    history: int  # earlier runs of the same crew the "than usual" findings compared with


def review(run: Summary, others: Sequence[Summary] = (), rules: Rules | None = None) -> Review:
    """The review of ``run``; ``others`` are the source's other runs (its earlier runs of the same crew count)."""
    history = sum(1 for r in others if r.crew == run.crew and r.kind == run.kind and r.start_ns < run.start_ns)
    return Review(findings(run, others, rules), shares(run), what_if(run), history)


def shares(run: Summary) -> list[dict[str, Any]]:
    """Each task's tokens and cost, and their share of the run's (None when the run's total is 0 or unknown)."""
    rows = []
    for task in run.tasks:
        cost_share = None
        if task.cost_usd is not None and run.cost_usd:
            cost_share = task.cost_usd / run.cost_usd
        rows.append(
            {
                "task": task.name,
                "tokens": task.tokens,
                "token_share": task.tokens / run.total_tokens if run.total_tokens else None,
                "cost_usd": task.cost_usd,
                "cost_share": cost_share,
            }
        )
    return rows


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def _where(finding: Finding) -> str:
    parts = [f"task {finding.task}" if finding.task else "", f"agent {finding.agent}" if finding.agent else ""]
    return ", ".join(p for p in parts if p) or "run"


def finding_line(finding: Finding) -> str:
    """One finding in one line: kind, where, what, and the tokens and cost it concerns."""
    amounts = ([f"{finding.tokens:,} tokens"] if finding.tokens else []) + (
        [money(finding.cost_usd)] if finding.cost_usd is not None else []
    )
    spent = f" [{', '.join(amounts)}]" if amounts else ""
    return f"{finding.kind} ({_where(finding)}): {finding.what}{spent}"


def review_lines(found: Review) -> list[str]:
    """The Findings, Task shares and Model what-if sections of ``summary``."""
    lines = ["Findings", *([f"  {finding_line(f)}" for f in found.findings] or ["  none"])]
    lines.append(
        f"  (compared with {found.history} earlier run(s) of this crew in the source)"
        if found.history
        else "  (no earlier runs of this crew in the source to compare with)"
    )
    lines += ["", "Task shares"]
    lines += [
        f"  {row['task']}: {row['tokens']:,} tokens ({_percent(row['token_share'])}), "
        f"{money(row['cost_usd'])} ({_percent(row['cost_share'])})"
        for row in found.shares
    ] or ["  (no tasks)"]
    lines += ["", "Model what-if (each task's tokens on its provider's other models, cheapest first)"]
    for row in found.what_if:
        cheapest = ", ".join(f"{model} {money(cost)}" for model, cost in row.alternatives[:WHAT_IF_SHOWN])
        used = ", ".join(row.models)
        lines.append(
            f"  {row.task} ({row.provider} {used}: {money(row.cost_usd)}): {cheapest}"
            f" ({min(WHAT_IF_SHOWN, len(row.alternatives))} of {len(row.alternatives)})"
        )
    if not found.what_if:
        lines.append("  none (no task's provider is in the price database)")
    return lines


def review_data(found: Review) -> dict[str, Any]:
    """The review as plain data."""
    return {
        "findings": [dataclasses.asdict(f) for f in found.findings],
        "task_shares": found.shares,
        "what_if": [dataclasses.asdict(w) for w in found.what_if],
        "history_runs": found.history,
    }
