"""shared.followup: the follow-up message round trip, and what an untrusted one is refused for."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.errors import ErrorInfo, RequestRejected
from shared.followup import MAX_RAW_MESSAGE_BYTES, SCHEMA_VERSION, FollowUp, Phase
from tests.unit.builders import ITEMS, NOW, backup_request, follow_up, location_url, operation_url, resource_target


def full_follow_up(phase: Phase, kind: str = "vm") -> FollowUp:
    request = backup_request(kind, correlationId=f"corr-{kind}")
    return FollowUp(
        request=request,
        phase=phase,
        requested_at=NOW,
        phase_started_at=NOW + timedelta(seconds=61, microseconds=5),
        attempt=2,
        polls=7,
        throttled=3,
        async_operation_url=operation_url(request),
        location_url=location_url(request),
        job_id="00000000-0000-0000-0000-000000000000",
        triggered_at=NOW + timedelta(seconds=1),
        trigger_uncertain_since=NOW - timedelta(minutes=3),
        last_error=ErrorInfo("Http503", "down", target="t", details=({"code": "d"},), http_status=503,
                             request_id="r", correlation_request_id="c", additional_info=({"type": "i"},)),
        last_state={"status": "InProgress", "startTime": "2026-11-26T12:00:04Z"},
    )


def round_trip(value: FollowUp) -> FollowUp:
    return FollowUp.from_document(json.loads(value.to_text()))


ITEM_PHASES = [phase for phase in Phase if phase is not Phase.RESOLVE]


def resolving(**changes: object) -> FollowUp:
    base = FollowUp(request=None, phase=Phase.RESOLVE, requested_at=NOW, phase_started_at=NOW,
                    target=resource_target(location="westeurope", correlationId="corr-vm"))
    return base.advance(**changes) if changes else base


@pytest.mark.parametrize("phase", ITEM_PHASES)
@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_round_trip_with_every_field(phase: Phase, kind: str) -> None:
    original = full_follow_up(phase, kind)

    assert round_trip(original) == original


@pytest.mark.parametrize("phase", ITEM_PHASES)
def test_round_trip_of_a_resolved_request_that_keeps_its_target(phase: Phase) -> None:
    original = full_follow_up(phase).advance(target=resource_target())

    assert round_trip(original) == original
    assert json.loads(original.to_text())["target"]["resourceId"] == resource_target().resource.id


def test_round_trip_while_resolving() -> None:
    original = resolving(attempt=3, throttled=1, last_error=ErrorInfo("Http503", "down"),
                         trigger_uncertain_since=NOW).keeping_raw_message('{"resourceId": "x"}')

    assert round_trip(original) == original
    document = json.loads(original.to_text())
    assert document["phase"] == "resolve"
    assert "request" not in document
    assert document["correlationId"] == "corr-vm"
    assert document["rawMessage"] == '{"resourceId": "x"}'
    assert "rawMessageTruncated" not in document
    assert (original.correlation_id, original.label) == ("corr-vm", "testrg/v1win2012r")


@pytest.mark.parametrize("text", ["x" * (MAX_RAW_MESSAGE_BYTES * 2), "\u0001" * MAX_RAW_MESSAGE_BYTES,
                                  '"' * MAX_RAW_MESSAGE_BYTES, "é" * MAX_RAW_MESSAGE_BYTES])
def test_a_long_raw_message_is_cut_to_fit_and_says_so(text: str) -> None:
    kept = resolving().keeping_raw_message(text)

    assert kept.raw_message is not None and text.startswith(kept.raw_message)
    assert kept.raw_message_truncated is True
    assert len(json.dumps(kept.raw_message)) <= MAX_RAW_MESSAGE_BYTES
    assert round_trip(kept).raw_message_truncated is True
    assert len(kept.to_text().encode()) < 24 * 1024


def test_a_follow_up_names_its_request_or_its_target() -> None:
    with pytest.raises(ValueError, match="names its request"):
        FollowUp(request=None, phase=Phase.TRIGGER, requested_at=NOW, phase_started_at=NOW,
                 target=resource_target())
    with pytest.raises(ValueError, match="names its request"):
        FollowUp(request=None, phase=Phase.RESOLVE, requested_at=NOW, phase_started_at=NOW)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"target": None}, "target"),
        ({"target": "x"}, "target"),
        ({"request": {"subscriptionId": "x"}}, "request"),
    ],
)
def test_a_resolving_follow_up_needs_its_target_and_no_request(changes: dict[str, Any], field: str) -> None:
    document = {**json.loads(resolving().to_text()), **changes}

    assert refused(document).field_name == field


def test_a_tampered_target_is_refused() -> None:
    document = json.loads(resolving().to_text())
    document["target"]["resourceId"] += "/../../x"

    assert refused(document).field_name == "resourceId"


def test_round_trip_of_a_minimal_follow_up() -> None:
    original = follow_up()

    assert round_trip(original) == original


def test_text_is_compact_json_without_empty_fields() -> None:
    text = follow_up(Phase.OPERATION).to_text()
    document = json.loads(text)

    assert ", " not in text
    assert ": " not in text.replace("Z", "")
    assert document["schemaVersion"] == SCHEMA_VERSION == 1
    assert document["phase"] == "operation"
    assert document["correlationId"] == "corr-1"
    assert document["request"]["correlationId"] == "corr-1"
    assert document["requestedAt"] == "2026-11-26T12:00:00Z"
    assert document["attempt"] == 0
    assert document["polls"] == 0
    assert document["throttled"] == 0
    assert not {"asyncOperationUrl", "locationUrl", "jobId", "triggeredAt", "triggerUncertainSince", "lastError",
                "lastState"} & set(document)


def test_text_of_a_full_follow_up() -> None:
    document = json.loads(full_follow_up(Phase.JOB).to_text())

    assert document["phaseStartedAt"] == "2026-11-26T12:01:01.000005Z"
    assert document["triggerUncertainSince"] == "2026-11-26T11:57:00Z"
    assert document["lastError"] == {"code": "Http503", "message": "down", "target": "t", "details": [{"code": "d"}],
                                     "additionalInfo": [{"type": "i"}], "httpStatus": 503, "requestId": "r",
                                     "correlationRequestId": "c"}
    assert document["request"]["protectedItemId"].endswith("/protectedItems/VM;iaasvmcontainerv2;testrg;v1win2012r")


def test_advance_changes_only_what_it_is_given() -> None:
    original = full_follow_up(Phase.OPERATION)
    advanced = original.advance(polls=8)

    assert advanced.polls == 8
    assert advanced.advance(polls=7) == original


def test_enter_resets_the_phase_counters() -> None:
    later = NOW + timedelta(hours=1)
    entered = full_follow_up(Phase.OPERATION).enter(Phase.JOB, later, job_id="j-2")

    assert entered.phase is Phase.JOB
    assert entered.phase_started_at == later
    assert (entered.attempt, entered.polls, entered.throttled, entered.last_error) == (0, 0, 0, None)
    assert entered.job_id == "j-2"
    assert entered.requested_at == NOW
    assert entered.async_operation_url is not None


# --- refused -------------------------------------------------------------------------------


def document_of(value: FollowUp | None = None, /, **changes: object) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((value or full_follow_up(Phase.OPERATION)).to_text())
    document.update(changes)
    return document


def refused(document: dict[str, Any]) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        FollowUp.from_document(document)
    return caught.value


@pytest.mark.parametrize("version", [0, 2, "1", 1.5, None, [1]])
def test_wrong_schema_version(version: object) -> None:
    error = refused(document_of(schemaVersion=version))

    assert error.field_name == "schemaVersion"


def test_missing_schema_version() -> None:
    document = document_of()
    del document["schemaVersion"]

    assert refused(document).field_name == "schemaVersion"


@pytest.mark.parametrize("phase", ["poll", "Operation", "", None, 1, ["job"], {"p": 1}])
def test_unknown_phase(phase: object) -> None:
    error = refused(document_of(phase=phase))

    assert error.field_name == "phase"
    assert "unknown phase" in error.reason


@pytest.mark.parametrize("request_value", [None, "x", [], 42])
def test_request_must_be_an_object(request_value: object) -> None:
    assert refused(document_of(request=request_value)).field_name == "request"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vaultName": "../vault"}, "vaultName"),
        ({"vaultName": "x"}, "vaultName"),
        ({"subscriptionId": "evil"}, "subscriptionId"),
        ({"resourceGroupName": "rg/../x"}, "resourceGroupName"),
        ({"fabricName": ".."}, "fabricName"),
        ({"containerName": "a/b"}, "containerName"),
        ({"protectedItemName": "VM;a?b"}, "protectedItemName"),
        ({"protectedItemName": ".."}, "protectedItemName"),
        ({"correlationId": None}, "request"),
        ({"properties": "x"}, "request"),
    ],
)
def test_tampered_request_is_refused(change: dict[str, Any], field: str) -> None:
    document = document_of()
    document["request"].update(change)

    assert refused(document).field_name == field


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("requestedAt", None), ("requestedAt", "yesterday"), ("requestedAt", 1700000000),
        ("phaseStartedAt", "2026-13-01T00:00:00Z"), ("triggeredAt", "soon"), ("triggerUncertainSince", 5),
        ("attempt", -1), ("attempt", "1"), ("attempt", True), ("attempt", 1.5),
        ("polls", -3), ("polls", "2"), ("throttled", -1), ("throttled", False), ("throttled", "0"),
        ("asyncOperationUrl", 5), ("locationUrl", ["x"]), ("jobId", {"id": 1}),
    ],
)
def test_malformed_fields_are_refused_by_name(key: str, value: object) -> None:
    assert refused(document_of(**{key: value})).field_name == key


def test_missing_counts_default_to_zero() -> None:
    document = document_of()
    del document["attempt"], document["polls"], document["throttled"]

    value = FollowUp.from_document(document)
    assert (value.attempt, value.polls, value.throttled) == (0, 0, 0)


@pytest.mark.parametrize("last_state", ["x", 5, ["InProgress"]])
def test_non_object_last_state_is_dropped(last_state: object) -> None:
    assert FollowUp.from_document(document_of(lastState=last_state)).last_state is None


@pytest.mark.parametrize("last_error", ["boom", 5, ["x"]])
def test_non_object_last_error_is_dropped(last_error: object) -> None:
    assert FollowUp.from_document(document_of(lastError=last_error)).last_error is None


def test_partial_last_error() -> None:
    value = FollowUp.from_document(document_of(lastError={}))

    assert value.last_error == ErrorInfo("Unknown", "")


@pytest.mark.parametrize("odd", [5, True, "text", {"code": "d"}, [1, "x"]])
def test_malformed_last_error_lists_are_dropped(odd: object) -> None:
    value = FollowUp.from_document(document_of(lastError={"code": "X", "details": odd, "additionalInfo": odd}))

    assert value.last_error is not None
    assert (value.last_error.code, value.last_error.details, value.last_error.additional_info) == ("X", (), ())


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_out_of_range_instant_is_refused(value: str) -> None:
    assert refused(document_of(requestedAt=value)).field_name == "requestedAt"
