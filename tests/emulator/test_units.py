"""Pure pieces: clock scaling, ISO durations, filter times, path splitting and config merging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devtools.emulator.clock import EmulatedClock
from devtools.emulator.config import EmulatorConfig
from devtools.emulator.errors import ArmError
from devtools.emulator.listing import filter_time
from devtools.emulator.render import iso_duration
from devtools.emulator.routes import match
from devtools.emulator.typed_json import merge_patch

from .conftest import FakeMonotonic

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_clock_runs_scaled_and_rebases_on_scale_change() -> None:
    real = FakeMonotonic()
    clock = EmulatedClock(60, START, real)

    real.now += 2
    assert clock.now() == START + timedelta(minutes=2)
    clock.set_scale(1)
    real.now += 2
    assert clock.now() == START + timedelta(minutes=2, seconds=2)
    clock.advance(3600)
    assert clock.now() == START + timedelta(hours=1, minutes=2, seconds=2)


def test_the_callers_clock_runs_at_real_speed_and_jumps_only_with_the_emulated_one() -> None:
    real = FakeMonotonic()
    clock = EmulatedClock(60, START, real)

    real.now += 2
    assert (clock.now(), clock.caller_now()) == (START + timedelta(minutes=2), START + timedelta(seconds=2))
    clock.set_scale(1)  # a new speed is not a jump
    assert clock.caller_now() == START + timedelta(seconds=2)
    clock.advance(3600)
    assert (clock.now(), clock.caller_now()) == (START + timedelta(hours=1, minutes=2),
                                                 START + timedelta(hours=1, seconds=2))
    clock.restart(START)
    real.now += 1
    assert clock.now() == clock.caller_now() == START + timedelta(seconds=1)


@pytest.mark.parametrize(("scale", "emulated", "real"), [(1, 60, 60), (60, 60, 1), (3600, 60, 1), (7, 60, 9)])
def test_retry_after_is_whole_real_seconds_at_least_one(scale: float, emulated: float, real: int) -> None:
    assert EmulatedClock(scale, START).retry_after(emulated) == real


@pytest.mark.parametrize(
    ("span", "text"),
    [(timedelta(seconds=9.878279), "PT9.878279S"), (timedelta(0), "PT0S"), (timedelta(hours=6), "PT6H"),
     (timedelta(hours=1, minutes=2, seconds=3.5), "PT1H2M3.5S"), (timedelta(days=1, minutes=1), "PT24H1M")],
)
def test_iso_duration(span: timedelta, text: str) -> None:
    assert iso_duration(span) == text


@pytest.mark.parametrize(
    ("text", "moment"),
    [("2016-01-01 00:00:00 AM", datetime(2016, 1, 1, tzinfo=UTC)),
     ("2016-01-01 12:00:00 AM", datetime(2016, 1, 1, tzinfo=UTC)),
     ("2017-11-29 01:30:00 PM", datetime(2017, 11, 29, 13, 30, tzinfo=UTC)),
     ("2017-11-29 13:30:00", datetime(2017, 11, 29, 13, 30, tzinfo=UTC)),
     ("2017-11-29T13:30:00Z", datetime(2017, 11, 29, 13, 30, tzinfo=UTC))],
)
def test_filter_time_reads_the_example_format(text: str, moment: datetime) -> None:
    assert filter_time(text) == moment


def test_filter_time_refuses_nonsense() -> None:
    with pytest.raises(ArmError):
        filter_time("2017-13-45 00:00:00 AM")


def test_routes_split_before_decoding() -> None:
    base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v"

    assert match(base + "/backupJobs/j%2Fk") is not None
    assert match(base + "/backupJobs/j%2Fk").params["job"] == "j/k"  # type: ignore[union-attr]
    assert match(base + "/backupJobs/j/k") is None
    assert match(base + "/backupJobs/") is None
    assert match(base + "/backupJobs/%FF") is None


def test_merge_patch_follows_rfc_7396() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3}, "d": [2]
    }


def test_config_round_trips_through_json() -> None:
    config = EmulatorConfig.from_dict({"faults": {"script": [{"path": "x", "fault": "drop", "when": "after"}]}})

    assert EmulatorConfig.from_dict(config.to_dict()) == config
