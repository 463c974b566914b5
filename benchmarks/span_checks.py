"""Checks on the spans crewtrace emits for a workload: the same text stored twice in one span (#18, target 4),
and the OTLP-encoded size of one kickoff's spans: ``python -m benchmarks.span_checks`` prints both as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

MIN_LENGTH = 32  # shorter values (names, ids, roles) repeat by design


def _leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of each string inside a decoded JSON value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")


def _texts(attributes: Any) -> Iterator[tuple[str, str]]:
    """(key, text) for each string attribute value, each string in a sequence value (key[i]), and each string
    inside a JSON-encoded value (key/path: message attributes hold their texts as JSON)."""
    for key, value in (attributes or {}).items():
        if isinstance(value, str):
            yield key, value
            if value[:1] in ("[", "{"):
                try:
                    decoded = json.loads(value)
                except ValueError:
                    continue
                yield from ((f"{key}/{path}", text) for path, text in _leaves(decoded, "") if text != value)
        elif isinstance(value, Sequence) and not isinstance(value, bytes):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    yield f"{key}[{i}]", item


def _base(key: str) -> str:
    """The attribute a text came from: texts of one attribute are not compared with each other."""
    return key.split("[", 1)[0].split("/", 1)[0]


def _is_answer(key: str) -> bool:
    """An attribute holding what a model, tool or crew produced: it may quote its input, which is not crewtrace
    storing the text twice (the offline LLM's answers quote the task, "Offline answer to '<description>'")."""
    base = _base(key)
    return base.endswith(("output", "output.messages", "call.result"))


def repeated_text(spans: Sequence[Any]) -> dict[str, Any]:
    """Spans where a string attribute value of at least MIN_LENGTH characters equals, or is contained in, the
    value of another attribute of the same span; with the offending (contained key, containing key) pairs. An
    answer that quotes its input (a containing answer attribute, not an equal one) is listed apart, as quoted."""
    offenders = 0
    pairs: set[str] = set()
    quoted: set[str] = set()
    for span in spans:
        texts = list(_texts(span.attributes))
        found = [
            (f"{span.name}: {short} in {_base(long)}", small != large and _is_answer(long))
            for short, small in texts
            if len(small) >= MIN_LENGTH
            for long, large in texts
            if _base(long) != _base(short) and len(large) >= len(small) and small in large
        ]
        stored_twice = {pair for pair, quoting in found if not quoting}
        offenders += bool(stored_twice)
        pairs |= stored_twice
        quoted |= {pair for pair, quoting in found if quoting}
    return {"spans": len(spans), "offending_spans": offenders, "pairs": sorted(pairs), "quoted_pairs": sorted(quoted)}


def encoded_bytes(spans: Sequence[Any]) -> int:
    """Size of one OTLP export request holding ``spans`` (what the benchmark receiver counts per request)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans).ByteSize() if spans else 0


def check(workload: str) -> dict[str, Any]:
    """The repeated-text check and encoded size of crewtrace's spans of one ``workload`` kickoff."""
    from benchmarks.worker import recorded_spans

    spans = recorded_spans(workload)
    return {**repeated_text(spans), "encoded_bytes": encoded_bytes(spans)}


def main() -> None:
    """Prints the checks of every benchmark workload as one JSON line (run in a process of its own)."""
    import os

    from benchmarks.isolation import environment

    os.environ.update(environment())
    from benchmarks.workloads import WORKLOADS

    print(json.dumps({workload: check(workload) for workload in WORKLOADS}))


if __name__ == "__main__":
    main()
