"""shared.frontdoor's answers and shared.frontdoor_flow.queued_text: pure, with an explicit clock."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared import frontdoor
from shared.envelopes import unwrap
from shared.errors import ErrorInfo
from shared.frontdoor_flow import queued_text
from shared.ledger import Fingerprint, RequestRecord
from shared.messages import BackupRequest, parse_request
from tests.unit.builders import NOW, make_settings, names

LOCATION = "https://h.example/api/backups/k"


def record(**changes: object) -> RequestRecord:
    base = RequestRecord(
        key="k", item_id="/subscriptions/s/…/protectedItems/VM;x", fingerprint=Fingerprint("d", None), step=0,
        written_by=-1, holder=None, phase="accepted", created_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds_ahead", "expected"), [
    (None, 5), (-30, 5), (0, 5), (4.2, 5), (5, 5), (5.1, 6), (60, 60), (899.5, 900), (86400, 86400),
])
def test_retry_after_is_the_time_to_the_next_look_never_below_five(seconds_ahead: float | None, expected: int) -> None:
    next_look = None if seconds_ahead is None else NOW + timedelta(seconds=seconds_ahead)

    assert frontdoor.retry_after(next_look, NOW) == expected


def test_a_running_request_answers_202_with_its_state_location_and_retry_after() -> None:
    running = record(phase="job", step=3, job_id="job-1", next_look_at=NOW + timedelta(seconds=120))

    answer = frontdoor.state(running, LOCATION, NOW)

    assert answer.status == 202
    assert answer.headers == {"Location": LOCATION, "Retry-After": "120"}
    assert answer.body == {
        "status": "Running", "correlationId": "k", "protectedItemId": running.item_id, "phase": "job",
        "jobId": "job-1", "requestedAt": "2026-11-26T12:00:00Z", "nextLookAt": "2026-11-26T12:02:00Z",
    }


def test_unknown_parts_of_the_state_are_left_out_not_null() -> None:
    answer = frontdoor.accepted(record(), LOCATION, NOW)

    assert answer.status == 202
    assert "jobId" not in answer.body and "nextLookAt" not in answer.body
    assert answer.headers["Retry-After"] == "5"


def test_a_finished_request_answers_200_with_the_recorded_result_verbatim() -> None:
    text = '{"schemaVersion":1,"status":"Failed","correlationId":"k"}'

    answer = frontdoor.state(record(result=text, phase="finished"), LOCATION, NOW)

    assert (answer.status, answer.text()) == (200, text)
    assert "Location" not in answer.headers and "Retry-After" not in answer.headers


def test_every_answer_is_json_and_not_cacheable() -> None:
    error = ErrorInfo("InvalidRequest", "x: bad", target="x")
    answers = [
        frontdoor.accepted(record(), LOCATION, NOW), frontdoor.invalid(error), frontdoor.reused(error),
        frontdoor.refused(413, error), frontdoor.not_found("k"), frontdoor.method_not_allowed("PUT", ("GET",)),
        frontdoor.unavailable("The ledger"), frontdoor.ledger_off(), frontdoor.internal_error(),
        frontdoor.state(record(result='{"a":1}'), LOCATION, NOW),
    ]
    for answer in answers:
        json.loads(answer.text())
        assert answer.all_headers()["Content-Type"] == "application/json; charset=utf-8"
        assert answer.all_headers()["Cache-Control"] == "no-store"
    assert [a.status for a in answers] == [202, 400, 409, 413, 404, 405, 503, 501, 500, 200]


def test_refusals_carry_the_error_object_a_rejected_result_carries() -> None:
    error = ErrorInfo("NotAllowed", "subscriptionId: is not in ALLOWED_SUBSCRIPTIONS", target="subscriptionId")

    assert frontdoor.invalid(error).body == {"status": "Rejected", "error": error.to_json()}
    assert frontdoor.reused(error).body == {"status": "Rejected", "error": error.to_json()}


def test_a_503_says_when_to_come_back_and_a_501_does_not() -> None:
    assert int(frontdoor.unavailable("x").headers["Retry-After"]) >= frontdoor.RETRY_AFTER_FLOOR
    assert "Retry-After" not in frontdoor.ledger_off().headers


def test_405_lists_the_methods_and_shows_a_bounded_method_name() -> None:
    answer = frontdoor.method_not_allowed("X" * 500, ("GET", "POST"))

    assert answer.headers == {"Allow": "GET, POST"}
    assert len(answer.text()) < 200


# -- the request message --------------------------------------------------------------------------------


def _queued(document: dict[str, Any]) -> tuple[dict[str, Any], BackupRequest]:
    settings = make_settings()
    envelope = unwrap(json.dumps(document))
    request = parse_request(envelope.document, settings=settings, now=NOW, fallback_correlation_id="gen-1")
    return json.loads(queued_text(envelope.document, request)), request


@pytest.mark.parametrize("document", [
    names(), names(retentionDays=14), names(properties={"recoveryPointExpiryTimeInUTC": "2027-01-01T00:00:00Z"}),
    names("sql"), names("sql", properties={"backupType": "Log"}), names("fileshare", correlationId="given"),
])
def test_the_queued_request_reads_back_as_the_request_the_ledger_recorded_even_days_later(
    document: dict[str, Any],
) -> None:
    queued, request = _queued(document)

    later = parse_request(queued, settings=make_settings(), now=NOW + timedelta(days=3),
                          fallback_correlation_id="other")

    assert later == request
    assert Fingerprint.of(later) == Fingerprint.of(request)


def test_the_queued_request_is_the_posted_document_under_its_key() -> None:
    queued, _ = _queued(names(retentionDays=14))

    assert queued["correlationId"] == "gen-1"
    assert "retentionDays" not in queued
    assert queued["properties"] == {"recoveryPointExpiryTimeInUTC": "2026-12-10T12:00:00Z"}
    assert {key: queued[key] for key in names()} == names()


def test_an_event_posted_is_queued_as_its_data() -> None:
    event = {"specversion": "1.0", "id": "ce-1", "source": "s", "type": "t", "data": names()}
    envelope = unwrap(json.dumps(event))
    request = parse_request(envelope.document, settings=make_settings(), now=NOW, fallback_correlation_id="ce-1")

    queued = json.loads(queued_text(envelope.document, request))

    assert "specversion" not in queued
    assert queued["correlationId"] == "ce-1"


def test_a_post_of_a_request_that_ended_says_how_and_names_a_resource_that_found_no_item() -> None:
    vm = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
    ended = record(item_id=vm, phase="finished", status="Failed", result='{"status":"Failed"}')

    answer = frontdoor.accepted(ended, LOCATION, NOW)

    assert answer.status == 202 and not isinstance(answer.body, str)
    assert answer.body["status"] == "Failed"
    assert answer.body["resourceId"] == vm and "protectedItemId" not in answer.body
