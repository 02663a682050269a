from __future__ import annotations

import logging

import pytest

from aiolwm2m.log_throttle import LogThrottle
from tests.fake_clock import FakeClock


def test_burst_then_one_summary_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = LogThrottle(logging.getLogger("t"), interval=10, burst=3, clock=clock)
    with caplog.at_level(logging.INFO, "t"):
        written = [throttle.info("flood", "line %d", i) for i in range(1000)]
        assert written.count(True) == 3
        assert throttle.info("other", "another kind") is True
        clock.advance(10)
        assert throttle.info("flood", "after the interval") is True
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:4] == ["line 0", "line 1", "line 2", "another kind"]
    assert messages[4] == "997 more like 'flood' suppressed in the last 10 s"
    assert messages[5] == "after the interval"
    assert len(messages) == 6
