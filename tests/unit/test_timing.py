"""shared.timing: Retry-After in all its forms, backoff with equal jitter, queue delay bounds."""

from __future__ import annotations

import random
from datetime import timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from shared.timing import MAX_QUEUE_DELAY_SECONDS, backoff_seconds, delay_within, retry_after_seconds
from tests.unit.builders import NOW


def headers(**values: str) -> CaseInsensitiveDict[str]:
    return CaseInsensitiveDict({name.replace("_", "-"): value for name, value in values.items()})


def http_date(seconds_from_now: float) -> str:
    return format_datetime(NOW + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("60", 60.0), ("0", 0.0), ("1.5", 1.5), (" 7 ", 7.0), ("120\t", 120.0), ("1e3", 1000.0), ("86400", 86400.0)],
)
def test_retry_after_seconds(value: str, expected: float) -> None:
    assert retry_after_seconds(headers(Retry_After=value), NOW) == expected


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER", "rEtRy-AfTeR"])
def test_header_lookup_is_case_insensitive(name: str) -> None:
    assert retry_after_seconds(CaseInsensitiveDict({name: "42"}), NOW) == 42.0


@pytest.mark.parametrize("seconds", [1, 90, 3600])
def test_retry_after_http_date_in_the_future(seconds: int) -> None:
    assert retry_after_seconds(headers(Retry_After=http_date(seconds)), NOW) == float(seconds)


def test_retry_after_http_date_with_numeric_utc_offset() -> None:
    value = (NOW + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert retry_after_seconds(headers(Retry_After=value), NOW) == 30.0


@pytest.mark.parametrize("zone", [" -0000", ""])
def test_retry_after_http_date_without_a_zone_counts_as_absent(zone: str) -> None:
    # An HTTP date is GMT by definition; a date that names no zone (or "-0000", unknown) is not one, and
    # guessing its zone could turn a 30 s wait into hours.
    value = (NOW + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S") + zone
    assert retry_after_seconds(headers(Retry_After=value), NOW) is None


@pytest.mark.parametrize("seconds", [0, -1, -3600])
def test_retry_after_http_date_now_or_past_is_zero(seconds: int) -> None:
    assert retry_after_seconds(headers(Retry_After=http_date(seconds)), NOW) == 0.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"x-ms-retry-after-ms": "250"}, 0.25),
        ({"Retry-After-Ms": "0"}, 0.0),
        ({"retry-after-ms": "1500", "Retry-After": "60"}, 1.5),
        ({"x-ms-retry-after-ms": "2500", "Retry-After": "60"}, 2.5),
        ({"x-ms-retry-after-ms": "2500", "Retry-After": http_date(600)}, 2.5),
        ({"retry-after-ms": "1000", "x-ms-retry-after-ms": "9000", "Retry-After": "60"}, 1.0),
        ({"retry-after-ms": "soon", "x-ms-retry-after-ms": "9000", "Retry-After": "60"}, 9.0),
        ({"retry-after-ms": "-5", "Retry-After": "60"}, 60.0),
        ({"x-ms-retry-after-ms": "inf", "Retry-After": "60"}, 60.0),
    ],
)
def test_millisecond_headers_win(values: dict[str, str], expected: float) -> None:
    assert retry_after_seconds(CaseInsensitiveDict(values), NOW) == expected


@pytest.mark.parametrize(
    "value",
    ["", "soon", "-5", "-0.5", "inf", "-inf", "Infinity", "nan", "NaN", "1e999", "60s", "Thu, 99 Nov 2026 12:00:00 GMT",
     "Mon, 01 Jan 99999 00:00:00 GMT", "12:00", "Tuesday"],
)
def test_garbage_counts_as_absent(value: str) -> None:
    assert retry_after_seconds(headers(Retry_After=value), NOW) is None


