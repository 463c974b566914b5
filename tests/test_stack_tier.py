"""The tier layout (collector-tier/): a gateway Collector routing by trace id to two sampling Collectors,
which export to Jaeger. All real processes on 127.0.0.1.

Every trace must land whole on exactly one sampler (each sampler's file exporter shows what it kept) and
whole in Jaeger, also for traces sent while one sampler is down and restarting: the gateway keeps that
sampler's share in its queue and retries, it never sends part of a trace to the other sampler.
"""

from __future__ import annotations

import contextlib

import pytest

from crewtrace.offline_llm import OfflineLLM
from tests import stack
from tests.helpers import one_task_crew
from tests.processes import BackendError, Server
from tests.stack_runs import Run, assert_same_spans, file_kinds, instrument, traces_in

pytestmark = [pytest.mark.usefixtures("fresh_global_provider"), pytest.mark.slow]
PER_PHASE = 14  # a 2^-14 chance that none of a phase goes to sampler 2


@contextlib.contextmanager
def _tier(tmp_path):
    jaeger = stack.jaeger_server(tmp_path / "jaeger")
    to_jaeger = {"JAEGER_ENDPOINT": f"127.0.0.1:{jaeger.ports['grpc']}", "OTELCOL_SAMPLING_PERCENTAGE": "100"}
    samplers = [
        stack.collector_server(stack.SAMPLER_CONFIG, tmp_path / f"sampler-{n}", env=to_jaeger, name=f"sampler-{n}")
        for n in (1, 2)
    ]
    gateway = stack.collector_server(
        stack.GATEWAY_CONFIG,
        tmp_path / "gateway",
        env={f"SAMPLER_{n}": f"127.0.0.1:{s.ports['grpc']}" for n, s in enumerate(samplers, 1)},
        name="gateway",
    )
    try:
        with contextlib.ExitStack() as stop:
            for server in (jaeger, *samplers, gateway):
                stop.callback(server.stop)
                server.start(stack.START_TIMEOUT)
            yield jaeger, samplers, gateway
    except BackendError as error:
        pytest.fail(str(error), pytrace=False)


def _kept(sampler: Server) -> dict[str, list]:
    return traces_in(sampler.cwd / "data" / "traces.jsonl")


def test_every_trace_lands_whole_on_one_sampler_and_in_jaeger_while_a_sampler_restarts(tmp_path):
    with _tier(tmp_path) as (jaeger, samplers, gateway):
        reader = stack.JaegerReader(jaeger)
        sent_path = tmp_path / "sent.jsonl"
        handle = instrument(gateway.base_url("grpc"), sent_path)

        def phase(label: str) -> list[str]:
            before = set(traces_in(sent_path))
            for number in range(PER_PHASE):
                one_task_crew(OfflineLLM(), name=f"{label}-{number}").kickoff()
            assert handle.force_flush(30_000)
            return sorted(set(traces_in(sent_path)) - before)

        first = phase("both-up")
        for trace_id in first:  # nothing waits for a decision in sampler-2 when it stops
            reader.wait(trace_id, 4)
        samplers[1].stop()
        second = phase("sampler-2-down")
        samplers[1].start(stack.START_TIMEOUT)  # same ports, same data directory
        third = phase("sampler-2-back")
        handle.shutdown()

        sent = traces_in(sent_path)
        kinds = file_kinds(sent_path)
        assert len(sent) == 3 * PER_PHASE == len(first) + len(second) + len(third)
        for trace_id, records in sent.items():
            run = Run(trace_id, records, kinds, sent_path, None)
            assert_same_spans(run, reader.wait(trace_id, len(records), timeout=90.0))

        kept = [_kept(s) for s in samplers]
        for trace_id, records in sent.items():
            holders = [k[trace_id] for k in kept if trace_id in k]
            assert len(holders) == 1, f"trace {trace_id} is on {len(holders)} samplers"
            assert sorted(r.span_id for r in holders[0]) == sorted(r.span_id for r in records)
        shares = [sum(1 for t in kept_by if t in sent) for kept_by in kept]
        assert all(shares), f"the gateway routed every trace to one sampler: {shares}"
        # Routing is by trace id, so sampler-2's share of the traces sent while it was down waited for it.
        assert any(t in kept[1] for t in second), "no trace of the outage was routed to sampler-2"
