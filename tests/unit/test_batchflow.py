"""shared.batchflow through shared.workflow: batches over an in-memory ledger, a fake ARM and fake queues.

A ``BatchWorld`` plays the three queues with visibility times on one clock: it delivers the
earliest visible message (a request to handle_request, a follow-up to handle_follow_up), again
after an invocation that died, until nothing is left. Its fake ARM serves a vault of items in
pages and backs each item up (operation, then job), failing the items it is told to fail.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from shared.batches import release_at
from shared.ledger import Ledger
from shared.workflow import Delivery, Services, handle_follow_up, handle_request
from tests.fakes import ARM, Clock, FakeTransport, Reply, SentRequest
from tests.unit.builders import NOW, RG, SUB, VAULT, arm_client, make_settings, result_of
from tests.unit.test_carry import Died, FaultyStore
from tests.unit.test_workflow import ended_job, job_entry, op_reply

REQUESTS, STATUS, RESULTS = "backup-requests", "backup-status", "backup-results"
VAULT_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
PAGE_SIZE = 3


def vm(name: str, policy: str = "DefaultPolicy") -> dict[str, Any]:
    container = f"IaasVMContainer;iaasvmcontainerv2;rg-app;{name}"
    item = f"VM;iaasvmcontainerv2;rg-app;{name}"
    return _listed(container, item, name, "AzureIaasVM", policy)


def share(name: str) -> dict[str, Any]:
    return _listed("StorageContainer;Storage;rg-data;acct", f"AzureFileShare;{name}", name, "AzureStorage", "Files")


def _listed(container: str, item: str, friendly: str, kind: str, policy: str) -> dict[str, Any]:
    return {
        "id": f"{VAULT_PATH}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}",
        "name": item,
        "type": "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems",
        "properties": {"friendlyName": friendly, "backupManagementType": kind,
                       "policyId": f"{VAULT_PATH}/backupPolicies/{policy}"},
    }


class FakeVault:
    """ARM for one vault: its items listed in pages of three, and each item's backup."""

    def __init__(self, items: list[dict[str, Any]], *, failing: frozenset[str] = frozenset(),
                 transport: FakeTransport | None = None) -> None:
        self.items = items
        self.failing = failing
        self.transport = transport or FakeTransport()
        self.list_replies: list[Reply] = []
        """Replies to the next list calls, before the vault answers (throttling, errors)."""
        self.next_link_host = ARM
        self.clock: Clock | None = None
        self.post_times: list[datetime] = []
        self.transport.on("GET", r"/backupProtectedItems\?", self._list)
        self.transport.on("POST", r"/backup\?", self._trigger)
        self.transport.on("GET", r"/operationsStatus/", self._operation)
        self.transport.on("GET", r"/backupJobs/[^/?]+\?", self._job)
        self.transport.on("GET", r"/backupJobs\?", self._jobs)

    def _list(self, sent: SentRequest) -> Reply:
        if self.list_replies:
            return self.list_replies.pop(0)
        query = parse_qs(urlsplit(sent.url).query)
        given = query.get("$filter", [""])[0]
        wanted = given.partition("eq '")[2].rstrip("'").lower()
        items = [i for i in self.items if not wanted or i["properties"]["backupManagementType"].lower() == wanted]
        offset = int(query.get("$skipToken", ["0"])[0])
        body: dict[str, Any] = {"value": items[offset:offset + PAGE_SIZE]}
        if offset + PAGE_SIZE < len(items):
            body["nextLink"] = f"{self.next_link_host}{VAULT_PATH}/backupProtectedItems?api-version=2024-04-01" \
                               f"&$skipToken={offset + PAGE_SIZE}" + (f"&$filter={quote(given)}" if given else "")
        return Reply(200, body)

    @staticmethod
    def _item_name(url: str) -> str:
        return unquote(urlsplit(url).path).split("/protectedItems/", 1)[1].split("/", 1)[0]

    def _jobs(self, sent: SentRequest) -> Reply:
        """The jobs the triggers started: a redelivered trigger looks here before posting again."""
        started = [(self._item_name(post.url), when) for post, when in zip(self.transport.calls("POST"),
                                                                          self.post_times, strict=True)]
        return Reply(200, {"value": [job_entry(f"job-{name.rsplit(';', 1)[-1]}", when, name.rsplit(";", 1)[-1])
                                     for name, when in started]})

    def _trigger(self, sent: SentRequest) -> Reply:
        self.post_times.append(self.clock() if self.clock is not None else NOW)
        item_path = urlsplit(sent.url).path.rsplit("/backup", 1)[0]
        return Reply(202, headers={
            "Azure-AsyncOperation": f"{ARM}{item_path}/operationsStatus/op?api-version=2016-12-01", "Retry-After": "30",
        })

    def _operation(self, sent: SentRequest) -> Reply:
        return op_reply("Succeeded", job_id=f"job-{self._item_name(sent.url).rsplit(';', 1)[-1]}")

    def _job(self, sent: SentRequest) -> Reply:
        friendly = urlsplit(sent.url).path.rsplit("/backupJobs/job-", 1)[1]
        if friendly in self.failing:
            detail = {"errorCode": 400001, "errorString": "no", "errorTitle": "UserErrorVmNotInDesirableState"}
            return Reply(200, ended_job("Failed", errorDetails=[detail]))
        return Reply(200, ended_job("Completed"))

    def posts(self) -> list[str]:
        return [self._item_name(sent.url) for sent in self.transport.calls("POST")]

    def lists(self) -> list[SentRequest]:
        return self.transport.calls("GET", r"/backupProtectedItems\?")


