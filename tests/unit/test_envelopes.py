"""shared.envelopes: raw / base64 bodies, Event Grid and CloudEvents wrappers, and what is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.envelopes import MAX_BODY_BYTES, Envelope, unwrap
from shared.errors import RequestRejected
from tests.unit.builders import names

REQUEST = names("vm", correlationId="c-1")
BOM = b"\xef\xbb\xbf"


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def event_grid(data: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": "evt-1", "topic": "/subscriptions/x/resourceGroups/y", "subject": "backup/vm",
        "eventType": "Contoso.Backup.Requested", "eventTime": "2026-11-26T12:00:00Z", "dataVersion": "1.0",
        "metadataVersion": "1", "data": data, **extra,
    }


def cloud_event(**fields: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "ce-1", "source": "/contoso/backup", "type": "Contoso.Backup.Requested",
            "datacontenttype": "application/json", **fields}


def rejected(body: bytes | str) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        unwrap(body)
    return caught.value


# --- accepted forms ------------------------------------------------------------------------

TEXT = json.dumps(REQUEST)


@pytest.mark.parametrize(
    ("body", "transport"),
    [
        (TEXT.encode(), "json"),
        (TEXT, "json"),
        (f"  \n{TEXT}\r\n ".encode(), "json"),
        (BOM + TEXT.encode(), "json"),
        (f"[{TEXT}]".encode(), "json"),
        (b64(TEXT).encode(), "base64"),
        (b64(TEXT), "base64"),
        (f" {b64(TEXT)}\n".encode(), "base64"),
        (BOM + b64(TEXT).encode(), "base64"),
        (b64(BOM + TEXT.encode()).encode(), "base64"),
        (b64(f"  {TEXT}  ").encode(), "base64"),
    ],
)
def test_plain_and_base64_bodies(body: bytes | str, transport: str) -> None:
    envelope = unwrap(body)

    assert envelope == Envelope(document=REQUEST, transport=transport, event_id=None)


@pytest.mark.parametrize(
    "event",
    [
        event_grid(REQUEST),
        [event_grid(REQUEST)],
        event_grid(json.dumps(REQUEST)),
        [event_grid(json.dumps(REQUEST))],
    ],
)
@pytest.mark.parametrize("encode", [False, True])
def test_event_grid_event(event: Any, encode: bool) -> None:
    text = json.dumps(event)
    envelope = unwrap(b64(text) if encode else text)

    assert envelope.document == REQUEST
    assert envelope.transport == ("base64+eventgrid" if encode else "json+eventgrid")
    assert envelope.event_id == "evt-1"


@pytest.mark.parametrize("event_id", [None, "", 42])
def test_event_grid_event_without_a_usable_id(event_id: object) -> None:
    event = event_grid(REQUEST, id=event_id)

    assert unwrap(json.dumps(event)).event_id is None


@pytest.mark.parametrize(
    "event",
    [
        cloud_event(data=REQUEST),
        cloud_event(data=json.dumps(REQUEST)),
        cloud_event(data_base64=b64(json.dumps(REQUEST))),
        [cloud_event(data=REQUEST)],
    ],
)
@pytest.mark.parametrize("encode", [False, True])
def test_cloud_event(event: Any, encode: bool) -> None:
    text = json.dumps(event)
    envelope = unwrap(b64(text) if encode else text)

    assert envelope.document == REQUEST
    assert envelope.transport == ("base64+cloudevents" if encode else "json+cloudevents")
    assert envelope.event_id == "ce-1"


def test_data_base64_wins_over_data() -> None:
    event = cloud_event(data={"other": 1}, data_base64=b64(json.dumps(REQUEST)))

    assert unwrap(json.dumps(event)).document == REQUEST


@pytest.mark.parametrize("extra", [{"data": {"x": 1}}, {"eventType": "x"}, {"id": "evt-1"}])
def test_a_document_with_only_some_event_keys_is_not_an_event(extra: dict[str, Any]) -> None:
    document = {**REQUEST, **extra}

    assert unwrap(json.dumps(document)) == Envelope(document, "json")


def test_a_body_of_exactly_64_kib_is_read() -> None:
    text = json.dumps(REQUEST)
    body = text[:-1].encode() + b" " * (MAX_BODY_BYTES - len(text)) + b"}"

    assert len(body) == MAX_BODY_BYTES
    assert unwrap(body).document == REQUEST


# --- refused forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"", "message", "is empty"),
        (b"   \n\t ", "message", "is empty"),
        (BOM, "message", "is empty"),
        ("", "message", "is empty"),
        (b"{not json", "message", "is not valid JSON"),
        (b'{"a": 1,}', "message", "is not valid JSON"),
        (b"[1, 2", "message", "is not valid JSON"),
        (b"hello world", "message", "neither JSON nor base64"),
        (b"42", "message", "neither JSON nor base64"),
        (b'"a string"', "message", "neither JSON nor base64"),
        (b64("hello").encode(), "message", "does not hold a JSON object"),
        (b64("42").encode(), "message", "does not hold a JSON object"),
        (b64("{oops").encode(), "message", "is not valid JSON"),
        (b64(b"\xff\xfe\x00{").encode(), "message", "is not UTF-8"),
        (b"\xff\xfe{}", "message", "is not UTF-8"),
        ('{"a": "caf\u00e9"}'.encode("latin-1"), "message", "is not UTF-8"),
        (b"[]", "message", "array of 0 items"),
        (f"[{TEXT}, {TEXT}]".encode(), "message", "array of 2 items"),
        (json.dumps([event_grid(REQUEST), event_grid(REQUEST)]).encode(), "message", "array of 2 items"),
        (b"[1]", "message", "must be a JSON object"),
        (b'["x"]', "message", "must be a JSON object"),
        (b"[[{}]]", "message", "must be a JSON object"),
        (b"[null]", "message", "must be a JSON object"),
    ],
)
def test_refused_bodies(body: bytes | str, field: str, reason: str) -> None:
    error = rejected(body)

    assert error.field_name == field
    assert reason in error.reason


def test_a_body_over_64_kib_is_refused_by_size() -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    error = rejected(body)

    assert error.field_name == "message"
    assert f"{len(body)} bytes" in error.reason


@pytest.mark.parametrize(
    "body",
    [
        "[" * 60_000,
        "[" * 30_000 + "]" * 30_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        b64("[" * 40_000),
        json.dumps(event_grid("[" * 20_000 + "]" * 20_000)),
        json.dumps(cloud_event(data_base64=b64("[" * 30_000))),
    ],
)
def test_deeply_nested_json_is_refused(body: str) -> None:
    assert len(body) <= MAX_BODY_BYTES
    error = rejected(body)

    assert "nested too deeply" in error.reason


DEPTH_LIMIT = 32  # containers, the message itself included: a request is 3 deep, an event around it adds 1


def _nested(levels: int) -> str:
    """A request whose containers, counting the request itself, nest ``levels`` deep."""
    document: Any = 1
    for level in range(levels - 1):
        document = {"a": document} if level % 2 else [document]  # lists and objects both count
    return json.dumps({**REQUEST, "properties": document})


def test_json_nested_as_deep_as_the_limit_is_read() -> None:
    assert unwrap(_nested(DEPTH_LIMIT)).document["correlationId"] == "c-1"


@pytest.mark.parametrize("levels", [DEPTH_LIMIT + 1, DEPTH_LIMIT + 2, 200])
def test_json_nested_past_the_limit_is_refused(levels: int) -> None:
    error = rejected(_nested(levels))

    assert error.field_name == "message"
    assert error.reason == f"is nested deeper than {DEPTH_LIMIT} levels"


def test_the_depth_limit_counts_the_event_around_the_request() -> None:
    inner = json.loads(_nested(DEPTH_LIMIT - 1))

    assert unwrap(json.dumps(event_grid(inner))).document["correlationId"] == "c-1"
    assert "nested deeper" in rejected(json.dumps([event_grid(inner)])).reason


@pytest.mark.parametrize(
    ("event", "field", "reason"),
    [
        (event_grid(None), "data", "must be a JSON object"),
        (event_grid([REQUEST]), "data", "must be a JSON object"),
        (event_grid(42), "data", "must be a JSON object"),
        (event_grid("not json"), "data", "is not valid JSON"),
        (event_grid('"a json string"'), "data", "must be a JSON object"),
        (cloud_event(), "data", "carries no data"),
        (cloud_event(data=None), "data", "must be a JSON object"),
        (cloud_event(data=[1]), "data", "must be a JSON object"),
        (cloud_event(data_base64="***"), "data_base64", "not valid base64"),
        (cloud_event(data_base64=42), "data_base64", "must be a base64 string"),
        (cloud_event(data_base64=b64("not json")), "data_base64", "is not valid JSON"),
        (cloud_event(data_base64=b64("[1]")), "data", "must be a JSON object"),
        (cloud_event(specversion="0.3", data=REQUEST), "specversion", "not supported"),
        (cloud_event(specversion="2.0", data=REQUEST), "specversion", "not supported"),
        (cloud_event(specversion=None, data=REQUEST), "specversion", "not supported"),
    ],
)
def test_refused_events(event: dict[str, Any], field: str, reason: str) -> None:
    error = rejected(json.dumps(event))

    assert error.field_name == field
    assert reason in error.reason


@pytest.mark.parametrize("body", ["\ud800", '{"a": "\udfff"}'])
def test_text_with_lone_surrogates_is_refused(body: str) -> None:
    assert rejected(body).field_name == "message"


# --- properties: only RequestRejected ------------------------------------------------------


def _only_rejected(body: bytes | str) -> None:
    try:
        envelope = unwrap(body)
    except RequestRejected as exc:
        assert exc.reason
        return
    assert isinstance(envelope.document, dict)
    assert envelope.transport.split("+")[0] in {"json", "base64"}


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_an_envelope_or_request_rejected(body: bytes) -> None:
    _only_rejected(body)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_arbitrary_text_gives_an_envelope_or_request_rejected(body: str) -> None:
    _only_rejected(body)
    _only_rejected(body.encode())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
WRAPPED = JSON_VALUES | st.builds(event_grid, JSON_VALUES) | st.builds(
    lambda data, encoded: cloud_event(data_base64=b64(json.dumps(data))) if encoded else cloud_event(data=data),
    JSON_VALUES, st.booleans(),
)


@hypothesis_settings(max_examples=200, deadline=None)
@given(WRAPPED, st.booleans())
def test_arbitrary_json_documents_and_events(value: Any, encode: bool) -> None:
    text = json.dumps(value)
    _only_rejected(b64(text) if encode else text)