def test_no_header_is_none() -> None:
    assert retry_after_seconds(CaseInsensitiveDict(), NOW) is None
    assert retry_after_seconds(headers(Content_Type="application/json"), NOW) is None


# --- backoff -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize(
    ("attempt", "step"),
    [(1, 10), (2, 20), (3, 40), (4, 80), (6, 320), (7, 600), (8, 600), (40, 600), (10_000, 600)],
)
def test_backoff_lies_between_half_a_step_and_a_step(seed: int, attempt: int, step: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        wait = backoff_seconds(attempt, base=10, cap=600, rng=rng)
        assert step / 2 <= wait <= step


def test_backoff_is_reproducible_with_a_seeded_random() -> None:
    first = [backoff_seconds(3, base=10, cap=600, rng=random.Random(5)) for _ in range(3)]
    again = [backoff_seconds(3, base=10, cap=600, rng=random.Random(5)) for _ in range(3)]

    assert first == again


def test_backoff_is_jittered() -> None:
    rng = random.Random(11)
    waits = {backoff_seconds(5, base=10, cap=600, rng=rng) for _ in range(50)}

    assert len(waits) > 40
    assert min(waits) < 100 < max(waits)  # both halves of [80, 160] are reached


@hypothesis_settings(max_examples=200)
@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.integers(min_value=1, max_value=1_000),
    extra=st.integers(min_value=0, max_value=100_000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_bounds_hold(attempt: int, base: int, extra: int, seed: int) -> None:
    cap = base + extra
    wait = backoff_seconds(attempt, base=base, cap=cap, rng=random.Random(seed))
    step = min(cap, base * 2 ** (attempt - 1)) if attempt < 64 else cap

    assert step / 2 <= wait <= step <= cap


# --- delay_within --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "floor", "deadline_in", "expected"),
    [
        (0.0, 5, None, 5),
        (0.2, 5, None, 5),
        (5.0, 5, None, 5),
        (5.1, 5, None, 6),
        (59.999, 5, None, 60),
        (0.2, 0, None, 1),
        (0.0, 0, None, 0),
        (-10.0, 5, None, 5),
        (float(MAX_QUEUE_DELAY_SECONDS), 5, None, MAX_QUEUE_DELAY_SECONDS),
        (MAX_QUEUE_DELAY_SECONDS + 0.5, 5, None, MAX_QUEUE_DELAY_SECONDS),
        (1e12, 5, None, MAX_QUEUE_DELAY_SECONDS),
        (600.0, 5, 100.0, 100),
        (600.0, 5, 99.2, 100),
        (60.0, 5, 100.0, 60),
        (600.0, 5, 2.0, 5),
        (600.0, 5, 0.0, 5),
        (600.0, 5, -50.0, 5),
        (1e12, 5, 1e12, MAX_QUEUE_DELAY_SECONDS),
    ],
)
def test_delay_within(seconds: float, floor: int, deadline_in: float | None, expected: int) -> None:
    delay = delay_within(seconds, floor=floor, deadline_in=deadline_in)

    assert delay == expected
    assert isinstance(delay, int)


def test_the_queue_limit_is_seven_days() -> None:
    assert MAX_QUEUE_DELAY_SECONDS == 604_800


@hypothesis_settings(max_examples=200)
@given(
    seconds=st.floats(min_value=-1e6, max_value=1e15),
    floor=st.integers(min_value=0, max_value=3600),
    deadline_in=st.none() | st.floats(min_value=-1e6, max_value=1e15),
)
def test_delay_within_bounds(seconds: float, floor: int, deadline_in: float | None) -> None:
    delay = delay_within(seconds, floor=floor, deadline_in=deadline_in)

    assert floor <= delay or delay == MAX_QUEUE_DELAY_SECONDS
    assert delay <= max(floor, MAX_QUEUE_DELAY_SECONDS)
    assert delay >= min(seconds, deadline_in if deadline_in is not None else seconds, MAX_QUEUE_DELAY_SECONDS)