@dataclass(order=True)
class Queued:
    visible_at: datetime
    seq: int
    queue: str = field(compare=False)
    text: str = field(compare=False)
    id: str = field(compare=False)
    dequeue_count: int = field(default=0, compare=False)
    sent_at: datetime = field(default=NOW, compare=False)


class BatchWorld:
    def __init__(self, vault: FakeVault, *, ledger: bool = True, **settings: str) -> None:
        self.clock = Clock(NOW)
        self.store = FaultyStore(self.clock)
        self.vault = vault
        vault.clock = self.clock
        self.settings = make_settings(**{"BATCH_TRIGGERS_PER_MINUTE": "60", **settings})
        self.services = Services(
            self.settings, arm_client(vault.transport, settings=self.settings, clock=self.clock), self, self.clock,
            random.Random(3), Ledger(self.store) if ledger else None,
        )
        self.queue: list[Queued] = []
        self.results: list[str] = []
        self.sent: list[Queued] = []
        self.die_at_send: int | None = None
        self.sends = 0
        self._seq = itertools.count()

    # MessageSender
    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None:
        self.sends += 1
        if self.sends == self.die_at_send:
            raise Died(f"before send {self.sends}")
        if queue_name == RESULTS:
            self.results.append(text)
            return
        seq = next(self._seq)
        message = Queued(self.clock() + timedelta(seconds=delay_seconds), seq, queue_name, text, f"m-{seq}",
                         sent_at=self.clock())
        self.sent.append(message)
        heapq.heappush(self.queue, message)

    def submit(self, document: dict[str, Any], message_id: str = "batch-msg") -> None:
        seq = next(self._seq)
        heapq.heappush(self.queue, Queued(self.clock(), seq, REQUESTS, json.dumps(document), message_id))

    def run(self, limit: int = 5000, *, on_invocation: Callable[[Queued], None] | None = None) -> None:
        """Deliver every message in visibility order, again after an invocation that died."""
        for _ in range(limit):
            if not self.queue:
                return
            self.step(on_invocation)
        raise AssertionError("the queues never emptied")

    def step(self, on_invocation: Callable[[Queued], None] | None = None) -> None:
        message = heapq.heappop(self.queue)
        self.clock.now = max(self.clock.now, message.visible_at)
        message.dequeue_count += 1
        if on_invocation is not None:
            on_invocation(message)
        try:
            self._deliver(message)
        except Died:
            self.die_at_send = self.store.die_at_write = None  # the next host lives
            message.visible_at = self.clock() + timedelta(seconds=30)  # host.json's visibilityTimeout
            heapq.heappush(self.queue, message)

    def _deliver(self, message: Queued) -> None:
        delivery = Delivery(message.id, message.dequeue_count, message.visible_at)
        handler = handle_request if message.queue == REQUESTS else handle_follow_up
        outcome = handler(message.text.encode(), delivery, self.services)
        if outcome is not None:
            self.results.append(outcome)

    def documents(self) -> list[dict[str, Any]]:
        """The results, each once: a host that died after sending a result and before marking it sent
        sends it again on redelivery (the protocol's one known duplicate), identical to the first."""
        by_key: dict[str, str] = {}
        for text in self.results:
            key = json.loads(text)["correlationId"]
            if json.loads(text).get("error", {}).get("code") == "KeyReused":
                key += "#reused"  # the one case where a key gets a second, different result
            assert by_key.setdefault(key, text) == text, f"two different results for {key}"
        return [result_of(text) for text in by_key.values()]

    def summaries(self) -> list[dict[str, Any]]:
        return [document for document in self.documents() if document.get("kind") == "batch"]

    def item_results(self) -> list[dict[str, Any]]:
        return [document for document in self.documents() if document.get("kind") != "batch"]

    def children_sent(self) -> list[Queued]:
        return [message for message in self.sent if message.queue == REQUESTS]


