"""Ledger records as Azure Table entities: the type mapping, and the Table's limits checked before sending.

A record that breaks a limit is the caller's bug, not an outage: it fails here at once with the
field named (``RecordNotStorable``), instead of as a 400 from the service that the host would
retry five times and then poison. The limits, from the Table service data model:

- **Keys**: PartitionKey and RowKey up to 1 KiB each (512 UTF-16 code units), without ``/``,
  ``\\``, ``#``, ``?`` or control characters (U+0000 to U+001F, U+007F to U+009F).
- **Property names**: C# identifiers (letters, digits, ``_``; not starting with a digit), up to
  255 characters; ``PartitionKey``, ``RowKey`` and ``Timestamp`` are the service's own. At most
  252 properties of ours (255 with those three).
- **Values**: a string up to 64 KiB, i.e. 32,768 UTF-16 code units (a character above U+FFFF
  counts two); bytes (``Edm.Binary``) up to 64 KiB; whole numbers up to 64 bits; instants from
  1601-01-01 UTC.
- **Entity**: at most 1 MiB as the service counts it: 4 bytes, plus 2 per character of
  PartitionKey and RowKey, plus per property 8 bytes, 2 per character of its name and its value
  (a string 4 + 2 per UTF-16 unit, bytes 4 + length, Int32 4, Int64 and DateTime 8, bool 1).

Types: ``str``; ``int`` as ``Edm.Int32`` when it fits, else ``Edm.Int64``, read back as ``int``
either way; ``bool``; ``bytes``; aware ``datetime`` stored in UTC to the microsecond and read
back as a plain aware UTC ``datetime`` (not the SDK's ``TablesEntityDatetime``, which carries the
service's original text and would send that text back, whatever the value, on a later write).
None values are not written: absent and None are the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty

from shared.ledger_store import Fields, FieldValue, RecordKey

__all__ = ["RecordNotStorable", "check_record", "from_entity", "to_entity"]

logger = logging.getLogger(__name__)

MAX_KEY_UNITS = 512
MAX_STRING_UNITS = 32 * 1024
MAX_BINARY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTIES = 252
EARLIEST_INSTANT = datetime(1601, 1, 1, tzinfo=UTC)
_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)
_SYSTEM_PROPERTIES = frozenset({"PartitionKey", "RowKey", "Timestamp"})
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_KEY_FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


class RecordNotStorable(ValueError):
    """The record breaks a rule or limit of Table storage; nothing was sent."""


def check_record(key: RecordKey, fields: Fields) -> None:
    """Raise ``RecordNotStorable`` naming the first key, field or size that Table storage would refuse."""
    size = 4 + 2 * (_utf16_units(key.partition) + _utf16_units(key.row))
    for part, text in (("PartitionKey", key.partition), ("RowKey", key.row)):
        if not text:
            raise RecordNotStorable(f"{part} is empty")
        if _utf16_units(text) > MAX_KEY_UNITS:
            raise RecordNotStorable(f"{part} is longer than 1 KiB")
        if _KEY_FORBIDDEN.search(text):
            raise RecordNotStorable(f"{part} {text!r} contains / \\ # ? or a control character")
    present = {name: value for name, value in fields.items() if value is not None}
    if len(present) > MAX_PROPERTIES:
        raise RecordNotStorable(f"{len(present)} fields: a Table entity holds at most {MAX_PROPERTIES} of ours")
    for name, value in present.items():
        if name in _SYSTEM_PROPERTIES or not _PROPERTY_NAME.fullmatch(name):
            raise RecordNotStorable(f"field name {name!r} is not a Table property name of ours")
        size += 8 + 2 * len(name) + _value_size(name, value)
    if size > MAX_ENTITY_BYTES:
        raise RecordNotStorable(f"the record is {size} bytes as Table storage counts them, over 1 MiB")


def to_entity(key: RecordKey, fields: Fields) -> dict[str, Any]:
    """The entity to send: checked, None dropped, 64-bit numbers and instants typed explicitly."""
    check_record(key, fields)
    entity: dict[str, Any] = {"PartitionKey": key.partition, "RowKey": key.row}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            entity[name] = value
        elif isinstance(value, int):
            entity[name] = value if value in _INT32 else EntityProperty(value, EdmType.INT64)
        elif isinstance(value, datetime):
            entity[name] = _plain_utc(value)
        else:
            entity[name] = value
    return entity


def from_entity(entity: Mapping[str, Any]) -> dict[str, FieldValue]:
    """A record's fields from an entity the SDK read: no keys, no metadata, plain Python values."""
    fields: dict[str, FieldValue] = {}
    for name, value in entity.items():
        if name in _SYSTEM_PROPERTIES:
            continue
        plain = value.value if isinstance(value, EntityProperty) else value
        if isinstance(plain, datetime):
            fields[name] = _plain_utc(plain)
        elif isinstance(plain, str | bool | int | bytes):
            fields[name] = plain
        else:
            # Only another writer can have put a Guid or a Double here; the ledger has no use for it.
            logger.warning("ledger field %s has type %s, which the ledger never writes; ignored", name, type(plain))
    return fields


def _value_size(name: str, value: FieldValue) -> int:
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        if value not in _INT64:
            raise RecordNotStorable(f"field {name!r}: {value} does not fit in 64 bits")
        return 4 if value in _INT32 else 8
    if isinstance(value, str):
        units = _utf16_units(value)
        if units > MAX_STRING_UNITS:
            raise RecordNotStorable(f"field {name!r}: {units} UTF-16 units, over the 64 KiB of a Table string")
        return 4 + 2 * units
    if isinstance(value, bytes):
        if len(value) > MAX_BINARY_BYTES:
            raise RecordNotStorable(f"field {name!r}: {len(value)} bytes, over the 64 KiB of a Table binary")
        return 4 + len(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise RecordNotStorable(f"field {name!r}: a naive datetime has no instant; give it a time zone")
        if value < EARLIEST_INSTANT:
            raise RecordNotStorable(f"field {name!r}: Table storage keeps instants from 1601-01-01 UTC on")
        return 8
    raise RecordNotStorable(f"field {name!r}: {type(value).__name__} is not a ledger field type")


def _plain_utc(value: datetime) -> datetime:
    utc = value.astimezone(UTC)
    return datetime.combine(utc.date(), utc.time(), UTC)


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
