"""backup_api's refusals: bad input (400, the queue's own error), 409, 413, 415, 404, 405, 501, 503, 500.

A bad request answers with exactly the ``error`` a ``Rejected`` result of the same body carries on
the queue, and nothing is recorded, queued or sent to ARM. Storage that cannot be reached answers
503 with Retry-After and says nothing of what failed inside.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

import trigger_backup
from shared import runtime
from shared.errors import QueueUnavailable
from shared.httpcall import MAX_BODY_BYTES
from shared.ledger_store import Fields, LedgerUnavailable, MemoryStore, RecordKey, Stored
from tests.fakes import Clock
from tests.functions.harness import VM_NAMES, OutCapture, queue_message, script_success
from tests.functions.http_harness import COLLECTION, JSON, FrontDoor

SECRET = "AccountKey=c2VjcmV0LWtleS1TRUNSRVQ=;TableEndpoint=https://acct.table.core.windows.net"
ALLOWED = {"ALLOWED_SUBSCRIPTIONS": VM_NAMES["subscriptionId"]}

BAD_BODIES: dict[str, bytes] = {
    "not-json": b"this is not json",
    "empty": b"",
    "array-of-two": json.dumps([VM_NAMES, VM_NAMES]).encode(),
    "a-string": b'"VM;iaasvmcontainerv2;rg;vm"',
    "unknown-field": json.dumps({**VM_NAMES, "vmName": "x"}).encode(),
    "missing-names": json.dumps({"vaultName": "v"}).encode(),
    "names-and-id": json.dumps({**VM_NAMES, "protectedItemId": "/subscriptions/x"}).encode(),
    "other-subscription": json.dumps({**VM_NAMES, "subscriptionId": "11111111-2222-3333-4444-555555555555"}).encode(),
    "path-in-name": json.dumps({**VM_NAMES, "protectedItemName": "VM;iaasvmcontainerv2;rg;../../x"}).encode(),
    "bad-expiry": json.dumps({**VM_NAMES, "properties": {"recoveryPointExpiryTimeInUTC": "soon"}}).encode(),
    "expiry-in-the-past": json.dumps({**VM_NAMES, "retentionDays": 0}).encode(),
    "bad-correlation-id": json.dumps({**VM_NAMES, "correlationId": "has space"}).encode(),
    "crlf-correlation-id": json.dumps({**VM_NAMES, "correlationId": "a\r\nX-Evil: 1"}).encode(),
    "deep": ('{"properties": ' + '{"a":' * 40 + "1" + "}" * 41).encode(),
    "nan": b'{"retentionDays": NaN}',
    "not-utf8": b'{"vaultName": "\xff\xfe"}',
}


def queue_error(body: bytes, settings: dict[str, str]) -> dict[str, Any]:
    """The error of the Rejected result trigger_backup writes for the same body."""
    door = FrontDoor(settings=settings)
    out = OutCapture()
    message = queue_message(body, message_id="q-1", dequeue_count=1, insertion_time=door.app.clock())
    with runtime.override(door.services):
        trigger_backup.main(message, out)
    (result,) = (json.loads(text) for text in out.values)
    assert result["status"] == "Rejected"
    error: dict[str, Any] = result["error"]
    return error


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_answers_400_with_the_error_the_queue_would_reject_it_with(case: str) -> None:
    door = FrontDoor(settings=ALLOWED)
    body = BAD_BODIES[case]

    answer = door.post(body)

    assert answer.status == 400, answer.text
    assert answer.json == {"status": "Rejected", "error": queue_error(body, ALLOWED)}
    assert door.app.sender.messages == [], "nothing is queued"
    assert door.store.keys() == [], "nothing is recorded"
    assert door.app.transport.sent == [], "nothing is sent to ARM"
    assert "location" not in answer.headers


def test_a_key_reused_for_another_item_answers_409_with_the_queues_key_reused_error() -> None:
    door = FrontDoor()
    script_success(door.app.transport)
    door.post({**VM_NAMES, "correlationId": "shared-key"})
    other = {**VM_NAMES, "containerName": "IaasVMContainer;iaasvmcontainerv2;rg;other",
             "protectedItemName": "VM;iaasvmcontainerv2;rg;other", "correlationId": "shared-key"}

    answer = door.post(other)
    door.app.sender.messages.clear()
    door.app.sender.send(door.app.settings.requests_queue, json.dumps(other))
    door.run_queues()

    assert answer.status == 409
    (queue_result,) = (json.loads(text) for text in door.results)
    assert queue_result["error"]["code"] == "KeyReused"
    assert answer.json == {"status": "Rejected", "error": queue_result["error"]}


def test_a_body_over_64_kib_answers_413_unread() -> None:
    door = FrontDoor()
    document = json.dumps({**VM_NAMES, "correlationId": "big"})
    padded = document[:-1] + ', "pad": "' + "x" * (MAX_BODY_BYTES - len(document) - 10) + '"}'

    at_limit = door.post(padded.encode()[:MAX_BODY_BYTES])
    over = door.post(padded.encode()[:MAX_BODY_BYTES] + b" ")

    assert at_limit.status == 400, "at the limit the body is read (and refused for what it says)"
    assert over.status == 413
    assert over.json["error"]["code"] == "PayloadTooLarge"
    assert door.app.sender.messages == []


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
    "application/json; charset=iso-8859-1", "application/jsonp", "json",
])
def test_a_content_type_that_is_not_json_in_utf8_answers_415(content_type: str) -> None:
    door = FrontDoor()

    answer = door.post({**VM_NAMES}, headers={"Content-Type": content_type})

    assert answer.status == 415
    assert answer.json["error"]["target"] == "Content-Type"
    assert door.app.sender.messages == []


@pytest.mark.parametrize("content_type", [
    "application/json", "Application/JSON; charset=UTF-8", 'application/json; charset="utf-8"', "text/json",
    "application/cloudevents+json", None,
])
def test_json_content_types_and_none_at_all_are_read(content_type: str | None) -> None:
    door = FrontDoor()

    answer = door.post({**VM_NAMES}, headers={} if content_type is None else {"Content-Type": content_type})

    assert answer.status == 202


def test_an_unknown_key_answers_404() -> None:
    door = FrontDoor()

    by_path, by_query = door.follow(f"{COLLECTION}/never-posted"), door.follow(f"{COLLECTION}?key=never%2Fposted")

    assert (by_path.status, by_query.status) == (404, 404)
    assert by_path.json["error"]["code"] == "NotFound"


@pytest.mark.parametrize(("url", "route_id"), [
    (COLLECTION, None), (f"{COLLECTION}?key=", None), (f"{COLLECTION}/has%20space", "has space"),
    (f"{COLLECTION}/a?key=b", "a"), (f"{COLLECTION}?key={'k' * 201}", None),
])
def test_a_get_without_one_well_formed_key_answers_400(url: str, route_id: str | None) -> None:
    door = FrontDoor()

    answer = door.call("GET", url, route_id=route_id)

    assert answer.status == 400
    assert answer.json["error"]["target"] == "key"


@pytest.mark.parametrize(("method", "route_id", "allow"), [
    ("PUT", None, "GET, POST"), ("DELETE", "k", "GET, POST"), ("POST", "k", "GET"),
])
def test_other_methods_answer_405_with_allow(method: str, route_id: str | None, allow: str) -> None:
    door = FrontDoor()

    answer = door.call(method, f"{COLLECTION}/k" if route_id else COLLECTION, body=b"{}", headers=JSON,
                       route_id=route_id)

    assert answer.status == 405
    assert answer.headers["allow"] == allow


def test_with_the_ledger_off_the_front_door_answers_501_naming_the_setting() -> None:
    door = FrontDoor(ledger=False, settings={"BACKUP_LEDGER_TABLE": ""})

    posted, polled = door.post({**VM_NAMES}), door.follow(f"{COLLECTION}/k")

    assert (posted.status, polled.status) == (501, 501)
    assert "BACKUP_LEDGER_TABLE" in posted.json["error"]["message"]
    assert "retry-after" not in posted.headers
    assert door.app.sender.messages == []


class DownStore(MemoryStore):
    """A ledger whose storage is down, or broken in a way nobody planned for."""

    def __init__(self, clock: Clock, failure: Exception) -> None:
        super().__init__(clock)
        self.failure: Exception | None = failure

    def read(self, key: RecordKey) -> Stored | None:
        if self.failure is not None:
            raise self.failure
        return super().read(key)

    def create(self, key: RecordKey, fields: Fields) -> str:
        if self.failure is not None:
            raise self.failure
        return super().create(key, fields)


def test_an_unreachable_ledger_answers_503_with_retry_after_and_no_internals() -> None:
    clock = Clock()
    door = FrontDoor(store=DownStore(clock, LedgerUnavailable(f"create failed: 503 ServerBusy ({SECRET})")))

    posted, polled = door.post({**VM_NAMES}), door.follow(f"{COLLECTION}/k")

    for answer in (posted, polled):
        assert answer.status == 503
        assert int(answer.headers["retry-after"]) >= 5
        assert SECRET not in answer.text and "AccountKey" not in answer.text
        assert answer.json["error"]["code"] == "ServiceUnavailable"
    assert door.app.sender.messages == []


class DownSender:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[tuple[str, str]] = []

    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None:
        if self.down:
            raise QueueUnavailable(f"cannot send to queue {queue_name!r}: {SECRET}")
        self.sent.append((queue_name, text))


def test_an_unreachable_queue_answers_503_and_the_same_post_later_queues_the_request() -> None:
    door = FrontDoor()
    sender = DownSender()
    door.services = replace(door.services, sender=sender)

    failed = door.post({**VM_NAMES, "correlationId": "q-down"})
    sender.down = False
    retried = door.post({**VM_NAMES, "correlationId": "q-down"})

    assert failed.status == 503 and SECRET not in failed.text
    assert retried.status == 202
    assert [json.loads(text)["correlationId"] for _, text in sender.sent] == ["q-down"]


def test_an_unexpected_failure_answers_500_without_a_stack_trace() -> None:
    clock = Clock()
    door = FrontDoor(store=DownStore(clock, RuntimeError(f"boom in {SECRET}")))

    answer = door.post({**VM_NAMES})

    assert answer.status == 500
    assert answer.json["error"]["code"] == "InternalError"
    assert "Traceback" not in answer.text and "boom" not in answer.text and SECRET not in answer.text