def batch_document(**changes: Any) -> dict[str, Any]:
    return {"subscriptionId": SUB, "resourceGroupName": RG, "vaultName": VAULT, "select": {},
            "correlationId": "night-1", **changes}


MIXED = [vm("web-01"), share("share-a"), vm("web-02"), vm("db-01", "Gold"), vm("web-03"), share("share-b"),
         vm("db-02", "Gold"), vm("web-04")]


def assert_summary_matches_item_results(world: BatchWorld) -> dict[str, Any]:
    [summary] = world.summaries()
    items = world.item_results()
    assert all(item["batch"] == "night-1" for item in items)
    by_status: dict[str, int] = {}
    for item in items:
        by_status[item["status"]] = by_status.get(item["status"], 0) + 1
    listed = {entry["protectedItemId"]: entry for entry in summary["items"] if "protectedItemId" in entry}
    assert {k: v for k, v in summary["counts"].items() if k != "NotFound"} == by_status
    for item in items:
        assert listed[item["protectedItemId"]]["status"] == item["status"]
        assert listed[item["protectedItemId"]].get("jobId") == item.get("jobId")
    assert json.loads(world.results[-1]) == summary, "the summary comes last"
    return summary


# --- a batch, start to end --------------------------------------------------------------------------


def test_a_batch_of_every_vm_backs_each_up_once_and_ends_in_one_summary() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))

    world.run()

    vms = [item["name"] for item in MIXED if item["name"].startswith("VM;")]
    assert sorted(world.vault.posts()) == sorted(vms)
    assert sorted(r["correlationId"] for r in world.item_results()) == sorted(f"night-1/{name}" for name in vms)
    summary = assert_summary_matches_item_results(world)
    assert (summary["status"], summary["selected"], summary["counts"]) == ("Succeeded", 6, {"Succeeded": 6})
    # Every page was listed once, filtered by the service on the management type.
    assert len(world.vault.lists()) == 2
    assert "backupManagementType eq 'AzureIaasVM'" in unquote(world.vault.lists()[0].url.replace("+", " "))


def test_the_items_are_released_at_the_pace_each_at_its_own_time() -> None:
    world = BatchWorld(FakeVault([vm(f"vm-{n}") for n in range(7)]), BATCH_TRIGGERS_PER_MINUTE="20")
    world.submit(batch_document())

    world.run()

    children = world.children_sent()
    start = min(child.visible_at for child in children)
    assert [child.visible_at for child in children] == [release_at(n, start, 20) for n in range(7)]
    assert world.vault.post_times == [start + timedelta(seconds=3 * n) for n in range(7)]
    assert len(world.summaries()) == 1


def test_names_the_vault_does_not_hold_are_listed_not_found() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(select={"friendlyNames": ["WEB-01", "db-02", "ghost", "share-a", "gone"]}))

    world.run()

    assert sorted(world.vault.posts()) == sorted(
        ["VM;iaasvmcontainerv2;rg-app;web-01", "VM;iaasvmcontainerv2;rg-app;db-02", "AzureFileShare;share-a"]
    )
    summary = assert_summary_matches_item_results(world)
    assert summary["status"] == "PartiallySucceeded"
    assert summary["counts"] == {"Succeeded": 3, "NotFound": 2}
    assert [entry for entry in summary["items"] if entry["status"] == "NotFound"] == [
        {"friendlyName": "ghost", "status": "NotFound"}, {"friendlyName": "gone", "status": "NotFound"},
    ]


