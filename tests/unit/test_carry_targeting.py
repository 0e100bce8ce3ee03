"""Requests by resource id over the request ledger: resolved outside it, then carried exactly once."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from shared.workflow import Delivery, handle_follow_up
from tests.fakes import FakeTransport, Reply
from tests.unit.builders import NOW, backup_status_body, by_resource, item_id, names, vm_id
from tests.unit.test_carry import Message, World
from tests.unit.test_workflow import JOB_ID, job_entry
from tests.unit.test_workflow_targeting import NOT_PROTECTED, script


class ResolvingWorld(World):
    """A World whose follow-ups may end in a result for the output binding: one that never resolved."""

    def _follow_once(self, message: Message) -> None:
        delivery = Delivery(message.id, message.dequeue_count, NOW)
        outcome = handle_follow_up(message.text.encode(), delivery, self.services)
        if outcome is not None:
            self.queues.results.append(outcome)

    @property
    def status_calls(self) -> int:
        return len(self.transport.calls("POST", r"/backupStatus\?"))


def body_of(**changes: Any) -> bytes:
    return json.dumps(by_resource(**{"location": "westeurope", "correlationId": "vm-1", **changes})).encode()


def world(transport: FakeTransport | None = None, **settings: str) -> ResolvingWorld:
    return ResolvingWorld(transport or script(), **settings)


def test_a_request_by_resource_id_is_recorded_and_ends_in_one_result() -> None:
    w = world()

    w.request(body_of())
    w.drain()

    [result] = w.results
    assert (result["status"], result["resourceId"], result["protectedItemId"]) == ("Succeeded", vm_id(),
                                                                                  item_id("vm"))
    record = w.services.ledger.request("vm-1")  # type: ignore[union-attr]
    assert record is not None and record.result_sent and record.item_id == item_id("vm")
    assert (w.posts, w.status_calls) == (2, 1)  # the trigger and Backup Status - Get


def test_a_producer_duplicate_resolves_again_but_starts_nothing() -> None:
    w = world()

    w.request(body_of(), "msg-1")
    w.request(body_of(), "msg-2")
    w.drain()

    assert len(w.transport.calls("POST", r"/backup\?")) == 1
    assert w.status_calls == 2
    assert [result["correlationId"] for result in w.results] == ["vm-1"]


def test_one_key_by_names_and_by_resource_id_for_the_same_item_is_one_request() -> None:
    w = world()

    w.request(json.dumps(names(correlationId="vm-1")).encode(), "msg-1")
    w.request(body_of(), "msg-2")
    w.drain()

    assert len(w.transport.calls("POST", r"/backup\?")) == 1
    assert len(w.results) == 1


def test_a_key_reused_for_another_vms_item_is_rejected_with_the_producers_text() -> None:
    other = {"containerName": "IaasVMContainer;iaasvmcontainerv2;testrg;other",
             "protectedItemName": "VM;iaasvmcontainerv2;testrg;other"}
    w = world()
    w.request(json.dumps(names(correlationId="vm-1", **other)).encode(), "msg-1")
    body = body_of()

    w.request(body, "msg-2")

    reused = [result for result in w.results if result["status"] == "Rejected"]
    assert [result["error"]["code"] for result in reused] == ["KeyReused"]
    assert reused[0]["rawMessage"] == body.decode()
    assert len(w.transport.calls("POST", r"/backup\?")) == 1


def test_a_resolution_retried_from_a_follow_up_is_carried_once_even_when_duplicated() -> None:
    transport = script(status=[Reply(503, headers={"Retry-After": "5"}), Reply(200, body=backup_status_body())])
    w = world(transport)
    w.request(body_of())
    [resolving] = w.queues.status
    assert json.loads(resolving.text)["phase"] == "resolve"
    assert w.services.ledger.request("vm-1") is None  # type: ignore[union-attr]  # nothing recorded yet
    w.queues.status.append(Message("copy", resolving.text))

    w.drain()

    assert len(w.transport.calls("POST", r"/backup\?")) == 1
    assert [result["status"] for result in w.results] == ["Succeeded"]


@pytest.mark.parametrize(("write", "after_write"), [(3, False), (3, True)])
def test_a_host_killed_around_the_post_never_posts_twice(write: int, after_write: bool) -> None:
    # Writes 1 and 2 create the record (holding the baton) and claim the item; write 3 records the POST.
    started = NOW + timedelta(seconds=1)
    w = world(script(job_lists=[Reply(200, body={"value": [job_entry(JOB_ID, started)]})]))
    w.store.die_at_write, w.store.die_after_write = write, after_write

    w.request_until_done(body_of())
    w.drain()

    assert len(w.transport.calls("POST", r"/backup\?")) == 1
    [result] = w.results
    assert (result["status"], result["jobId"]) == ("Succeeded", JOB_ID)


def test_copies_at_once_resolve_each_and_post_once() -> None:
    w = world()
    threads = [threading.Thread(target=w.request, args=(body_of(), f"msg-{n}")) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    w.drain()

    assert len(w.transport.calls("POST", r"/backup\?")) == 1
    assert len(w.results) == 1


def test_a_request_that_never_resolves_leaves_no_record() -> None:
    w = world(script(status=[Reply(200, body=NOT_PROTECTED)]))

    w.request(body_of())

    [result] = w.results
    assert (result["status"], result["error"]["code"]) == ("Failed", "NotProtected")
    assert w.services.ledger.request("vm-1") is None  # type: ignore[union-attr]
    assert w.queues.status == []
