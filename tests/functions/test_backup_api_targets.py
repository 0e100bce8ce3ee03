"""backup_api with requests by resource id and ARM events: resolved at the POST, recorded under their item.

The ledger records a request by its protected item, so the front door resolves a request by
resource id before it records it (Backup Status - Get, reads only), then queues it as posted;
trigger_backup resolves it again, to the same item, and takes the record over.
"""

from __future__ import annotations

import json
from typing import Any

import trigger_backup
from shared import runtime
from tests.fakes import Reply
from tests.functions.harness import POST_BACKUP, VM_NAMES, OutCapture, queue_message, script_success
from tests.functions.http_harness import COLLECTION, FrontDoor
from tests.functions.test_targeting import BACKUP_STATUS, STATUS_BODY, VM_GET, VM_ID, arm_event

BY_ID = {"resourceId": VM_ID, "location": "southeastasia"}
NOT_PROTECTED = {"protectionStatus": "NotProtected", "errorCode": None, "errorMessage": None}


def resolving(door: FrontDoor, *status_replies: Reply) -> FrontDoor:
    script_success(door.app.transport).on("POST", BACKUP_STATUS, *(status_replies or (Reply(200, STATUS_BODY),)))
    door.app.transport.on("GET", VM_GET, Reply(200, {"id": VM_ID, "location": "southeastasia"}))
    return door


def finish(door: FrontDoor, location: str) -> Any:
    door.run_queues()
    return door.follow(location)


def test_a_request_by_resource_id_is_resolved_recorded_under_its_item_and_queued_as_posted() -> None:
    door = resolving(FrontDoor())

    posted = door.post({**BY_ID, "correlationId": "http-by-id"})

    assert posted.status == 202
    assert posted.location == f"{COLLECTION}/http-by-id"
    record = door.record("http-by-id")
    assert record is not None and record.item_id.endswith(f"/protectedItems/{VM_NAMES['protectedItemName']}")
    assert posted.json["protectedItemId"] == record.item_id
    (queued,) = (json.loads(text) for text in door.queued_requests)
    assert queued["resourceId"] == VM_ID and queued["correlationId"] == "http-by-id"
    assert "recoveryPointExpiryTimeInUTC" in queued["properties"], "the default expiry is fixed at the POST"
    final = finish(door, posted.location)
    assert final.status == 200
    assert [final.text] == door.results
    assert final.json["status"] == "Succeeded"
    assert final.json["resourceId"].lower() == VM_ID.lower(), "the result names the resource, as the queue's does"
    assert len(door.app.transport.calls("POST", POST_BACKUP)) == 1


def test_the_same_request_by_resource_id_again_is_resolved_again_and_starts_nothing() -> None:
    door = resolving(FrontDoor())
    first = door.post({**BY_ID, "correlationId": "again-by-id"})
    door.step()  # trigger_backup took it over

    again = door.post({**BY_ID, "correlationId": "again-by-id"})

    assert (again.status, again.location) == (202, first.location)
    assert door.queued_requests == []
    assert finish(door, first.location).status == 200
    assert len(door.app.transport.calls("POST", POST_BACKUP)) == 1
    assert len(door.results) == 1


def test_a_vm_no_vault_protects_ends_at_the_post_failed_recorded_and_sent_once() -> None:
    door = resolving(FrontDoor(), Reply(200, NOT_PROTECTED))

    posted = door.post({**BY_ID, "correlationId": "lonely-vm"})
    again = door.post({**BY_ID, "correlationId": "lonely-vm"})
    final = door.follow(posted.location)
    door.run_queues()

    assert (posted.status, again.status, again.location) == (202, 202, posted.location)
    assert final.status == 200
    assert final.json["status"] == "Failed" and final.json["error"]["code"] == "NotProtected"
    assert door.results == [final.text], "one result, as the queue would send it"
    assert door.queued_requests == [] and door.app.transport.calls("POST", POST_BACKUP) == []
    record = door.record("lonely-vm")
    assert record is not None and record.result_sent


def test_a_vault_outside_the_allow_list_answers_400_with_the_queues_error() -> None:
    settings = {"ALLOWED_VAULTS": "some-other-vault"}
    door = resolving(FrontDoor(settings=settings))
    queue = resolving(FrontDoor(settings=settings))
    body = json.dumps({**BY_ID, "correlationId": "far-vault"})

    answer = door.post(body.encode())
    out = OutCapture()
    with runtime.override(queue.services):
        trigger_backup.main(queue_message(body, message_id="q", dequeue_count=1, insertion_time=queue.app.clock()),
                             out)
    rejected = [json.loads(text) for text in out.values]

    assert answer.status == 400
    assert [result["status"] for result in rejected] == ["Rejected"]
    assert answer.json == {"status": "Rejected", "error": rejected[0]["error"]}
    assert door.store.keys() == [] and door.queued_requests == []


def test_arm_unreachable_while_resolving_answers_503_and_records_nothing() -> None:
    door = resolving(FrontDoor(), Reply(503, headers={"Retry-After": "7"}))

    answer = door.post({**BY_ID, "correlationId": "arm-down"})

    assert answer.status == 503
    assert int(answer.headers["retry-after"]) >= 7
    assert door.store.keys() == [] and door.queued_requests == []


def test_an_arm_event_posted_is_a_backup_keyed_by_its_event_id_and_an_ignored_one_is_400() -> None:
    door = resolving(FrontDoor())
    deleted = arm_event(id="ce-delete", data={**arm_event()["data"],
                                             "operationName": "Microsoft.Compute/virtualMachines/delete"})

    posted = door.post(arm_event())
    ignored = door.post(deleted)

    assert posted.status == 202 and posted.location == f"{COLLECTION}/ce-vm-write-1"
    assert ignored.status == 400 and ignored.json["error"]["code"] == "EventIgnored"
    assert finish(door, posted.location).json["correlationId"] == "ce-vm-write-1"