def test_the_pattern_and_policy_select_across_pages() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(select={"friendlyNamePattern": "DB-*", "policyName": "gold"}))

    world.run()

    assert sorted(world.vault.posts()) == ["VM;iaasvmcontainerv2;rg-app;db-01", "VM;iaasvmcontainerv2;rg-app;db-02"]
    assert assert_summary_matches_item_results(world)["selected"] == 2


def test_items_that_fail_make_the_batch_partly_succeed() -> None:
    world = BatchWorld(FakeVault(MIXED, failing=frozenset({"web-02", "db-01"})))
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))

    world.run()

    summary = assert_summary_matches_item_results(world)
    assert (summary["status"], summary["counts"]) == ("PartiallySucceeded", {"Succeeded": 4, "Failed": 2})
    assert [entry["status"] for entry in summary["items"][:2]] == ["Failed", "Failed"]
    assert {entry["errorCode"] for entry in summary["items"][:2]} == {"UserErrorVmNotInDesirableState"}


def test_every_item_failing_fails_the_batch() -> None:
    world = BatchWorld(FakeVault(MIXED[:2], failing=frozenset({"web-01"})))
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))

    world.run()

    assert assert_summary_matches_item_results(world)["status"] == "Failed"


def test_an_empty_selection_fails_with_nothing_selected_and_starts_nothing() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(select={"friendlyNames": ["ghost"]}))

    world.run()

    assert world.vault.posts() == [] and world.children_sent() == []
    [summary] = world.documents()
    assert (summary["kind"], summary["status"], summary["error"]["code"]) == ("batch", "Failed", "NothingSelected")
    assert summary["items"] == [{"friendlyName": "ghost", "status": "NotFound"}]
    assert len(world.vault.lists()) == 3  # the whole vault was looked through


def test_a_selection_over_the_maximum_is_rejected_before_anything_starts() -> None:
    world = BatchWorld(FakeVault([vm(f"vm-{n}") for n in range(12)]), BATCH_MAX_ITEMS="5")
    world.submit(batch_document())

    world.run()

    assert world.vault.posts() == [] and world.children_sent() == []
    [summary] = world.documents()
    assert (summary["status"], summary["error"]["code"], summary["selected"]) == ("Rejected", "BatchTooLarge", 6)
    assert len(world.vault.lists()) == 2  # listing stopped once the maximum was passed


def test_an_item_whose_request_cannot_be_made_is_reported_rejected_and_not_sent() -> None:
    database = _listed("VMAppContainer;Compute;rg;sqlvm", "SQLDataBase;mssqlserver;sales", "sales", "AzureWorkload",
                       "SqlPolicy")
    world = BatchWorld(FakeVault([vm("web-01"), database]))
    world.submit(batch_document())  # no backupType: a database request needs one

    world.run()

    assert world.vault.posts() == ["VM;iaasvmcontainerv2;rg-app;web-01"]
    [summary] = world.summaries()
    assert summary["counts"] == {"Succeeded": 1, "Rejected": 1}
    assert summary["items"][0]["errorCode"] == "InvalidRequest"
    assert summary["items"][0]["protectedItemId"].endswith("/protectedItems/SQLDataBase;mssqlserver;sales")


# --- exactly once ------------------------------------------------------------------------------------


# A batch of six VMs sends 30 messages and writes the ledger 37 times: every one of them is a place to die.
@pytest.mark.parametrize("die_at_send", range(1, 31))
def test_a_host_dying_at_any_send_loses_and_duplicates_nothing(die_at_send: int) -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.die_at_send = die_at_send
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))

    world.run()

    vms = sorted(item["name"] for item in MIXED if item["name"].startswith("VM;"))
    assert sorted(world.vault.posts()) == vms
    assert sorted(r["correlationId"] for r in world.item_results()) == sorted(f"night-1/{name}" for name in vms)
    assert assert_summary_matches_item_results(world)["counts"] == {"Succeeded": 6}


