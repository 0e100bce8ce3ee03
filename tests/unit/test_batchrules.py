"""shared.batchrules, shared.batchstate and shared.batchrows: a batch's decisions, its follow-up and its rows."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest

from shared import batchrules
from shared.batches import ChildOutcome, child_key, parse_batch, release_at
from shared.batchrows import BatchContents, BatchRows, ListedPage, PageEntry
from shared.batchstate import BatchFollowUp, BatchPhase, is_batch_follow_up, progress_of
from shared.errors import ArmThrottled, ArmUnavailable, ErrorInfo, RequestRejected
from shared.ledger_store import MemoryStore
from shared.results import ResultStatus
from shared.vaultitems import ItemsPage, ListedItem
from tests.fakes import Clock
from tests.unit.builders import NOW, RG, SUB, VAULT, make_settings

SETTINGS = make_settings(BATCH_MAX_ITEMS="5", BATCH_TRIGGERS_PER_MINUTE="30")


def follow_up(
    phase: BatchPhase = BatchPhase.LIST, select: dict[str, Any] | None = None, **changes: Any
) -> BatchFollowUp:
    batch = parse_batch(
        {"subscriptionId": SUB, "resourceGroupName": RG, "vaultName": VAULT, "select": select or {},
         "correlationId": "b"},
        settings=SETTINGS, fallback_correlation_id="m",
    )
    base = batchrules.first_follow_up(BatchFollowUp(batch, phase, NOW, NOW), SETTINGS)
    return base.advance(**changes)


def vm(name: str) -> ListedItem:
    return ListedItem(f"VM;iaasvmcontainerv2;rg;{name}", f"IaasVMContainer;iaasvmcontainerv2;rg;{name}", "Azure",
                      name, "AzureIaasVM", "DefaultPolicy")


def entry(index: int, name: str | None = None, refused: ErrorInfo | None = None) -> PageEntry:
    item = vm(name or f"vm-{index}")
    return PageEntry(index, item.fabric, item.container, item.name, item.friendly_name, refused)


def page(number: int, *entries: PageEntry, next_link: str | None = None) -> ListedPage:
    return ListedPage(number, entries, next_link)


# --- listing -----------------------------------------------------------------------------------------


def test_a_page_selects_its_matches_numbered_on_from_those_before() -> None:
    database = ListedItem("SQLDataBase;mssqlserver;sales", "VMAppContainer;Compute;rg;sql", "Azure", "sales",
                          "AzureWorkload", None)
    listed = ItemsPage((vm("a"), vm("skip-me"), database, vm("b")), "https://next")
    current = follow_up(select={"friendlyNamePattern": "[!s]*"}, selected=4, page=2)

    selected = batchrules.select_page(current, listed, SETTINGS)

    assert [(e.index, e.friendly_name) for e in selected.entries] == [(4, "a"), (5, "b")]
    assert (selected.number, selected.next_link) == (2, "https://next")
    with_database = batchrules.select_page(follow_up(), listed, SETTINGS)
    refused = [e for e in with_database.entries if e.refused is not None]
    assert [(e.friendly_name, e.refused.target if e.refused else None) for e in refused] == [
        ("sales", "properties.backupType"),
    ]


def test_a_page_with_a_next_link_lists_on() -> None:
    decision = batchrules.after_page(follow_up(selected=1), page(0, entry(1), next_link="https://n"), NOW, SETTINGS)

    assert isinstance(decision, batchrules.Continue)
    assert (decision.follow_up.page, decision.follow_up.next_link, decision.follow_up.selected) == (1, "https://n", 2)
    assert decision.delay_seconds == 0


def test_the_last_page_starts_the_release_now() -> None:
    later = NOW + timedelta(minutes=3)

    decision = batchrules.after_page(follow_up(selected=2, page=4), page(4, entry(2)), later, SETTINGS)

    assert isinstance(decision, batchrules.Continue)
    released = decision.follow_up
    assert (released.phase, released.page, released.pages, released.selected) == (BatchPhase.RELEASE, 0, 5, 3)
    assert released.release_from == later and released.next_link is None


def test_the_maximum_itself_is_allowed_and_one_more_is_rejected() -> None:
    at_max = batchrules.after_page(follow_up(selected=4), page(0, entry(4)), NOW, SETTINGS)
    over = batchrules.after_page(follow_up(selected=4), page(0, entry(4), entry(5), next_link="x"), NOW, SETTINGS)

    assert isinstance(at_max, batchrules.Continue)
    assert isinstance(over, batchrules.Finish)
    assert (over.status, over.error.code if over.error else None) == (ResultStatus.REJECTED, "BatchTooLarge")
    assert over.follow_up.selected == 6


def test_nothing_selected_fails_naming_every_name_not_found() -> None:
    decision = batchrules.after_page(follow_up(select={"friendlyNames": ["a", "b"]}), page(3), NOW, SETTINGS)

    assert isinstance(decision, batchrules.Finish)
    assert (decision.status, decision.error.code if decision.error else None) == (ResultStatus.FAILED,
                                                                                  "NothingSelected")
    assert decision.outcomes == tuple(ChildOutcome("NotFound", friendly_name=name) for name in ("a", "b"))


def test_a_throttled_listing_is_not_a_failed_attempt_but_errors_are_and_run_out() -> None:
    throttle = ArmThrottled(ErrorInfo("SubscriptionRequestsThrottled", "slow"), retry_after=20)
    unavailable = ArmUnavailable(ErrorInfo("Http503", "busy"))
    rng = random.Random(1)

    throttled = batchrules.after_transient(follow_up(attempt=2), throttle, NOW, SETTINGS, rng)
    retried = batchrules.after_transient(follow_up(attempt=2), unavailable, NOW, SETTINGS, rng)
    exhausted = batchrules.after_transient(follow_up(attempt=7), unavailable, NOW, SETTINGS, rng)
    late = batchrules.after_transient(follow_up(), throttle, NOW + timedelta(hours=7), SETTINGS, rng)

    assert isinstance(throttled, batchrules.Continue) and throttled.delay_seconds == 20
    assert (throttled.follow_up.attempt, throttled.follow_up.throttled) == (2, 1)
    assert isinstance(retried, batchrules.Continue) and retried.follow_up.attempt == 3
    assert isinstance(exhausted, batchrules.Finish) and exhausted.error == unavailable.info
    assert isinstance(late, batchrules.Finish)  # the listing's deadline: six hours (OPERATION_TIMEOUT_SECONDS)


# --- releasing -----------------------------------------------------------------------------------------


def test_a_release_goes_on_with_the_next_page_keeping_the_schedule() -> None:
    releasing = follow_up(BatchPhase.RELEASE, pages=3, selected=9, release_from=NOW)

    decision = batchrules.after_release(releasing, 1, 4, NOW + timedelta(seconds=1), SETTINGS)

    assert isinstance(decision, batchrules.Continue)
    assert (decision.follow_up.page, decision.follow_up.released, decision.follow_up.release_from) == (1, 4, NOW)


def test_a_release_behind_its_schedule_moves_the_rest_later_instead_of_bursting() -> None:
    releasing = follow_up(BatchPhase.RELEASE, pages=3, selected=9, release_from=NOW)
    late = NOW + timedelta(minutes=10)  # item 4 was due at 8 s

    decision = batchrules.after_release(releasing, 1, 4, late, SETTINGS)

    assert isinstance(decision, batchrules.Continue)
    assert decision.follow_up.release_from is not None
    assert release_at(4, decision.follow_up.release_from, 30) == late


def test_after_the_last_page_the_first_look_comes_after_the_last_release() -> None:
    releasing = follow_up(BatchPhase.RELEASE, pages=2, selected=10, release_from=NOW)
    now = NOW + timedelta(seconds=5)

    decision = batchrules.after_release(releasing, 2, 10, now, SETTINGS)

    assert isinstance(decision, batchrules.Continue)
    collecting = decision.follow_up
    last_release = NOW + timedelta(seconds=18)  # item 9 at 30 a minute
    assert collecting.phase is BatchPhase.COLLECT
    assert decision.delay_seconds == 13 + SETTINGS.job_poll_initial_seconds
    assert collecting.deadline == last_release + timedelta(seconds=2 * (6 * 3600 + 48 * 3600))


# --- collecting ----------------------------------------------------------------------------------------


def contents(pages: list[ListedPage], outcomes: dict[str, ChildOutcome]) -> BatchContents:
    return BatchContents(tuple(pages), outcomes)


def key(n: int) -> str:
    return child_key("b", vm(f"vm-{n}").name)


def test_a_look_with_items_still_running_looks_again_later_and_less_often() -> None:
    collecting = follow_up(BatchPhase.COLLECT, selected=3, deadline=NOW + timedelta(days=1))
    rows = contents([page(0, entry(0), entry(1)), page(1, entry(2))], {key(0): ChildOutcome("Succeeded")})

    first = batchrules.after_look(collecting, rows, NOW, SETTINGS)
    assert isinstance(first, batchrules.Continue)
    later = batchrules.after_look(first.follow_up.advance(polls=5), rows, NOW, SETTINGS)

    assert isinstance(later, batchrules.Continue)
    assert first.follow_up.counts == {"Succeeded": 1}
    assert first.delay_seconds == SETTINGS.job_poll_initial_seconds
    assert first.delay_seconds < later.delay_seconds <= SETTINGS.job_poll_max_seconds


def test_the_last_outcome_finishes_with_every_item_refused_ones_and_names_not_found() -> None:
    collecting = follow_up(BatchPhase.COLLECT, select={"friendlyNames": ["vm-0", "vm-1", "ghost"]},
                           deadline=NOW + timedelta(days=1))
    refusal = ErrorInfo("InvalidRequest", "bad", target="properties.backupType")
    rows = contents([page(0, entry(0), entry(1, refused=refusal))], {key(0): ChildOutcome("Failed", error_code="E")})

    decision = batchrules.after_look(collecting, rows, NOW, SETTINGS)

    assert isinstance(decision, batchrules.Finish)
    assert [(o.status, o.error_code, o.friendly_name) for o in decision.outcomes] == [
        ("Failed", "E", None), ("Rejected", "InvalidRequest", None), ("NotFound", None, "ghost"),
    ]
    assert decision.outcomes[1].protected_item_id is not None
    assert decision.outcomes[1].protected_item_id.endswith("/protectedItems/VM;iaasvmcontainerv2;rg;vm-1")


def test_an_item_listed_on_two_pages_counts_once() -> None:
    collecting = follow_up(BatchPhase.COLLECT, selected=3, deadline=NOW + timedelta(days=1))
    rows = contents([page(0, entry(0), entry(1)), page(1, entry(2, "vm-1"))],
                    {key(0): ChildOutcome("Succeeded"), key(1): ChildOutcome("Succeeded")})

    decision = batchrules.after_look(collecting, rows, NOW, SETTINGS)

    assert isinstance(decision, batchrules.Finish)
    assert (len(decision.outcomes), decision.follow_up.selected) == (2, 2)


def test_past_the_backstop_the_items_without_an_outcome_are_timed_out() -> None:
    collecting = follow_up(BatchPhase.COLLECT, selected=2, deadline=NOW)
    rows = contents([page(0, entry(0), entry(1))], {key(0): ChildOutcome("Succeeded")})

    decision = batchrules.after_look(collecting, rows, NOW, SETTINGS)

    assert isinstance(decision, batchrules.Finish)
    assert [(o.status, o.error_code) for o in decision.outcomes] == [
        ("Succeeded", None), ("TimedOut", batchrules.UNFINISHED),
    ]


# --- the follow-up -------------------------------------------------------------------------------------


def test_a_follow_up_survives_its_round_trip() -> None:
    original = follow_up(BatchPhase.COLLECT, select={"friendlyNames": ["a"]}, step=7, polls=2, pages=3, selected=9,
                         released=9, release_from=NOW, next_link=None, counts={"Succeeded": 2},
                         last_error=ErrorInfo("Http503", "busy"))

    document = json.loads(original.to_text())

    assert is_batch_follow_up(document) and document["kind"] == "batch"
    assert BatchFollowUp.from_document(document) == original


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"schemaVersion": 2}, "schemaVersion"),
        ({"kind": None}, "schemaVersion"),
        ({"phase": "explode"}, "phase"),
        ({"batch": "x"}, "batch"),
        ({"batch": {"subscriptionId": SUB}}, "resourceGroupName"),
        ({"counts": {"Succeeded": -1}}, "counts"),
        ({"selected": "9"}, "selected"),
        ({"nextLink": 7}, "nextLink"),
        ({"releaseFrom": "yesterday"}, "releaseFrom"),
        ({"requestedAt": None}, "requestedAt"),
    ],
)
def test_a_tampered_follow_up_is_refused_naming_the_field(change: dict[str, Any], target: str) -> None:
    document = {**json.loads(follow_up().to_text()), **change}
    document = {name: value for name, value in document.items() if value is not None}

    with pytest.raises(RequestRejected) as caught:
        BatchFollowUp.from_document(document)

    assert caught.value.info.target == target


# --- the rows ------------------------------------------------------------------------------------------


def test_a_page_row_keeps_its_entries_and_link_and_the_first_write_wins() -> None:
    rows = BatchRows(MemoryStore(Clock()))
    refusal = ErrorInfo("InvalidRequest", "no")
    listed = page(0, entry(0), entry(1, refused=refusal), next_link="https://next")

    assert rows.save_page("b", listed) == listed
    assert rows.save_page("b", page(0, entry(0))) == listed  # a redelivery's listing: the recorded one wins
    assert rows.page("b", 0) == listed
    assert rows.page("b", 1) is None
    assert rows.page("other", 0) is None


def test_a_page_too_big_for_one_field_is_split_and_read_back_whole() -> None:
    store = MemoryStore(Clock())
    rows = BatchRows(store)
    entries = [PageEntry(n, "Azure", f"c-{n}-{random.Random(n).getrandbits(512):x}", f"VM;x;{n}", f"{n}")
               for n in range(1500)]  # random names: they do not compress

    rows.save_page("b", ListedPage(0, tuple(entries), None))

    [(_, stored)] = store.read_partition(next(iter(store.keys())).partition)
    parts = stored.fields["Parts"]
    assert isinstance(parts, int) and parts > 1
    assert rows.page("b", 0) == ListedPage(0, tuple(entries), None)


def test_an_outcome_is_recorded_once_and_read_with_the_pages_in_one_query() -> None:
    store = MemoryStore(Clock())
    rows = BatchRows(store)
    rows.save_page("b", page(1, entry(3)))
    rows.save_page("b", page(0, entry(0)))
    rows.record_outcome("b", key(0), ChildOutcome("Succeeded", "/item/0", "job-0"))
    rows.record_outcome("b", key(0), ChildOutcome("Failed"))  # a second writer: the first stays
    rows.record_outcome("other", key(0), ChildOutcome("Failed"))
    before = store.transactions

    found = rows.contents("b")

    assert store.transactions - before == 1
    assert [listed.number for listed in found.pages] == [0, 1]
    assert found.outcomes == {key(0): ChildOutcome("Succeeded", "/item/0", "job-0")}



def test_progress_is_read_from_a_batch_follow_up_only() -> None:
    listing = follow_up(selected=40)
    collecting = follow_up(BatchPhase.COLLECT, selected=90, released=90, counts={"Succeeded": 30, "Failed": 2})

    assert progress_of(listing.to_text()) == {"kind": "batch", "selected": 40, "released": 0, "ended": 0, "counts": {}}
    assert progress_of(collecting.to_text()) == {
        "kind": "batch", "selected": 90, "released": 90, "ended": 32, "counts": {"Succeeded": 30, "Failed": 2},
    }
    assert progress_of(None) is None
    assert progress_of('{"schemaVersion":1,"phase":"job"}') is None  # a request's follow-up
    assert progress_of("not json") is None
    assert progress_of(json.dumps({**json.loads(listing.to_text()), "phase": "?"})) is None
