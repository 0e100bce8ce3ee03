"""shared.carry through shared.workflow: exactly once over an in-memory ledger, a fake ARM and a fake queue.

A ``World`` plays the queues: it delivers messages (again, when an invocation died), and can
make an invocation die at a chosen send or ledger write, as a killed host would.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from shared.ledger import Fingerprint, Ledger, RequestRecord
from shared.ledger_store import Fields, LedgerUnavailable, MemoryStore, RecordKey, Stored
from shared.messages import BackupRequest
from shared.workflow import Delivery, Services, handle_follow_up, handle_request
from tests.fakes import Clock, FakeTransport, Reply
from tests.unit.builders import NOW, arm_client, backup_request, make_settings, names, result_of
from tests.unit.test_workflow import JOB_ID, accepted, ended_job, job_entry, op_reply, script

STATUS, RESULTS = "backup-status", "backup-results"


class Died(Exception):
    """The invocation's host was killed here."""


@dataclass
class Message:
    id: str
    text: str
    dequeue_count: int = 0


class FaultyStore(MemoryStore):
    """A MemoryStore whose n-th write (create or replace, from 1) can kill the invocation after or before writing."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.die_at_write: int | None = None
        self.die_after_write = True
        self.writes = 0
        self.down = False

    def read(self, key: RecordKey) -> Stored | None:
        if self.down:
            raise LedgerUnavailable("connection refused")
        return super().read(key)

    def create(self, key: RecordKey, fields: Fields) -> str:
        return self._write("create", lambda: super(FaultyStore, self).create(key, fields))

    def replace(self, key: RecordKey, fields: Fields, etag: str, *, patient: bool = False) -> str:
        return self._write("replace", lambda: super(FaultyStore, self).replace(key, fields, etag, patient=patient))

    def _write(self, kind: str, write: Callable[[], str]) -> str:
        self.writes += 1
        if self.writes == self.die_at_write and not self.die_after_write:
            raise Died(f"before write {self.writes} ({kind})")
        etag = write()
        if self.writes == self.die_at_write:
            raise Died(f"after write {self.writes} ({kind})")
        return etag


@dataclass
class Queues:
    """The status and results queues; a send can be made to kill the invocation."""

    status: list[Message] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    die_at_send: int | None = None
    sends: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None:
        with self.lock:
            self.sends += 1
            if self.sends == self.die_at_send:
                raise Died(f"before send {self.sends}")
            if queue_name == RESULTS:
                self.results.append(text)
            else:
                self.status.append(Message(f"status-{self.sends}", text))


class World:
    def __init__(self, transport: FakeTransport, **settings: str) -> None:
        self.clock = Clock(NOW)
        self.store = FaultyStore(self.clock)
        self.queues = Queues()
        self.transport = transport
        self.settings = make_settings(**settings)
        self.services = Services(
            self.settings, arm_client(transport, settings=self.settings, clock=self.clock), self.queues, self.clock,
            random.Random(7), Ledger(self.store),
        )

    def request(self, body: bytes, message_id: str = "msg-1", *, dequeue_count: int = 1) -> None:
        outcome = handle_request(body, Delivery(message_id, dequeue_count, NOW), self.services)
        if outcome is not None:  # the binding's result: only a Rejected one with the ledger on
            self.queues.results.append(outcome)

    def request_until_done(self, body: bytes, message_id: str = "msg-1") -> None:
        """Deliver the request as the queue does: again after each invocation that died."""
        message = Message(message_id, body.decode())
        self._deliver_until_done(message, lambda m: self.request(m.text.encode(), m.id, dequeue_count=m.dequeue_count))

    def follow(self, message: Message) -> None:
        self._deliver_until_done(message, self._follow_once)

    def _follow_once(self, message: Message) -> None:
        delivery = Delivery(message.id, message.dequeue_count, NOW)
        outcome = handle_follow_up(message.text.encode(), delivery, self.services)
        assert outcome is None, "with the ledger on, results go out through the sender"

    def _deliver_until_done(self, message: Message, deliver: Callable[[Message], None]) -> None:
        for _ in range(10):
            message.dequeue_count += 1
            try:
                deliver(message)
                return
            except Died:
                self.queues.die_at_send = self.store.die_at_write = None  # the next host lives
        raise AssertionError("the message never completed")

    def drain(self, limit: int = 60) -> None:
        for _ in range(limit):
            if not self.queues.status:
                return
            message = self.queues.status.pop(0)
            self.clock.advance(300)
            self.follow(message)
        raise AssertionError("follow-ups never stopped")

    @property
    def results(self) -> list[dict[str, Any]]:
        return [result_of(text) for text in self.queues.results]

    @property
    def posts(self) -> int:
        return len(self.transport.calls("POST"))


def body_of(request: BackupRequest | None = None, **changes: Any) -> bytes:
    return json.dumps(names(**{"correlationId": "req-1", **changes})).encode()


def world(**settings: str) -> World:
    return World(script(backup_request(), job_lists=[Reply(200, body={"value": []})]), **settings)


# --- one request, delivered as queues deliver ----------------------------------------------------


def test_a_request_ends_in_one_result_kept_in_the_ledger_and_marked_sent() -> None:
    w = world()
    w.request_until_done(body_of())
    w.drain()

    [result] = w.results
    assert result["status"] == "Succeeded" and result["correlationId"] == "req-1"
    assert w.posts == 1
    record = w.services.ledger.request("req-1")  # type: ignore[union-attr]
    assert record is not None and record.result_sent and record.status == "Succeeded"
    assert json.loads(record.result or "") == result


def test_a_finished_request_delivered_again_sends_nothing() -> None:
    w = world()
    w.request_until_done(body_of())
    w.drain()
    calls = len(w.transport.sent)

    w.request(body_of(), "msg-1", dequeue_count=2)  # the queue's redelivery
    w.request(body_of(), "msg-2")  # the producer sent it again

    assert len(w.results) == 1
    assert len(w.transport.sent) == calls
    assert w.queues.status == []


def test_a_producer_duplicate_while_the_first_runs_starts_nothing() -> None:
    w = world()
    w.request(body_of(), "msg-1")
    w.request(body_of(), "msg-2")
    w.drain()

    assert w.posts == 1
    assert [r["correlationId"] for r in w.results] == ["req-1"]


def test_a_duplicated_follow_up_is_carried_once() -> None:
    w = world()
    w.request(body_of())
    [first] = w.queues.status
    w.queues.status.append(Message("copy", first.text))
    w.drain()

    assert len(w.results) == 1
    assert len(w.transport.calls("GET", r"/backupJobs/")) <= 2  # the copy may look once before it loses


@pytest.mark.parametrize(("write", "after_write"), [(3, False), (3, True)])
def test_a_host_killed_around_the_post_never_posts_twice(write: int, after_write: bool) -> None:
    # Write 1 creates the record holding the baton, write 2 claims the item, the POST goes out and
    # write 3 records its answer. Dying before write 3, the POST is out and unrecorded: the
    # redelivery must find the job, not post again.
    started = NOW + timedelta(seconds=1)
    transport = script(backup_request(), job_lists=[Reply(200, body={"value": [job_entry(JOB_ID, started)]})])
    w = World(transport)
    w.store.die_at_write, w.store.die_after_write = write, after_write
    w.request_until_done(body_of())
    w.drain()

    assert w.posts == 1
    [result] = w.results
    assert result["status"] == "Succeeded" and result["jobId"] == JOB_ID


@pytest.mark.parametrize(("write", "after_write"), [(1, False), (1, True), (2, False), (2, True)])
def test_a_host_killed_before_the_post_went_out_posts_on_redelivery(write: int, after_write: bool) -> None:
    w = world()  # Azure lists no job: the redelivery's look finds nothing, so it posts
    w.store.die_at_write, w.store.die_after_write = write, after_write
    w.request_until_done(body_of())
    w.drain()

    assert w.posts == 1
    assert len(w.results) == 1


def test_a_host_killed_between_recording_and_sending_a_follow_up_sends_it_on_redelivery() -> None:
    w = world()
    w.queues.die_at_send = 1
    w.request_until_done(body_of())
    w.drain()

    assert w.posts == 1
    assert [r["status"] for r in w.results] == ["Succeeded"]


def test_a_host_killed_between_recording_and_sending_the_result_sends_it_on_redelivery() -> None:
    w = world()
    w.request_until_done(body_of())
    while len(w.queues.status) == 1 and json.loads(w.queues.status[0].text)["phase"] != "job":
        w.follow(w.queues.status.pop(0))
    w.queues.die_at_send = w.queues.sends + 1  # the job is done: the next send is the result
    w.drain()

    assert [r["status"] for r in w.results] == ["Succeeded"]


def test_the_one_window_left_a_host_killed_after_sending_the_result_before_marking_it() -> None:
    w = world()
    w.request_until_done(body_of())
    while json.loads(w.queues.status[0].text)["phase"] != "job":
        w.follow(w.queues.status.pop(0))
    # Replace +1 records the result, then it is sent; the host dies before replace +2 marks it sent.
    w.store.die_at_write, w.store.die_after_write = w.store.writes + 2, False
    w.drain()

    # Measured, not hidden: the redelivery cannot know the result went out, and sends it again.
    assert len(w.results) == 2 and w.results[0] == w.results[1]
    assert w.posts == 1


def record_as_the_front_door_does(w: World) -> None:
    """Step 0, no holder: the first request message delivered for it takes it over."""
    request = backup_request(correlationId="req-1")
    assert w.services.ledger is not None
    w.services.ledger.create_request(RequestRecord(
        key="req-1", item_id=request.item.id, fingerprint=Fingerprint.of(request), step=0, written_by=-1,
        holder=None, phase="accepted", created_at=NOW,
    ))
    w.store.writes = 0


@pytest.mark.parametrize(("write", "after_write"), [(1, False), (2, False), (2, True), (3, False), (3, True)])
def test_a_request_the_front_door_recorded_killed_before_its_post_posts_once(write: int, after_write: bool) -> None:
    # Write 1 is the create that finds the record, 2 takes it over holding the baton, 3 claims the item.
    w = world()
    record_as_the_front_door_does(w)
    w.store.die_at_write, w.store.die_after_write = write, after_write
    w.request_until_done(body_of())
    w.drain()

    assert w.posts == 1
    assert [r["status"] for r in w.results] == ["Succeeded"]


@pytest.mark.parametrize("after_write", [False, True])
def test_a_request_the_front_door_recorded_killed_after_its_post_never_posts_twice(after_write: bool) -> None:
    started = NOW + timedelta(seconds=1)
    w = World(script(backup_request(), job_lists=[Reply(200, body={"value": [job_entry(JOB_ID, started)]})]))
    record_as_the_front_door_does(w)
    w.store.die_at_write, w.store.die_after_write = 4, after_write  # write 4 records the POST's answer
    w.request_until_done(body_of())
    w.drain()

    assert w.posts == 1
    [result] = w.results
    assert (result["status"], result["jobId"]) == ("Succeeded", JOB_ID)


def swept_just_now(w: World) -> None:
    """Run the retention sweep now, so that the invocation measured next does not (once per 10 min)."""
    assert w.services.ledger is not None
    w.services.ledger.sweep_if_due(w.clock(), w.settings.ledger_retention_days)


def test_a_request_costs_the_protocols_minimum_of_four_transactions_to_trigger() -> None:
    # The key's record (created holding the baton, no read first), the item's read and claim,
    # the POST's answer: see README "Cost per backup".
    w = world()
    swept_just_now(w)
    before = w.store.transactions
    w.request(body_of())
    assert (w.store.transactions - before, w.posts) == (4, 1)


def test_a_request_the_front_door_recorded_costs_two_more_to_trigger() -> None:
    # The create that finds the key taken, and its read; the takeover then holds the baton too.
    w = world()
    record_as_the_front_door_does(w)
    swept_just_now(w)
    before = w.store.transactions
    w.request(body_of())
    assert (w.store.transactions - before, w.posts) == (6, 1)


def test_copies_delivered_to_several_instances_at_once_post_once() -> None:
    w = world()
    threads = [threading.Thread(target=w.request, args=(body_of(), f"msg-{n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    w.drain()

    assert w.posts == 1
    assert len(w.results) == 1


def test_a_follow_up_in_flight_when_the_ledger_came_is_adopted() -> None:
    off = World(script(backup_request()), BACKUP_LEDGER_TABLE="")
    off.services = Services(off.settings, off.services.arm, off.queues, off.clock, random.Random(7), None)
    off.request(body_of())
    [in_flight] = off.queues.status

    w = world()
    w.follow(in_flight)
    w.drain()

    assert [r["status"] for r in w.results] == ["Succeeded"]
    assert w.posts == 0  # the POST was the ledger-less app's


# --- two requests for one item ----------------------------------------------------------------


def two_requests(second_changes: dict[str, Any]) -> World:
    request = backup_request()
    transport = script(request, post=[accepted(request)], job_lists=[Reply(200, body={"value": []})])
    w = World(transport)
    w.request(body_of())
    w.request(body_of(correlationId="req-2", **second_changes), "msg-2")
    w.drain()
    return w


def test_a_second_request_with_the_same_properties_joins_the_running_backup() -> None:
    w = two_requests({})

    assert w.posts == 1
    first, second = sorted(w.results, key=lambda r: r["correlationId"])
    assert first["status"] == second["status"] == "Succeeded"
    assert second["jobId"] == first["jobId"] == JOB_ID
    assert second["joined"] == "req-1"
    assert "joined" not in first


def test_expiries_within_a_day_count_as_the_same_request() -> None:
    w = two_requests({"retentionDays": 30})  # the first's expiry is the default 30 days too

    assert w.posts == 1
    assert {r.get("joined") for r in w.results} == {None, "req-1"}


def test_a_second_request_with_other_properties_waits_and_then_triggers_its_own() -> None:
    w = two_requests({"retentionDays": 90})

    assert w.posts == 2
    assert all(r["status"] == "Succeeded" for r in w.results)
    assert all("joined" not in r for r in w.results)
    # The second POST went out only after the first request had its result.
    record = w.services.ledger.request("req-1")  # type: ignore[union-attr]
    assert record is not None and record.finished


def test_a_key_reused_for_another_item_is_rejected_without_touching_the_first() -> None:
    w = world()
    w.request(body_of())
    w.request(json.dumps(names("fileshare", correlationId="req-1")).encode(), "msg-2")

    [reused] = w.results
    assert reused["status"] == "Rejected"
    assert reused["error"]["code"] == "KeyReused"
    assert "VM;iaasvmcontainerv2" in reused["error"]["message"]
    w.drain()
    assert [r["status"] for r in w.results] == ["Rejected", "Succeeded"]


# --- daily limits ----------------------------------------------------------------------------


def test_daily_trigger_limits_refuse_before_calling_azure() -> None:
    w = world(DAILY_TRIGGER_LIMITS="VM=1")
    w.request(body_of())
    w.drain()
    w.request(body_of(correlationId="req-2"), "msg-2")
    w.drain()

    assert w.posts == 1
    refused = next(r for r in w.results if r["correlationId"] == "req-2")
    assert refused["status"] == "Failed"
    assert refused["error"]["code"] == "CloudDosAbsoluteLimitReached"
    assert refused["retryAt"] == (NOW.date() + timedelta(days=1)).isoformat() + "T00:00:00Z"


@pytest.mark.parametrize("code", ["CloudDosAbsoluteLimitReached", "CloudDosAbsoluteLimitReachedWithRetry"])
def test_azures_daily_limit_fails_with_retry_at(code: str) -> None:
    w = World(script(backup_request(), post=[Reply(400, body={"error": {"code": code, "message": "limit"}})]))
    w.request(body_of())

    [result] = w.results
    assert result["status"] == "Failed" and result["error"]["code"] == code
    assert result["retryAt"].endswith("T00:00:00Z")


# --- the ledger itself failing ---------------------------------------------------------------


def test_a_ledger_that_cannot_be_reached_raises_for_the_host_to_retry() -> None:
    w = world()
    w.store.down = True

    with pytest.raises(LedgerUnavailable):
        w.request(body_of())
    assert w.posts == 0
    assert w.queues.results == []


def test_a_failed_operation_for_a_running_backup_is_not_a_failed_request() -> None:
    request = backup_request()
    busy = {"code": "UserErrorBackupOperationInProgress", "message": "busy"}
    transport = script(
        request, post=[accepted(request), accepted(request)],
        operations=[op_reply("Failed", error=busy), op_reply("Succeeded", job_id=JOB_ID)],
    )
    w = World(transport)
    w.request(body_of())
    w.drain()

    assert [r["status"] for r in w.results] == ["Succeeded"]
    assert w.posts == 2


def test_the_job_outcome_is_kept_for_a_joined_request_even_when_it_failed() -> None:
    request = backup_request()
    failed = ended_job("Failed", errorDetails=[{"errorCode": 1, "errorString": "x", "errorTitle": "UserErrorX"}])
    transport = script(request, jobs=[Reply(200, body=failed)])
    w = World(transport)
    w.request(body_of())
    w.request(body_of(correlationId="req-2"), "msg-2")
    w.drain()

    assert w.posts == 1
    assert [r["status"] for r in w.results] == ["Failed", "Failed"]
    joined = next(r for r in w.results if r["correlationId"] == "req-2")
    assert joined["joined"] == "req-1" and joined["error"]["code"] == "UserErrorX"