CLEAN_RUN_WRITES = 52
"""Ledger writes (creates and replaces) of the run below without faults: each is a kill point."""


def test_the_kill_points_below_cover_every_write_of_a_clean_run() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))
    world.run()
    assert world.store.writes == CLEAN_RUN_WRITES


@pytest.mark.parametrize("die_at_write", range(1, CLEAN_RUN_WRITES + 1))
@pytest.mark.parametrize("after_write", [True, False])
def test_a_host_dying_at_any_ledger_write_loses_and_duplicates_nothing(die_at_write: int, after_write: bool) -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.store.die_at_write, world.store.die_after_write = die_at_write, after_write
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))

    world.run()

    assert len(world.vault.posts()) == len(set(world.vault.posts())) == 6
    assert len(world.item_results()) == 6
    assert assert_summary_matches_item_results(world)["counts"] == {"Succeeded": 6}


def test_a_page_listed_by_a_delivery_that_died_is_not_listed_again() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.store.die_at_write, world.store.die_after_write = 1, False  # the first step's write: after its page
    world.submit(batch_document())

    world.run()

    assert len(world.vault.lists()) == 3  # three pages, each listed once
    assert len(world.summaries()) == 1


def test_a_page_released_twice_sends_each_copy_to_its_item_s_own_release_time_and_each_item_runs_once() -> None:
    world = BatchWorld(FakeVault(MIXED), BATCH_TRIGGERS_PER_MINUTE="2")  # 30 s apart: some still due at the resend
    world.submit(batch_document())
    releases = 0

    def kill_first_release(message: Queued) -> None:
        nonlocal releases
        if '"phase":"release"' in message.text:
            releases += 1
            if releases == 1:
                world.store.die_at_write, world.store.die_after_write = world.store.writes + 1, False

    world.run(on_invocation=kill_first_release)

    children = world.children_sent()
    start = min(child.visible_at for child in children)
    order = [json.loads(child.text)["correlationId"] for child in children]
    slot = {key: release_at(index, start, 2) for index, key in enumerate(dict.fromkeys(order))}
    assert len(children) > len(slot)  # the first page went out twice
    # Every copy appears at its item's release time, or at once if that time had passed when it was sent.
    sent = list(zip(children, order, strict=True))
    assert all(child.visible_at == max(slot[key], child.sent_at) for child, key in sent)
    assert any(child.visible_at == slot[key] > child.sent_at > start for child, key in sent)
    assert len(world.vault.posts()) == len(set(world.vault.posts())) == 8
    assert len(world.item_results()) == 8 and len(world.summaries()) == 1


def test_the_same_batch_sent_twice_runs_once() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(), "first")
    world.submit(batch_document(), "second")

    world.run()
    world.submit(batch_document(), "third")  # after it ended
    world.run()

    assert len(world.vault.posts()) == 8
    assert len(world.summaries()) == 1 and len(world.item_results()) == 8


def test_a_batch_key_reused_for_another_selection_is_refused() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(), "first")
    world.run()

    world.submit(batch_document(select={"policyName": "Gold"}), "other")
    world.run()

    reused = world.documents()[-1]
    assert (reused["kind"], reused["status"], reused["error"]["code"]) == ("batch", "Rejected", "KeyReused")
    assert len(world.vault.posts()) == 8


# --- failures ----------------------------------------------------------------------------------------


def test_a_throttled_listing_waits_and_goes_on() -> None:
    vault = FakeVault(MIXED)
    vault.list_replies = [Reply(429, {"error": {"code": "SubscriptionRequestsThrottled", "message": "slow"}},
                                headers={"Retry-After": "20"})]
    world = BatchWorld(vault)
    world.submit(batch_document())

    world.run()

    assert len(vault.lists()) == 4
    assert assert_summary_matches_item_results(world)["counts"] == {"Succeeded": 8}


def test_a_vault_arm_does_not_know_fails_the_batch_before_anything_starts() -> None:
    vault = FakeVault(MIXED)
    vault.list_replies = [Reply(404, {"error": {"code": "ResourceNotFound", "message": "no such vault"}})]
    world = BatchWorld(vault)
    world.submit(batch_document())

    world.run()

    [summary] = world.documents()
    assert (summary["status"], summary["error"]["code"]) == ("Failed", "ResourceNotFound")
    assert world.vault.posts() == []


