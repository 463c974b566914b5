"""docs/benchmarks.md (tables) and docs/benchmarks.png (scaling plot) from one harness run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import baseline
from benchmarks.span_checks import MIN_LENGTH
from benchmarks.targets import CROWD_LIMIT, targets
from benchmarks.targets import ci as _ci
from benchmarks.targets import fmt as _fmt


def write(report: dict[str, Any], docs: Path) -> None:
    rounds = ", ".join(f"{workload} {n}" for workload, n in report["rounds"].items())
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `./scripts/bench` (it installs the alternatives into `.cache/bench-venv`, never into",
        "crewtrace's dependencies, and rewrites this file and `benchmarks.png`). CI runs it only as a quick smoke.",
        "",
        f"Date {report['date']}; machine: {report['machine']}; measured rounds per workload: {rounds}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        "Not installed in this run: " + (", ".join(report["missing"]) or "none") + ".",
        "",
        "## Targets (issue #18)",
        "",
        "Verdicts compare medians; the intervals show how far this run's noise leaves them open. The 20,000",
        "spans/s export target of #7 is retired (see Export throughput).",
        "",
        *targets(report),
        "",
        "## Overhead per kickoff",
        "",
        "CPU time of the whole process (all threads, the export thread included) and wall time of one kickoff",
        "and its export to a local OTLP/gRPC receiver; variants run in their own processes, interleaved round",
        "by round; overhead = median of the paired differences to no instrumentation, with a 95% bootstrap",
        "confidence interval (a kickoff's CPU time varies by about 10% from round to round on this machine).",
        "`sdk_floor` is no instrumentation plus crewtrace's spans of that workload replayed through the SDK",
        "alone: what emitting that tree costs before any CrewAI event is read. On a shared virtual machine two",
        "full runs can differ by more than these intervals (the baseline itself moves); the instruction counts",
        "under Scaling are the measure that does not move.",
        "",
        "| workload | variant | spans | LLM calls | CPU ms | wall ms | CPU overhead ms | 95% CI | wall overhead ms "
        "| CPU µs per span | OTLP bytes per kickoff |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workload, table in report["overhead"].items():
        for variant, row in table.items():
            cells = [
                workload,
                variant,
                _fmt(row["spans"], 0),
                _fmt(row.get("llm_calls"), 0),
                _fmt(row["cpu_ms"]),
                _fmt(row["wall_ms"]),
                _fmt(row["cpu_overhead_ms"], 2),
                _ci(row),
                _fmt(row["wall_overhead_ms"], 2),
                _fmt(row["us_per_span"]),
                _fmt(row.get("otlp_bytes"), 0),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += _kickoff_work(report.get("kickoff_instructions"))
    lines += _bytes(report) + _scaling(report["scaling"]) + _kinds(report.get("instructions"))
    lines += ["", "## Listener cost per event (CPU µs, median)", ""]
    lines += [
        "The recorded events of the three workloads replayed through crewtrace's listener into an SDK provider",
        "(back to back, so with warm caches). Inside a real kickoff each event comes after about a millisecond of",
        "CrewAI's own work has pushed crewtrace's code and data out of the CPU caches, and the same handling costs",
        "3-7 times more (measured per kind on 2026-12-01: `llm_call_started` 255 µs, `agent_execution_completed`",
        "116 µs): why the overhead per kickoff follows the instructions executed per event, the SDK's included.",
        "",
        "| event | µs | per run |",
        "|---|---|---|",
    ]
    for kind, row in report["listener"].items():
        lines.append(f"| `{kind}` | {_fmt(row['us'])} | {_fmt(row['per_run'], 0)} |")
    lines += _throughput(report)
    held = report.get("memory")
    if held:
        lines += [
            "",
            "## Memory per in-flight crew",
            "",
            f"Crews stopped inside a tool call of their last task ({held['crews'][0]} and then {held['crews'][1]} "
            "at once, tracemalloc after a collection): what crewtrace adds per running crew (its open spans, the "
            "tracker's records, the ended spans queued for export), next to what CrewAI itself holds per crew.",
            "",
            "| crewtrace per in-flight crew | CrewAI per in-flight crew |",
            "|---|---|",
            f"| {_fmt(held['per_crew_bytes'] / 1024)} KiB | {_fmt(held['crewai_per_crew_bytes'] / 1024)} KiB |",
        ]
    lines += _long_life(report.get("long_life"), report.get("crowds"))
    lines += _hostile_reads(report.get("hostile_reads"))
    (docs / "benchmarks.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _plot(report, docs / "benchmarks.png")


def _hostile_reads(cases: dict[str, dict[str, float]] | None) -> list[str]:
    if not cases:
        return []
    lines = [
        "",
        "## Reading hostile trace files",
        "",
        "Seconds per command on a hand-made file (benchmarks/hostile_reads.py): a run whose final output is one",
        "word of megabytes (textwrap alone is quadratic there: 27 s for 8 MB before #25), and a run of thousands",
        "of tasks (every subtree walk reuses one index of the run's spans).",
        "",
        "| file | summary | runs | report |",
        "|---|---|---|---|",
    ]
    for case, seconds in cases.items():
        lines.append(f"| {case} | {seconds['summary']:.2f} | {seconds['runs']:.2f} | {seconds['report']:.2f} |")
    return lines


def _kickoff_work(counted: dict[str, Any] | None) -> list[str]:
    """Bytecode instructions of one whole demo kickoff and its export, per variant (a count that does not move
    from run to run, unlike the CPU times above)."""
    if not counted:
        return []
    lines = [
        "",
        "### Instructions per demo kickoff",
        "",
        "The same comparison counted instead of timed: Python bytecode instructions one whole demo kickoff and its",
        "export execute, in every thread (`benchmarks/kickoff_instructions.py`; the third kickoff of a process,",
        "the same count on every run). Each instruction belongs to the instrumentation's own package, to",
        "OpenTelemetry (SDK, OTLP exporter, gRPC and protobuf Python code) or to the rest (CrewAI and the workload);",
        "library code such as the standard library's belongs to whoever called it. Work done in C (JSON encoding,",
        "protobuf serialisation, gRPC's core) is not counted.",
        "",
        "| variant | instructions per kickoff | added to none | instrumentation's own | OpenTelemetry | rest "
        "| added per span |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, row in counted.items():
        cells = [variant, row["total"], row["added"], row["own"], row["sdk"], row["rest"], row["added_per_span"]]
        lines.append("| " + " | ".join([cells[0], *(_fmt(c, 0) for c in cells[1:])]) + " |")
    return lines


def _long_life(runs: dict[str, Any] | None, crowd: dict[str, Any] | None) -> list[str]:
    """The crowds and long-life section: crewtrace's overhead among 16 crews at once, and traced memory and RSS
    over many kickoffs, with crewtrace and without."""
    if not runs and not crowd:
        return []
    lines = ["", "## Crowds and long lives", ""]
    if runs:
        lines += [
            "One process runs kickoffs of a small crew (one agent, a tool call: 6 spans) one after another, with",
            "crewtrace's default pipeline exporting over OTLP/gRPC to a local receiver, and without crewtrace",
            "(`benchmarks/long_life.py`). tracemalloc runs throughout; samples after a warm-up, each after a flush and",
            "a collection. The slope over the second half of the samples is the one that tells growth: the first half",
            "holds a one-off step of about 3.7 MB at startup (with and without crewtrace: CPython's interned-string",
            "table growing once while crewai imports and runs).",
            "",
            "| variant | kickoffs | traced at first sample | traced at last | slope, second half | RSS first → last |",
            "|---|---|---|---|---|---|",
        ]
        for variant, run in runs.items():
            first, last = run["samples"][0], run["samples"][-1]
            slope = _fmt(run["traced_late_slope_bytes_per_kickoff"], 2)
            lines.append(
                f"| {variant} | {run['kickoffs']} | {_fmt(first['traced_bytes'] / 2**20, 2)} MiB | "
                f"{_fmt(last['traced_bytes'] / 2**20, 2)} MiB | {slope} B/kickoff "
                f"| {_fmt(first['rss_bytes'] / 2**20, 0)} → {_fmt(last['rss_bytes'] / 2**20, 0)} MiB |"
            )
        lines.append("")
    lines += [
        "Crowds are tested as well as timed: `tests/test_crowds.py` runs 300 crews at once, 100 in one asyncio",
        "event loop (`akickoff`) and 200 on 32 threads (`kickoff`), exported to a real OTLP/gRPC receiver; every",
        "trace arrives whole (its exact tree, all 1,400 spans, none twice), none mixed with another run's, and every",
        "crew's result is what it is when run alone.",
    ]
    if crowd:
        row = crowd["crowd"]
        n = crowd["crews"]
        low, high = crowd["ratio_ci"]
        lines += [
            "",
            f"Timed: {n} {crowd['workload']} crews kicked off at once on {n} threads (released by one barrier), in",
            "one process with and without crewtrace, interleaved round by round, then flushed; CPU of the whole",
            f"process. Overhead per kickoff = median paired difference / {n}; alone = the single-crew overhead of",
            f"the same workload in this run (Overhead per kickoff). Target (#18): ratio at most {CROWD_LIMIT}.",
            "",
            "| crews | rounds | spans | LLM calls | CPU ms (crowd, crewtrace) | wall ms | overhead per kickoff ms "
            "| 95% CI | alone ms | 95% CI | ratio | 95% CI |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {n} | {crowd['rounds']} | {_fmt(row['spans'], 0)} | {_fmt(row.get('llm_calls'), 0)} "
            f"| {_fmt(row['cpu_ms'])} | {_fmt(row['wall_ms'])} | {_fmt(crowd['per_kickoff_ms'], 2)} "
            f"| {_ci(crowd, key='per_kickoff_ci_ms')} | {_fmt(crowd['single_ms'], 2)} "
            f"| {_ci(crowd, key='single_ci_ms')} | {_fmt(crowd['ratio'], 2)} | [{_fmt(low, 2)}, {_fmt(high, 2)}] |",
        ]
    return lines


def _bytes(report: dict[str, Any]) -> list[str]:
    """OTLP bytes per kickoff, per LLM call and per span of each workload and variant, and the repeated-text
    check of crewtrace's spans."""
    lines = [
        "",
        "## Bytes",
        "",
        "OTLP protobuf bytes the local receiver got per kickoff (median; every export request of that kickoff),",
        "per LLM call the kickoff made, and per span.",
        "",
        "| workload | variant | spans | LLM calls | OTLP bytes per kickoff | per LLM call | per span |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, table in report["overhead"].items():
        for variant, row in table.items():
            if variant == "none":
                continue
            spans = row["spans"]
            lines.append(
                f"| {workload} | {variant} | {_fmt(spans, 0)} | {_fmt(row.get('llm_calls'), 0)} "
                f"| {_fmt(row.get('otlp_bytes'), 0)} | {_fmt(row.get('bytes_per_llm_call'), 0)} "
                f"| {_fmt(row.get('otlp_bytes', 0) / spans if spans else float('nan'), 0)} |"
            )
    checks = report.get("span_checks")
    if checks:
        lines += [
            "",
            "crewtrace's spans of one kickoff encoded as one export request, against the baseline "
            f"({baseline.COMMIT}), and the",
            f"spans where a string of {MIN_LENGTH} or more characters (an attribute value, or a text inside a JSON "
            "value) equals or is",
            "contained in another attribute of the same span (an answer that quotes its input, such as the offline",
            "LLM's \"Offline answer to '<task description>'\", is listed as quoted, not counted):",
            "",
            "| workload | spans | encoded bytes | baseline | spans storing a text twice | baseline | pairs | quoted |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for workload, row in checks.items():
            base = baseline.SPANS.get(workload, {})
            pairs = "; ".join(f"`{pair}`" for pair in row["pairs"]) or "none"
            quoted = "; ".join(f"`{pair}`" for pair in row.get("quoted_pairs", ())) or "none"
            lines.append(
                f"| {workload} | {row['spans']} | {row['encoded_bytes']} | {base.get('encoded_bytes', 'n/a')} "
                f"| {row['offending_spans']} | {base.get('repeated_text', 'n/a')} | {pairs} | {quoted} |"
            )
    return lines


def _scaling(rows: list[dict[str, Any]]) -> list[str]:
    """The scaling table: CPU overhead, and instructions per event and per span split by owner."""
    lines = [
        "",
        "## Scaling (crewtrace)",
        "",
        "CPU overhead per kickoff as above (fewer rounds, so wider intervals), and the work crewtrace's listener",
        "does per event and per span counted in Python bytecode instructions over a replay of the same crew's",
        "events (after one warm-up replay): a count, not a timing, so it is the same on every run. Each",
        "instruction is crewtrace's own (its code, and what its code calls outside OpenTelemetry) or the SDK's",
        "(OpenTelemetry's code, and what that calls), by the nearest such frame on the stack. Flat instructions",
        "per event mean the work grows linearly with the crew. More LLM calls per task mean longer conversations",
        "resent on every call, which crewtrace captures up to `max_content_length` per call.",
        "",
        "| tasks | LLM calls per task | spans | CPU overhead ms | 95% CI | µs per span | instructions per event: "
        f"own | SDK | total | baseline own / SDK ({baseline.COMMIT}) | instructions per span: own | SDK | total |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = baseline.SCALING.get((row["tasks"], row["calls"]))
        lines.append(
            f"| {row['tasks']} | {row['calls']} | {_fmt(row['spans'], 0)} | {_fmt(row['cpu_overhead_ms'], 2)} | "
            f"{_ci(row)} | {_fmt(row['us_per_span'])} | {_fmt(row.get('instructions_per_event_own'), 0)} "
            f"| {_fmt(row.get('instructions_per_event_sdk'), 0)} | {_fmt(row.get('instructions_per_event'), 0)} "
            f"| {f'{base[0]:.0f} / {base[1]:.0f}' if base else 'n/a'} "
            f"| {_fmt(row.get('instructions_per_span_own'), 0)} | {_fmt(row.get('instructions_per_span_sdk'), 0)} "
            f"| {_fmt(row.get('instructions_per_span'), 0)} |"
        )
    return lines


def _kinds(counted: dict[str, Any] | None) -> list[str]:
    """Instructions per CrewAI event kind of one demo kickoff, crewtrace's own and the SDK's, with the baseline."""
    if not counted:
        return []
    demo, floor = counted["demo"], counted["sdk_floor"]
    lines = [
        "",
        "## Work per CrewAI event (demo, bytecode instructions)",
        "",
        f"One demo kickoff's {demo['events']} events replayed through crewtrace's listener, counted as under Scaling,",
        f"against the baseline ({baseline.COMMIT}). Per event: crewtrace's own {_fmt(demo['per_event_own'], 0)} "
        f"(baseline {_fmt(baseline.DEMO['per_event_own'], 0)}),",
        f"the SDK's {_fmt(demo['per_event_sdk'], 0)} ({_fmt(baseline.DEMO['per_event_sdk'], 0)}), total "
        f"{_fmt(demo['per_event'], 0)} ({_fmt(baseline.DEMO['per_event'], 0)}). The SDK floor (crewtrace's "
        f"{floor['spans']} spans",
        f"replayed through the SDK alone): {floor['per_kickoff']} instructions per kickoff "
        f"({baseline.SDK_FLOOR['per_kickoff']}).",
        "",
        "| event | per kickoff | own per event | SDK per event | baseline own | baseline SDK |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in sorted(demo["kinds"].items(), key=lambda item: -item[1]["own"] * item[1]["count"]):
        base = baseline.DEMO_KINDS.get(kind)
        lines.append(
            f"| `{kind}` | {row['count']} | {_fmt(row['own'], 0)} | {_fmt(row['sdk'], 0)} "
            f"| {_fmt(base[1], 0) if base else 'n/a'} | {_fmt(base[2], 0) if base else 'n/a'} |"
        )
    return lines


def _throughput(report: dict[str, Any]) -> list[str]:
    """Export throughput of crewtrace's default pipeline, as information (#18 retired its target)."""
    lines = [
        "",
        "## Export throughput (information)",
        "",
        "The 20,000 spans/s target was retired in #18: a CrewAI process makes spans at the pace of its LLM calls.",
        "Spans shaped like crewtrace's LLM spans, ended at the offered rate (in bursts with real sleeps between",
        "them) through the pipeline `crewtrace.instrument()` builds, to local receivers.",
        "",
        "| protocol | offered spans/s | spans | achieved spans/s | not delivered |",
        "|---|---|---|---|---|",
    ]
    for row in report["throughput"]:
        lines.append(
            f"| {row['protocol']} | {row['target']} | {row['spans']} | {_fmt(row['rate'], 0)} | {row['undelivered']} |"
        )
    costs = report.get("export_costs")
    if costs:
        lines += [
            "",
            f"CPU per span in one process: {_fmt(costs['produce_us'])} µs to start and end it through the SDK, "
            f"{_fmt(costs['encode_us'])} µs to encode it to OTLP protobuf, {_fmt(costs['serialise_us'])} µs to "
            "serialise it.",
        ]
    return lines


def _plot(report: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = report["scaling"]
    figure, (cpu, work) = plt.subplots(1, 2, figsize=(10, 4))
    series = (
        ("more tasks (2 LLM calls each)", [r for r in rows if r["calls"] == 2]),
        ("more LLM calls per task (10 tasks)", [r for r in rows if r["tasks"] == 10]),
    )
    for label, points in series:
        points = sorted(points, key=lambda r: r["spans"])
        spans = [r["spans"] for r in points]
        cpu.plot(spans, [r["cpu_overhead_ms"] for r in points], "o-", label=label)
        own = work.plot(spans, [r.get("instructions_per_event_own", float("nan")) for r in points], "o-", label=label)
        total = [r.get("instructions_per_event", float("nan")) for r in points]
        work.plot(spans, total, "o--", color=own[0].get_color(), alpha=0.5)
    cpu.set_xlabel("spans per kickoff")
    cpu.set_ylabel("CPU overhead per kickoff (ms)")
    cpu.set_title("crewtrace overhead as the crew grows")
    work.set_xlabel("spans per kickoff")
    work.set_ylabel("bytecode instructions per event")
    work.set_title("work per event: own (solid), with the SDK (dashed)")
    work.set_ylim(bottom=0)
    for axis in (cpu, work):
        axis.grid(True, alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
