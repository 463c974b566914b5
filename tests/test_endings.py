"""Span times come from CrewAI's event timestamps, exact to the microsecond CrewAI records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from crewtrace.tracing.endings import timestamp_ns

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))  # to the year 2100
def test_an_event_timestamp_becomes_its_exact_nanoseconds(microseconds):
    moment = _EPOCH + timedelta(microseconds=microseconds)
    assert timestamp_ns(SimpleNamespace(timestamp=moment)) == microseconds * 1_000
    # CrewAI's timestamps are naive: they are taken as UTC.
    assert timestamp_ns(SimpleNamespace(timestamp=moment.replace(tzinfo=None))) == microseconds * 1_000


def test_an_aware_timestamp_keeps_its_offset_and_a_missing_one_is_now():
    moment = datetime(2026, 12, 1, 5, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2)))
    assert timestamp_ns(SimpleNamespace(timestamp=moment)) == (
        int((moment - _EPOCH) / timedelta(microseconds=1)) * 1_000
    )
    before = datetime.now(UTC)
    now_ns = timestamp_ns(SimpleNamespace(timestamp=None))
    assert abs(now_ns - int((before - _EPOCH) / timedelta(microseconds=1)) * 1_000) < 5_000_000_000