def test_a_next_link_off_the_arm_host_is_not_followed() -> None:
    vault = FakeVault(MIXED)
    vault.next_link_host = "https://evil.example.com"
    world = BatchWorld(vault)
    world.submit(batch_document())

    world.run()

    [summary] = world.documents()
    assert (summary["status"], summary["error"]["code"]) == ("Failed", "UntrustedFollowUpUrl")
    assert all(urlsplit(sent.url).netloc == urlsplit(ARM).netloc for sent in vault.transport.sent)


def test_without_the_ledger_a_batch_is_rejected() -> None:
    world = BatchWorld(FakeVault(MIXED), ledger=False)
    world.submit(batch_document())

    world.run()

    [result] = world.documents()
    assert (result["kind"], result["status"], result["error"]["code"]) == ("batch", "Rejected", "BatchNeedsLedger")
    assert world.vault.transport.sent == []


def test_a_malformed_batch_is_rejected_as_a_batch_with_its_raw_text() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document(select={"backupManagementType": "Tape"}))

    world.run()

    [result] = world.documents()
    assert (result["kind"], result["status"], result["error"]["target"]) == (
        "batch", "Rejected", "select.backupManagementType",
    )
    assert json.loads(result["rawMessage"])["select"] == {"backupManagementType": "Tape"}


def test_a_batch_follow_up_for_a_vault_outside_the_allow_lists_is_not_carried() -> None:
    world = BatchWorld(FakeVault(MIXED))
    world.submit(batch_document())
    world.step()  # the first page
    [follow_up] = [message for message in world.queue if message.queue == STATUS]
    world.queue.clear()
    world.services = Services(**{**world.services.__dict__, "settings": make_settings(ALLOWED_VAULTS="other")})
    world.queue.append(follow_up)

    world.run()

    [result] = world.documents()
    assert (result["status"], result["error"]["code"]) == ("Failed", "UnreadableFollowUp")
    assert len(world.vault.lists()) == 1


def test_an_item_that_never_ends_is_reported_timed_out_at_the_backstop() -> None:
    world = BatchWorld(FakeVault(MIXED[:3]), OPERATION_TIMEOUT_SECONDS="60", JOB_TIMEOUT_SECONDS="600")
    world.submit(batch_document(select={"backupManagementType": "AzureIaasVM"}))

    def lose_web_02(message: Queued) -> None:
        if message.queue == REQUESTS and "web-02" in message.text:
            message.text = "{}"  # its request is lost: a message no handler can read as that item

    world.run(on_invocation=lose_web_02)

    summary = world.summaries()[0]
    assert summary["counts"] == {"Succeeded": 1, "TimedOut": 1}
    [late] = [entry for entry in summary["items"] if entry["status"] == "TimedOut"]
    assert late["errorCode"] == "BatchItemUnfinished" and late["protectedItemId"].endswith(";web-02")


@pytest.mark.parametrize("size", [6, 60])
def test_a_look_at_the_outcomes_costs_the_same_whatever_the_batch_s_size(size: int) -> None:
    world = BatchWorld(FakeVault([vm(f"vm-{n:02d}") for n in range(size)]), BATCH_TRIGGERS_PER_MINUTE="6000")
    world.submit(batch_document())
    looks: list[int] = []
    calls = {"read_partition": 0}
    original = world.store.read_partition

    def counted(partition: str) -> list[Any]:
        calls["read_partition"] += 1
        return original(partition)

    world.store.read_partition = counted  # type: ignore[method-assign]
    marks: list[tuple[bool, int, int]] = []

    def note(message: Queued) -> None:
        marks.append(('"phase":"collect"' in message.text, world.store.transactions, calls["read_partition"]))

    world.run(on_invocation=note)
    marks.append((False, world.store.transactions, calls["read_partition"]))
    for (collecting, transactions, queries), (_, after, queries_after) in itertools.pairwise(marks):
        if collecting:
            looks.append(after - transactions)
            assert queries_after - queries == 1

    # One record read, one query of the batch's partition, one write (the last look also marks its
    # summary sent): never a read per item.
    assert looks and set(looks[:-1]) <= {3}
    assert looks[-1] <= 4
