"""List requests: the OData-like `$filter` the backup service accepts, and paging with nextLink/$skipToken."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from .errors import bad_request

T = TypeVar("T")
INVALID_FILTER = "BMSUserErrorInvalidFilter"
_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
# The examples write times as '2016-01-01 00:00:00 AM': a 24-hour clock with an AM/PM suffix that is only
# meaningful when the hour is 1..12.
_FILTER_TIME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?\s*([AP]M)?Z?$", re.I)


def parse_filter(text: str | None, allowed: Sequence[str]) -> dict[str, str]:
    """`a eq 'x' and b eq 'y'` as {a: x, b: y}, field names in their canonical spelling; 400 on anything else."""
    if not text or not text.strip():
        return {}
    canonical = {name.lower(): name for name in allowed}
    clauses: dict[str, str] = {}
    for part in _AND.split(text.strip()):
        found = _CLAUSE.match(part)
        if found is None:
            raise bad_request(INVALID_FILTER, f"Unsupported filter clause: {part!r}.", "$filter")
        name = canonical.get(found.group(1).lower())
        if name is None:
            message = f"Filtering on '{found.group(1)}' is not supported; use {', '.join(allowed)}."
            raise bad_request(INVALID_FILTER, message, "$filter")
        clauses[name] = found.group(2)
    return clauses


def filter_time(value: str) -> datetime:
    found = _FILTER_TIME.match(value.strip())
    if found is None:
        raise bad_request(INVALID_FILTER, f"Cannot read the time {value!r}; write e.g. '2016-01-01 00:00:00 AM'.")
    year, month, day, hour, minute, second = (int(g) for g in found.groups()[:6])
    meridiem = (found.group(7) or "").upper()
    if meridiem == "PM" and 1 <= hour < 12:
        hour += 12
    elif meridiem == "AM" and hour == 12:
        hour = 0
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise bad_request(INVALID_FILTER, f"Cannot read the time {value!r}: {exc}.") from exc


def matches(clauses: Mapping[str, str], fields: Mapping[str, str]) -> bool:
    """Equality, case-insensitive, on every clause whose field is in `fields` (others are the caller's)."""
    return all(fields[name].lower() == value.lower() for name, value in clauses.items() if name in fields)


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "offset" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error) as exc:
        raise bad_request("InvalidSkipToken", "The $skipToken is not one this service issued.", "$skipToken") from exc


def page(
    entries: Sequence[T],
    query: Mapping[str, str],
    page_size: int,
    base_url: str,
    raw_path: str,
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """One page of `entries`; nextLink carries the same query with the next $skipToken, absolute like ARM's."""
    token = next((v for k, v in query.items() if k.lower() == "$skiptoken"), None)
    offset = _decode_offset(token) if token else 0
    body: dict[str, Any] = {"value": [render(e) for e in entries[offset : offset + page_size]]}
    if offset + page_size < len(entries):
        kept = [(k, v) for k, v in query.items() if k.lower() != "$skiptoken"]
        kept.append(("$skipToken", _encode_offset(offset + page_size)))
        body["nextLink"] = base_url + raw_path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in kept)
    return body
