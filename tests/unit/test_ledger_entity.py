"""Ledger records as Table entities: the type mapping and every Table limit, at and just past each edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.data.tables import EdmType, EntityProperty

from shared.ledger_entity import RecordNotStorable, check_record, from_entity, to_entity
from shared.ledger_store import Fields, RecordKey

KEY = RecordKey("p", "r")
CLEF = "\U0001d11e"  # one character, two UTF-16 code units


def refused(key: RecordKey, fields: Fields) -> str:
    with pytest.raises(RecordNotStorable) as caught:
        check_record(key, fields)
    return str(caught.value)


# -- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a#b", "a?b", "a\x00b", "a\x1fb", "a\x7fb", "a\x9fb", "a\nb"])
@pytest.mark.parametrize("part", ["partition", "row"])
def test_keys_refuse_the_characters_the_table_refuses(part: str, bad: str) -> None:
    key = RecordKey(bad, "r") if part == "partition" else RecordKey("p", bad)

    assert ("PartitionKey" if part == "partition" else "RowKey") in refused(key, {})


def test_keys_of_hex_digests_dashes_and_other_printable_text_are_accepted() -> None:
    check_record(RecordKey("9f86d081884c7d659a2feaa0c55ad015-2026-11-27", "a.b_c:d;e ü"), {})


@pytest.mark.parametrize("part", ["partition", "row"])
def test_an_empty_key_is_refused(part: str) -> None:
    key = RecordKey("", "r") if part == "partition" else RecordKey("p", "")

    assert "empty" in refused(key, {})


def test_a_key_may_take_one_kib_of_utf16() -> None:
    check_record(RecordKey("k" * 512, CLEF * 256), {})

    assert "1 KiB" in refused(RecordKey("k" * 513, "r"), {})
    assert "1 KiB" in refused(RecordKey("p", CLEF * 256 + "k"), {})


# -- property names and count ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["PartitionKey", "RowKey", "Timestamp", "", "1st", "a-b", "a.b", "n@odata.type", "x" * 256]
)
def test_field_names_must_be_table_property_names_of_ours(name: str) -> None:
    assert repr(name) in refused(KEY, {name: 1})


@pytest.mark.parametrize("name", ["_private", "camelCase", "snake_case_2", "x" * 255])
def test_identifier_names_up_to_255_characters_are_accepted(name: str) -> None:
    check_record(KEY, {name: 1})


def test_an_entity_holds_252_fields_of_ours_and_none_values_do_not_count() -> None:
    full = {f"f{n}": n for n in range(252)}
    check_record(KEY, {**full, "absent": None})

    assert "253 fields" in refused(KEY, {**full, "one_more": 1})


# -- values ----------------------------------------------------------------------------------------


def test_a_string_may_take_64_kib_of_utf16() -> None:
    check_record(KEY, {"ascii": "x" * 32_768})
    check_record(KEY, {"clefs": CLEF * 16_384})

    assert "'ascii'" in refused(KEY, {"ascii": "x" * 32_769})
    assert "'clefs'" in refused(KEY, {"clefs": CLEF * 16_384 + "x"})


def test_bytes_may_take_64_kib() -> None:
    check_record(KEY, {"blob": bytes(65_536)})

    assert "'blob'" in refused(KEY, {"blob": bytes(65_537)})


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63)])
def test_whole_numbers_up_to_64_bits_are_accepted(value: int) -> None:
    check_record(KEY, {"n": value})


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_whole_numbers_beyond_64_bits_are_refused(value: int) -> None:
    assert "64 bits" in refused(KEY, {"n": value})


def test_an_instant_needs_a_time_zone_and_a_year_from_1601() -> None:
    check_record(KEY, {"at": datetime(1601, 1, 1, tzinfo=UTC)})

    assert "naive" in refused(KEY, {"at": datetime(2026, 11, 27, 12, 0)})
    assert "1601" in refused(KEY, {"at": datetime(1601, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)})


@pytest.mark.parametrize("value", [0.5, [1], {"a": 1}, bytearray(b"x")])
def test_values_of_other_types_are_refused(value: Any) -> None:
    assert "not a ledger field type" in refused(KEY, {"odd": value})


def test_an_entity_may_take_one_mib_as_the_service_counts_it() -> None:
    # 4 + 2*len("p" + "r") + 16 * (8 + 2*len("bNN") + 4) = 296 bytes of overhead around the values.
    names = [f"b{n:02d}" for n in range(16)]
    sizes = [65_536] * 15 + [1024 * 1024 - 296 - 15 * 65_536]
    at_limit = {name: bytes(size) for name, size in zip(names, sizes, strict=True)}
    check_record(KEY, at_limit)

    over = {**at_limit, names[-1]: bytes(sizes[-1] + 1)}
    assert "over 1 MiB" in refused(KEY, over)


# -- the mapping -----------------------------------------------------------------------------------


def test_to_entity_types_what_the_table_would_guess_wrong_and_drops_none() -> None:
    offset = timezone(timedelta(hours=2))

    entity = to_entity(
        KEY,
        {
            "small": 2**31 - 1, "low": -(2**31), "large": 2**31, "very_low": -(2**31) - 1, "flag": True,
            "text": "t", "blob": b"b", "at": datetime(2026, 11, 27, 14, 0, tzinfo=offset), "gone": None,
        },
    )

    assert entity == {
        "PartitionKey": "p", "RowKey": "r", "small": 2**31 - 1, "low": -(2**31),
        "large": EntityProperty(2**31, EdmType.INT64), "very_low": EntityProperty(-(2**31) - 1, EdmType.INT64),
        "flag": True, "text": "t", "blob": b"b", "at": datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
    }
    assert entity["flag"] is True
    assert entity["at"].utcoffset() == timedelta(0)


def test_to_entity_checks_the_record_first() -> None:
    with pytest.raises(RecordNotStorable):
        to_entity(KEY, {"PartitionKey": "other"})


class ServiceDatetime(datetime):
    """Stands in for the SDK's ``TablesEntityDatetime``."""


def test_from_entity_gives_plain_values_without_keys_or_foreign_types() -> None:
    read = {
        "PartitionKey": "p", "RowKey": "r", "Timestamp": ServiceDatetime(2026, 1, 1, tzinfo=UTC),
        "n": 5, "large": EntityProperty(2**40, EdmType.INT64), "flag": False, "text": "", "blob": b"",
        "at": ServiceDatetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC), "ratio": 0.5,
    }

    fields = from_entity(read)

    assert fields == {
        "n": 5, "large": 2**40, "flag": False, "text": "", "blob": b"",
        "at": datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC),
    }
    assert type(fields["at"]) is datetime
    assert type(fields["large"]) is int
