"""shared.followup, ledger fields: step, ledger_etag, waiting_for_key, waiting_for_job, joining."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.errors import RequestRejected
from shared.followup import FollowUp, Phase
from tests.unit.builders import NOW, follow_up, resource_target

LEDGER_FIELDS: dict[str, Any] = {
    "step": 12, "ledger_etag": 'W/"datetime\'2026-11-26T12%3A00%3A00.1234567Z\'"', "waiting_for_key": "owner/key#1?",
    "waiting_for_job": "6f4b3c1e-0000-4000-8000-0000000000aa", "joining": True,
}


def round_trip(value: FollowUp) -> FollowUp:
    return FollowUp.from_document(json.loads(value.to_text()))


def document_of(value: FollowUp, **changes: object) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(value.to_text())
    document.update(changes)
    return document


@pytest.mark.parametrize("phase", [phase for phase in Phase if phase is not Phase.RESOLVE])
def test_the_ledger_fields_round_trip(phase: Phase) -> None:
    original = follow_up(phase, **LEDGER_FIELDS)

    assert round_trip(original) == original


def test_the_ledger_fields_round_trip_while_resolving() -> None:
    original = FollowUp(None, Phase.RESOLVE, NOW, NOW, target=resource_target()).advance(**LEDGER_FIELDS)

    assert round_trip(original) == original


@pytest.mark.parametrize(("name", "value"), sorted(LEDGER_FIELDS.items()))
def test_each_ledger_field_round_trips_alone(name: str, value: object) -> None:
    original = follow_up(Phase.WAIT).advance(**{name: value})

    assert round_trip(original) == original


def test_the_ledger_fields_travel_under_their_names() -> None:
    document = json.loads(follow_up(Phase.WAIT, **LEDGER_FIELDS).to_text())

    assert {name: document[name] for name in ("step", "ledgerEtag", "waitingForKey", "waitingForJob", "joining")} == {
        "step": 12, "ledgerEtag": LEDGER_FIELDS["ledger_etag"], "waitingForKey": "owner/key#1?",
        "waitingForJob": LEDGER_FIELDS["waiting_for_job"], "joining": True,
    }


def test_a_follow_up_without_ledger_fields_says_only_its_step() -> None:
    document = json.loads(follow_up().to_text())

    assert document["step"] == 0
    assert not {"ledgerEtag", "waitingForKey", "waitingForJob", "joining"} & set(document)


def test_a_follow_up_written_before_the_ledger_reads_as_step_0() -> None:
    document = document_of(follow_up(Phase.JOB, job_id="j-1"))
    del document["step"]

    read = FollowUp.from_document(document)
    assert (read.step, read.ledger_etag, read.waiting_for_key, read.waiting_for_job, read.joining) == (
        0, None, None, None, False)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("step", -1), ("step", "3"), ("step", True), ("step", 2.5),
        ("ledgerEtag", 5), ("ledgerEtag", ["W/\"1\""]),
        ("waitingForKey", 7), ("waitingForKey", {"k": 1}),
        ("waitingForJob", "../jobs"), ("waitingForJob", "a/b"), ("waitingForJob", 42), ("waitingForJob", ".."),
    ],
)
def test_malformed_ledger_fields_are_refused_by_name(key: str, value: object) -> None:
    with pytest.raises(RequestRejected) as caught:
        FollowUp.from_document(document_of(follow_up(Phase.WAIT), **{key: value}))

    assert caught.value.field_name == key


@pytest.mark.parametrize("value", ["true", 1, "yes", None, False, {}])
def test_joining_is_only_the_json_true(value: object) -> None:
    assert FollowUp.from_document(document_of(follow_up(Phase.WAIT), joining=value)).joining is False


def test_entering_a_phase_resets_what_was_waited_for_and_keeps_the_ledger_step() -> None:
    before = follow_up(Phase.WAIT, polls=3, deadline=NOW + timedelta(hours=48), **LEDGER_FIELDS)
    later = NOW + timedelta(minutes=9)

    entered = before.enter(Phase.TRIGGER, later)

    assert (entered.waiting_for_key, entered.waiting_for_job, entered.joining) == (None, None, False)
    assert (entered.phase, entered.phase_started_at, entered.polls, entered.deadline) == (
        Phase.TRIGGER, later, 0, None)
    assert (entered.step, entered.ledger_etag) == (before.step, before.ledger_etag)


def test_entering_the_wait_phase_sets_what_is_waited_for() -> None:
    entered = follow_up().enter(Phase.WAIT, NOW, waiting_for_key="owner", joining=True)

    assert (entered.phase, entered.waiting_for_key, entered.joining, entered.waiting_for_job) == (
        Phase.WAIT, "owner", True, None)
