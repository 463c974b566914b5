"""Tail sampling with the shipped policies (collector-config.yaml as shipped: 25 % of the error-free runs).

Many real runs go through the real Collector to the real Jaeger: every run with an error must arrive
whole, the others arrive whole or not at all, and exactly those the probabilistic policy picks arrive.
The span metrics count every span, sampled or not (they are taken before sampling).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from fractions import Fraction

import pytest

from crewtrace.offline_llm import OfflineLLM, OfflineLLMError
from tests import stack
from tests.helpers import failing_second_call_crew, one_task_crew
from tests.processes import poll, settle
from tests.stack_runs import SERVICE, Stack, instrument, start_stack, traces_in

pytestmark = [pytest.mark.usefixtures("fresh_global_provider"), pytest.mark.slow]
PLAIN_RUNS = 200
FAILING_RUNS = 12
SHARE = 0.25  # sampling_percentage in collector-config.yaml
SALT = b"default-hash-seed"  # the probabilistic policy's hash_salt when none is set


def policy_keeps(trace_id: str, share: float = SHARE) -> bool:
    """The tail_sampling probabilistic policy's decision (contrib v0.161.0, internal/sampling/probabilistic.go):
    FNV-1a 64 of the salt and the 16 trace id bytes, kept when at most MaxUint64 times the share."""
    digest = 0xCBF29CE484222325
    for byte in SALT + bytes.fromhex(trace_id):
        digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return digest <= int((2**64 - 1) * Fraction(share))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("sampling"))


def test_every_failed_run_arrives_and_a_quarter_of_the_rest(shipped, tmp_path):
    sent_path = tmp_path / "sent.jsonl"
    handle = instrument(shipped.otlp, sent_path)
    for number in range(PLAIN_RUNS):
        one_task_crew(OfflineLLM(), name=f"plain-{number}").kickoff()
    for _ in range(FAILING_RUNS):
        with pytest.raises(OfflineLLMError):
            failing_second_call_crew(OfflineLLM(fail_calls=[2])).kickoff()
    handle.shutdown()

    sent = traces_in(sent_path)
    failed = {t for t, records in sent.items() if any(r.status == "ERROR" for r in records)}
    assert len(sent) == PLAIN_RUNS + FAILING_RUNS and len(failed) == FAILING_RUNS

    # Decisions are made 2 s (decision_wait, shortened) after a trace's first span; the file exporter sits
    # beside the Jaeger exporter, so once it holds every failed run, every decision has been written out.
    collector_file = shipped.collector.cwd / "data" / "traces.jsonl"
    poll(lambda: failed <= set(traces_in(collector_file)), 60.0, what="every failed run in the Collector's file")
    time.sleep(3.0)  # one more decision tick and batch timeout, for any decision still on its way
    kept = traces_in(collector_file)
    assert set(kept) <= set(sent) and failed <= set(kept)
    for trace_id, records in sent.items():
        if trace_id in kept:
            assert sorted(r.span_id for r in kept[trace_id]) == sorted(r.span_id for r in records), "not whole"
            found = shipped.reader.wait(trace_id, len(records))
            assert sorted(r.span_id for r in found.records) == sorted(r.span_id for r in records), "not whole"
        else:
            assert shipped.reader.absent(trace_id)

    plain = set(sent) - failed
    assert set(kept) - failed == {t for t in plain if policy_keeps(t)}
    plain_kept = len(set(kept) - failed)
    # Binomial(200, 0.25): mean 50, sd 6.1; 5 sd either side fails once in about 3 million runs.
    mean, sd = PLAIN_RUNS * SHARE, math.sqrt(PLAIN_RUNS * SHARE * (1 - SHARE))
    assert abs(plain_kept - mean) <= 5 * sd, f"{plain_kept} of {PLAIN_RUNS} error-free runs kept"

    # The span metrics are taken before sampling: they count every span of every run, kept or not.
    url = f"{shipped.collector.base_url('prometheus')}/metrics"
    spans = sum(len(records) for records in sent.values())

    def calls(samples: list[stack.Sample]) -> float:
        return stack.total(
            samples, "traces_span_metrics_calls_total", lambda labels: labels.get("service_name") == SERVICE
        )

    assert calls(settle(lambda: stack.scrape(url), lambda s: calls(s) == spans, 30.0)) == spans
