"""backup_api as the worker calls it: POST, then GET the Location until the result, over an in-memory ledger.

Each test drives ``backup_api.main`` with ``azure.functions.HttpRequest`` objects and plays the
queues behind it (trigger_backup, poll_status) with the official REST examples as ARM's answers.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from shared.frontdoor_flow import ACCEPTED_PHASE
from tests.fakes import FAKE_TOKEN
from tests.functions.harness import (
    JOB_GET,
    OPERATION_STATUS,
    POST_BACKUP,
    VM_NAMES,
    accepted,
    job,
    operation,
    script_success,
)
from tests.functions.http_harness import BASE, COLLECTION, JSON, FrontDoor
from tests.unit.builders import ITEMS

FILE_SHARE = {**VM_NAMES, "containerName": ITEMS["fileshare"][0], "protectedItemName": ITEMS["fileshare"][1]}
SQL = {**VM_NAMES, "containerName": ITEMS["sql"][0], "protectedItemName": ITEMS["sql"][1],
       "properties": {"backupType": "Full"}}


def request(correlation_id: str | None = "http-1", **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {**VM_NAMES, **fields}
    if correlation_id is not None:
        document["correlationId"] = correlation_id
    return document


def poll_to_the_end(door: FrontDoor, location: str, limit: int = 20) -> Any:
    """What a Logic Apps HTTP action does, with the queues run (and the clock moved) between looks."""
    for _ in range(limit):
        answer = door.follow(location)
        if answer.status != 202:
            door.run_queues()  # the result message sent with the ledger's last write
            return answer
        assert answer.retry_after >= 5
        location = answer.location
        door.step()
    raise AssertionError("still 202 after all the looks")


@pytest.mark.parametrize("document", [request(), {**FILE_SHARE, "correlationId": "http-1"},
                                      {**SQL, "correlationId": "http-1"}], ids=["vm", "fileshare", "sql"])
def test_post_then_get_until_200_whose_body_is_the_result_on_the_results_queue(document: dict[str, Any]) -> None:
    door = FrontDoor()
    script_success(door.app.transport)

    posted = door.post(document)

    assert posted.status == 202
    assert posted.location == f"{COLLECTION}/http-1"
    assert posted.retry_after == 5
    assert posted.json["status"] == "Running" and posted.json["phase"] == ACCEPTED_PHASE
    final = poll_to_the_end(door, posted.location)
    assert final.status == 200
    assert door.results == [final.text], "the 200 body is the results queue's document, byte for byte"
    assert final.json["status"] == "Succeeded"
    assert final.json["correlationId"] == "http-1"
    assert door.arm_posts == 1


def test_post_records_the_request_at_step_0_without_holder_and_queues_it_under_its_key() -> None:
    door = FrontDoor()

    door.post(request())

    record = door.record("http-1")
    assert record is not None
    assert (record.step, record.written_by, record.holder, record.phase) == (0, -1, None, ACCEPTED_PHASE)
    (queued,) = door.queued_requests
    assert json.loads(queued)["correlationId"] == "http-1"
    assert door.arm_posts == 0, "the front door itself never calls ARM"


def test_the_queued_request_carries_the_expiry_fixed_at_the_post() -> None:
    door = FrontDoor()
    script_success(door.app.transport)

    door.post(request(retentionDays=14))
    (queued,) = [json.loads(text) for text in door.queued_requests]
    door.app.clock.advance(3 * 86400)  # the message waited three days in the queue
    door.step()

    assert "retentionDays" not in queued
    assert queued["properties"]["recoveryPointExpiryTimeInUTC"] == "2026-12-10T12:00:00Z"
    (post,) = door.app.transport.calls("POST", POST_BACKUP)
    assert post.body["properties"]["recoveryPointExpiryTimeInUTC"] == "2026-12-10T12:00:00Z"


def test_without_correlation_id_the_key_is_generated_and_written_into_the_request() -> None:
    door = FrontDoor()

    posted = door.post(request(correlation_id=None))

    key = posted.location.rsplit("/", 1)[1]
    assert len(key) == 36 and key.count("-") == 4, key
    assert json.loads(door.queued_requests[0])["correlationId"] == key
    assert door.follow(posted.location).json["correlationId"] == key


def test_an_event_grid_event_posted_is_keyed_by_its_event_id() -> None:
    door = FrontDoor()
    event = {"id": "eg-77", "eventType": "Contoso.Backup", "subject": "s", "eventTime": "2026-11-26T12:00:00Z",
             "dataVersion": "1", "data": {**VM_NAMES}}

    posted = door.post(event)

    assert posted.status == 202
    assert posted.location == f"{COLLECTION}/eg-77"


def test_the_same_key_again_answers_the_same_location_and_starts_nothing() -> None:
    door = FrontDoor()
    script_success(door.app.transport)
    first = door.post(request())
    door.step()  # trigger_backup took the request over and posted

    again = door.post(request())

    assert (again.status, again.location) == (202, first.location)
    assert door.queued_requests == [], "taken over already: nothing is queued again"
    door.run_queues()
    assert door.arm_posts == 1
    assert len(door.results) == 1


def test_the_same_key_twice_before_delivery_queues_it_again_and_still_posts_once() -> None:
    door = FrontDoor()
    script_success(door.app.transport)
    first, second = door.post(request()), door.post(request())

    assert second.location == first.location
    assert len(door.queued_requests) == 2, "the first send may have failed: the second sends again"
    door.run_queues()
    assert door.arm_posts == 1, "the ledger lets one copy carry the request"
    assert len(door.results) == 1


def test_the_same_key_after_the_end_answers_202_and_its_location_gives_the_result() -> None:
    door = FrontDoor()
    script_success(door.app.transport)
    first = door.post(request())
    door.run_queues()

    again = door.post(request())

    assert (again.status, again.location) == (202, first.location)
    assert door.follow(again.location).text == door.results[0]
    assert door.arm_posts == 1


def test_a_failed_job_ends_in_200_with_the_failed_result() -> None:
    door = FrontDoor()
    door.app.transport.on("POST", POST_BACKUP, accepted()).on("GET", OPERATION_STATUS, operation("Succeeded")).on(
        "GET", JOB_GET, job("Failed", errorDetails=[{"errorCode": 1, "errorString": "VM is off",
                                                        "errorTitle": "UserErrorVmNotInDesirableState"}]))

    final = poll_to_the_end(door, door.post(request()).location)

    assert final.status == 200
    assert final.json["status"] == "Failed"
    assert final.text == door.results[0]


def test_while_running_get_answers_202_with_the_state_and_retry_after_from_the_next_look() -> None:
    door = FrontDoor()
    script_success(door.app.transport)
    location = door.post(request()).location
    door.step()  # POSTed: the operation is looked at in 60 s (the example's Retry-After)

    running = door.follow(location)
    door.app.clock.advance(50)
    later = door.follow(location)
    door.app.clock.advance(20)
    overdue = door.follow(location)

    assert running.status == 202
    assert running.json["phase"] == "operation"
    assert running.json["nextLookAt"] == "2026-11-26T12:01:00Z"
    assert running.location == location
    assert (running.retry_after, later.retry_after, overdue.retry_after) == (60, 10, 5)


@pytest.mark.parametrize("key", ["a/b;c%d:e", "with?query#frag", "..", "a+b=c&d", "%2F", "plain.key_1~x"])
def test_keys_with_reserved_characters_round_trip_through_the_location(key: str) -> None:
    door = FrontDoor()
    script_success(door.app.transport)

    posted = door.post(request(correlation_id=key))

    if key == "plain.key_1~x":
        assert posted.location == f"{COLLECTION}/{key}"
    else:
        assert posted.location == f"{COLLECTION}?key={quote(key, safe='')}", "the real host 404s on %2F in a path"
    final = poll_to_the_end(door, posted.location)
    assert final.status == 200
    assert final.json["correlationId"] == key


def test_a_key_with_reserved_characters_is_also_found_in_one_encoded_path_segment() -> None:
    door = FrontDoor()
    key = "a/b;c%d:e"
    door.post(request(correlation_id=key))

    by_path = door.follow(f"{COLLECTION}/{quote(key, safe='')}")

    assert by_path.status == 202
    assert by_path.json["correlationId"] == key
    assert by_path.location == f"{COLLECTION}?key={quote(key, safe='')}"


def test_the_function_key_given_in_the_query_is_carried_into_the_location() -> None:
    door = FrontDoor()

    posted = door.post(request(), url=f"{COLLECTION}?code=abc%2Fdef%3D%3D")
    polled = door.follow(posted.location)

    assert posted.location == f"{COLLECTION}/http-1?code=abc%2Fdef%3D%3D"
    assert polled.location == posted.location


def test_a_function_key_sent_as_a_header_is_never_copied_into_an_answer() -> None:
    door = FrontDoor()
    secret = "header-key-SECRET-123"

    posted = door.post(request(), headers={**JSON, "x-functions-key": secret})
    polled = door.follow(posted.location, headers={"x-functions-key": secret})

    for answer in (posted, polled):
        assert secret not in answer.text and secret not in json.dumps(answer.headers)
    assert posted.location == f"{COLLECTION}/http-1"


@pytest.mark.parametrize(("forwarded", "scheme"), [("https", "https"), ("https, http", "https"), ("HTTP", "http"),
                                                   ("gopher", "http"), ("", "http")])
def test_the_scheme_follows_x_forwarded_proto_of_the_front_end(forwarded: str, scheme: str) -> None:
    door = FrontDoor()
    plain = BASE.replace("https://", "http://") + "/api/backups"

    posted = door.post(request(), url=plain, headers={**JSON, "X-Forwarded-Proto": forwarded})

    assert posted.location == f"{scheme}://backup-func.azurewebsites.net/api/backups/http-1"


def test_the_location_keeps_the_path_the_request_came_to() -> None:
    door = FrontDoor()

    posted = door.post(request(), url=f"{BASE}/API/Backups/")
    polled = door.follow(posted.location)

    assert posted.location == f"{BASE}/API/Backups/http-1"
    assert polled.location == posted.location


def test_every_answer_is_json_without_the_arm_token() -> None:
    door = FrontDoor()
    script_success(door.app.transport)

    poll_to_the_end(door, door.post(request()).location)

    assert door.answers and all(FAKE_TOKEN not in answer.text for answer in door.answers)
    assert all(answer.headers["cache-control"] == "no-store" for answer in door.answers)

