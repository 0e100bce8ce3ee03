"""The stack under the other tests: host.json as written (idle poll shortened), the emulator's clock restartable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.conftest import FAST_POLLING, TIME_SCALE, Suite

pytestmark = pytest.mark.integration


def test_the_host_runs_both_functions_by_host_json_with_the_polling_override(suite: Suite) -> None:
    log = suite.stack.log_path("host").read_text(encoding="utf-8")
    ((setting, value),) = FAST_POLLING.items()

    assert f"overridden by app setting {setting.lower()}={value}" in log.lower()
    assert "poll_status <- backup-status, trigger_backup <- backup-requests" in log
    assert "batchSize 16, newBatchThreshold 8, maxDequeueCount 5, encoding none" in log


def test_an_emulator_reset_brings_its_clock_back_to_real_time(suite: Suite) -> None:
    # A job list filtered by the app's real clock must find jobs of the emulator's clock (the redelivery path).
    suite.admin.clock(advance_seconds=86400)
    suite.admin.reset()

    clock = suite.admin.clock()
    drift = datetime.fromisoformat(clock["now"]) - datetime.now(UTC)
    assert clock["time_scale"] == TIME_SCALE
    assert abs(drift.total_seconds()) < 10 * TIME_SCALE
