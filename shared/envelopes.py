"""Transport envelopes: turn a queue message body into the JSON document it carries.

One unwrapper per transport, applied in one place:

* text: the body is JSON as is (what the Python QueueClient and Logic Apps send by default);
* base64: the body is base64 of that JSON (what the Functions host and older SDKs send);
* Event Grid: an event (or an array holding one) whose ``data`` is the document;
* CloudEvents 1.0: an event whose ``data`` (or ``data_base64``) is the document.

The request model never knows how it travelled.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from shared.errors import RequestRejected

__all__ = ["Envelope", "unwrap"]

MAX_BODY_BYTES = 64 * 1024  # a storage queue message is at most 64 KiB
MAX_DEPTH = 32  # a request is three levels deep; an event around it adds one


@dataclass(frozen=True)
class Envelope:
    document: dict[str, Any]
    transport: str
    """How it travelled: ``json``, ``base64``, followed by ``+eventgrid`` / ``+cloudevents``."""
    event_id: str | None = None
    event_type: str | None = None
    """The event's ``eventType`` (Event Grid) or ``type`` (CloudEvents): what ``shared.armevents`` reads."""
    subject: str | None = None


def unwrap(body: bytes | str) -> Envelope:
    """The document inside ``body``, or ``RequestRejected`` saying why there is none."""
    raw = _utf8(body) if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise RequestRejected("message", f"is {len(raw)} bytes; a queue message holds at most {MAX_BODY_BYTES}")
    text = _text(raw).strip()
    if not text:
        raise RequestRejected("message", "is empty")
    encoding = "json"
    if text[0] not in "{[":
        text = _from_base64(text)
        encoding = "base64"
    parsed = _json(text, "message")
    return _open_event(parsed, encoding)


def _utf8(body: str) -> bytes:
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestRejected("message", "is not UTF-8 text") from None


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestRejected("message", "is not UTF-8 text") from None


def _from_base64(text: str) -> str:
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestRejected("message", "is neither JSON nor base64-encoded JSON") from None
    inner = _text(decoded).strip()
    if not inner.startswith(("{", "[")):
        raise RequestRejected("message", "is base64 but does not hold a JSON object")
    return inner


def _json(text: str, field_name: str) -> Any:
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestRejected(field_name, "is nested too deeply") from None
    except ValueError as exc:
        raise RequestRejected(field_name, f"is not valid JSON ({exc})") from None
    if _depth_exceeds(document, MAX_DEPTH):
        raise RequestRejected(field_name, f"is nested deeper than {MAX_DEPTH} levels")
    return document


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; echoing them into a result would make the result invalid.
    raise ValueError(f"{name} is not a JSON value")


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iterative: no recursion on hostile input)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _open_event(parsed: Any, encoding: str) -> Envelope:
    if isinstance(parsed, list):
        if len(parsed) != 1:
            raise RequestRejected("message", f"is an array of {len(parsed)} items; send one request per message")
        parsed = parsed[0]
    if not isinstance(parsed, dict):
        raise RequestRejected("message", "must be a JSON object")
    if "specversion" in parsed:
        return _cloud_event(parsed, encoding)
    if "eventType" in parsed and "data" in parsed:
        return Envelope(
            _data(parsed.get("data"), "data"), f"{encoding}+eventgrid", _event_id(parsed),
            _text_field(parsed, "eventType"), _text_field(parsed, "subject"),
        )
    return Envelope(parsed, encoding)


def _cloud_event(event: dict[str, Any], encoding: str) -> Envelope:
    if str(event.get("specversion")) != "1.0":
        raise RequestRejected("specversion", f"CloudEvents {event.get('specversion')!r} is not supported (1.0 is)")
    if "data_base64" in event:
        encoded = event["data_base64"]
        if not isinstance(encoded, str):
            raise RequestRejected("data_base64", "must be a base64 string")
        data: Any = _json(_from_base64_field(encoded), "data_base64")
    elif "data" in event:
        data = event["data"]
    else:
        raise RequestRejected("data", "the CloudEvent carries no data")
    return Envelope(
        _data(data, "data"), f"{encoding}+cloudevents", _event_id(event),
        _text_field(event, "type"), _text_field(event, "subject"),
    )


def _from_base64_field(encoded: str) -> str:
    try:
        return _text(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise RequestRejected("data_base64", "is not valid base64") from None


def _data(data: Any, field_name: str) -> dict[str, Any]:
    # Some publishers put the JSON document into data as a string rather than an object.
    if isinstance(data, str):
        data = _json(data, field_name)
    if not isinstance(data, dict):
        raise RequestRejected(field_name, "the event's data must be a JSON object")
    return data


def _event_id(event: dict[str, Any]) -> str | None:
    return _text_field(event, "id")


def _text_field(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value if isinstance(value, str) and value else None
