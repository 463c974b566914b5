"""A run's findings, task shares and model what-if as a section of its page, each finding linked to its spans
in the waterfall."""

from __future__ import annotations

from html import escape

from crewtrace.report.findings_view import Review, finding_line
from crewtrace.report.render import money
from crewtrace.report.waterfall import waterfall_anchor


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f}%"


def findings_section(found: Review) -> str:
    """The Findings section: the findings, then task shares and the model what-if."""
    items = "".join(
        f'<li class="finding" data-kind="{escape(f.kind)}">{escape(finding_line(f))} '
        + " ".join(f'<a href="#{waterfall_anchor(span_id)}">span {n}</a>' for n, span_id in enumerate(f.span_ids, 1))
        + "</li>"
        for f in found.findings
    )
    listing = f'<ol class="findings">{items}</ol>' if items else "<p>None.</p>"
    compared = (
        f"Compared with {found.history} earlier run(s) of this crew in the source."
        if found.history
        else "No earlier runs of this crew in the source to compare with."
    )
    shares = "".join(
        f"<tr><td>{escape(row['task'])}</td><td class='num'>{row['tokens']:,}</td>"
        f"<td class='num'>{_percent(row['token_share'])}</td><td class='num'>{escape(money(row['cost_usd']))}</td>"
        f"<td class='num'>{_percent(row['cost_share'])}</td></tr>"
        for row in found.shares
    )
    what_if = "".join(
        f'<details class="what-if"><summary>{escape(row.task)}: {escape(row.provider)} '
        f"{escape(', '.join(row.models))}, {escape(money(row.cost_usd))}</summary><table><tbody>"
        + "".join(
            f"<tr><td>{escape(model)}</td><td class='num'>{escape(money(cost))}</td></tr>"
            for model, cost in row.alternatives
        )
        + "</tbody></table></details>"
        for row in found.what_if
    )
    return (
        f'<section id="findings"><h2>Findings</h2>{listing}<p class="sub">{escape(compared)}</p>'
        "<h3>Task shares</h3><table><thead><tr><th>Task</th><th class='num'>Tokens</th><th class='num'>Share</th>"
        f"<th class='num'>Cost</th><th class='num'>Share</th></tr></thead><tbody>{shares}</tbody></table>"
        "<h3>Model what-if</h3><p class='sub'>Each task's exact tokens priced on every model of its provider in "
        f"the price database, cheapest first.</p>{what_if or '<p>None: no task provider is in the database.</p>'}"
        "</section>"
    )
