"""The regression guard of #18: crewtrace's own work per CrewAI event, counted in bytecode instructions (a
count, not a timing: the same on every run for the same crewai and SDK), stays within its budget."""

from __future__ import annotations

from benchmarks.listener_cost import demo_instructions

# Measured 2026-12-01 (crewai 1.15.30, opentelemetry-sdk 1.45.2): 1,238 own instructions per demo event at
# 4d6df6d, 936 after #18's work. The budget leaves room for small changes in crewai or the SDK; a change that
# adds work to every event shows here first (docs/benchmarks.md has the per-kind table).
OWN_PER_EVENT_BUDGET = 1_050
HEAVIEST_KIND_BUDGET = 1_900  # the heaviest kinds: llm_call_started 1,704, crew_kickoff_started 1,593


def test_crewtraces_own_work_per_event_stays_within_its_budget():
    counted = demo_instructions()
    assert counted["events"] >= 30 and counted["spans"] == 12, counted  # the whole demo tree was replayed
    assert 0 < counted["per_event_own"] <= OWN_PER_EVENT_BUDGET, counted["per_event_own"]
    heaviest = {kind: row["own"] for kind, row in counted["kinds"].items() if row["own"] > HEAVIEST_KIND_BUDGET}
    assert not heaviest, heaviest
    assert counted["per_event_sdk"] > 0  # the split saw the SDK's work too
