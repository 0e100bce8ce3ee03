"""shared.workflow: handle_request / handle_follow_up end to end over FakeTransport, a queue and a clock."""

from __future__ import annotations

import base64
import copy
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared.followup import FollowUp, Phase
from shared.messages import BackupRequest
from shared.workflow import Delivery, Services, handle_follow_up, handle_request
from tests.fakes import (
    ARM,
    FAKE_TOKEN,
    Clock,
    FakeCredential,
    FakeTransport,
    RecordingSender,
    Reply,
    SentMessage,
    load_example,
)
from tests.unit.builders import (
    NOW,
    OTHER_SUB,
    SUB,
    backup_request,
    location_url,
    make_settings,
    names,
    operation_url,
    result_of,
    services,
)

OPERATION = load_example("ProtectedItemOperationStatus.json")["responses"]["200"]["body"]
JOB = load_example("GetJobDetails.json")["responses"]["200"]["body"]
JOB_ID = OPERATION["properties"]["jobId"]
STATUS_QUEUE = "backup-status"
REFUSED = {"code": "UserErrorGuestAgentStatusUnavailable",
           "message": "VM agent is unable to communicate with the Azure Backup Service."}


def request_body(kind: str = "vm", **changes: Any) -> bytes:
    return json.dumps(names(kind, **changes)).encode()


def parsed(kind: str = "vm", **changes: Any) -> BackupRequest:
    return backup_request(kind, **changes)


def ended_job(status: str, **properties: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(JOB)
    body["properties"].update({"status": status, "endTime": "2026-11-26T12:41:10Z", **properties})
    return body


def op_reply(status: str, *, job_id: str | None = None, error: dict[str, Any] | None = None,
             retry_after: str | None = None) -> Reply:
    body: dict[str, Any] = {"id": "op-1", "name": "op-1", "status": status, "startTime": "2026-11-26T12:00:01Z"}
    if job_id is not None:
        body = {**copy.deepcopy(OPERATION), "status": status}
        body["properties"]["jobId"] = job_id
    if error is not None:
        body["error"] = error
    return Reply(200, body=body, headers={"Retry-After": retry_after} if retry_after else {})


def accepted(request: BackupRequest, *, with_async: bool = True, retry_after: str = "60") -> Reply:
    headers = {"Location": location_url(request), "Retry-After": retry_after}
    if with_async:
        headers["Azure-AsyncOperation"] = operation_url(request)
    return Reply(202, headers=headers)


def script(
    request: BackupRequest,
    *,
    post: list[Reply] | None = None,
    operations: list[Reply] | None = None,
    results: list[Reply] | None = None,
    jobs: list[Reply] | None = None,
    job_lists: list[Reply] | None = None,
) -> FakeTransport:
    transport = FakeTransport()
    transport.on("POST", r"/backup\?", *(post or [accepted(request)]))
    transport.on("GET", r"/operationsStatus/", *(operations or [op_reply("Succeeded", job_id=JOB_ID)]))
    transport.on("GET", r"/operationResults/", *(results or [Reply(204)]))
    transport.on("GET", r"/backupJobs/[^?]+\?", *(jobs or [Reply(200, body=ended_job("Completed"))]))
    transport.on("GET", r"/backupJobs\?", *(job_lists or [Reply(200, body={"value": []})]))
    return transport


def job_entry(name: str, start: datetime, friendly: str = "v1win2012r") -> dict[str, Any]:
    return {"name": name, "id": f"/subscriptions/{SUB}/x/backupJobs/{name}",
            "properties": {"entityFriendlyName": friendly, "operation": "Backup", "status": "InProgress",
                           "startTime": start.isoformat().replace("+00:00", "Z")}}


@dataclass
class Walk:
    result: dict[str, Any]
    follow_ups: list[SentMessage]
    transport: FakeTransport

    @property
    def delays(self) -> list[int]:
        return [message.delay_seconds for message in self.follow_ups]

    def calls(self) -> list[str]:
        """Each HTTP call as METHOD and the last path segment's kind."""
        kinds = []
        for sent in self.transport.sent:
            path = urlsplit(sent.url).path
            kind = next(name for name in ("operationsStatus", "operationResults", "backupJobs/", "backupJobs",
                                          "backup") if f"/{name}" in path)
            kinds.append(f"{sent.method} {kind.rstrip('/') + ('/id' if kind.endswith('/') else '')}")
        return kinds


def walk(
    body: bytes,
    transport: FakeTransport,
    *,
    services_: tuple[Services, RecordingSender, Clock] | None = None,
    delivery: Delivery | None = None,
    strict_schema: bool = True,
) -> Walk:
    """Drive one request through the queues until its result, advancing the clock by each delay."""
    svc, sender, clock = services_ or services(transport)
    outcome = handle_request(body, delivery or Delivery("msg-1", 1, NOW), svc)
    follow_ups: list[SentMessage] = []
    while outcome is None:
        assert len(sender.messages) == 1
        message = sender.take()
        assert message.queue == STATUS_QUEUE
        assert message.text.startswith("{")  # plain JSON, never base64
        follow_ups.append(message)
        assert len(follow_ups) < 60, "the walk does not end"
        clock.advance(message.delay_seconds)
        outcome = handle_follow_up(message.text.encode(), Delivery(f"f-{len(follow_ups)}", 1, clock.now), svc)
    assert sender.messages == []
    result = result_of(outcome) if strict_schema else json.loads(outcome)
    return Walk(result, follow_ups, transport)


def follow_up_of(message: SentMessage) -> FollowUp:
    return FollowUp.from_document(json.loads(message.text))


# --- rejected ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "overrides", "target", "code"),
    [
        (b"not json at all", {}, "message", "InvalidRequest"),
        (b"", {}, "message", "InvalidRequest"),
        (b"\xff\xfe\x00", {}, "message", "InvalidRequest"),
        (request_body(vaultName="1bad"), {}, "vaultName", "InvalidRequest"),
        (request_body(protectedItemName="VM;a/../b"), {}, "protectedItemName", "InvalidRequest"),
        (request_body("sql", properties={}), {}, "properties.backupType", "InvalidRequest"),
        (request_body(properties={"recoveryPointExpiryTimeInUTC": "2020-01-01T00:00:00Z"}), {},
         "properties.recoveryPointExpiryTimeInUTC", "InvalidRequest"),
        (request_body(), {"ALLOWED_SUBSCRIPTIONS": OTHER_SUB}, "subscriptionId", "NotAllowed"),
        (request_body(), {"ALLOWED_VAULTS": "other-vault"}, "vaultName", "NotAllowed"),
        (base64.b64encode(request_body(extra=1)), {}, "extra", "InvalidRequest"),
    ],
)
def test_a_rejected_request_sends_nothing(body: bytes, overrides: dict[str, str], target: str, code: str) -> None:
    transport = script(parsed())
    credential = FakeCredential()
    svc, sender, _ = services(transport, settings=make_settings(**overrides), credential=credential)

    outcome = handle_request(body, Delivery("msg-1", 1, NOW), svc)

    assert outcome is not None
    result = result_of(outcome)
    assert result["status"] == "Rejected"
    assert result["error"]["target"] == target
    assert result["error"]["code"] == code
    assert result["rawMessage"] == body.decode("utf-8", "replace")
    assert result["messageId"] == "msg-1"
    assert result["correlationId"] == "msg-1"
    assert transport.sent == []
    assert sender.messages == []
    assert credential.scopes == []


def test_a_rejected_request_echoes_its_correlation_id_and_the_decoded_request() -> None:
    document = names(vaultName="1bad", correlationId="change-4711")
    svc, _, _ = services(FakeTransport())

    result = result_of(handle_request(json.dumps(document).encode(), Delivery("msg-1", 1, NOW), svc) or "")

    assert result["correlationId"] == "change-4711"
    assert result["request"] == document
    assert result["transport"] == "json"


@pytest.mark.parametrize("wrapper", ["eventgrid", "cloudevents"])
def test_a_rejected_event_is_correlated_by_its_event_id(wrapper: str) -> None:
    document = names(vaultName="1bad")
    event: dict[str, Any] = {"id": "evt-1", "data": document}
    event.update({"eventType": "Backup.Requested"} if wrapper == "eventgrid" else {"specversion": "1.0"})
    svc, _, _ = services(FakeTransport())

    result = result_of(handle_request(json.dumps(event).encode(), Delivery("msg-1", 1, NOW), svc) or "")

    assert result["correlationId"] == "evt-1"


def test_a_name_that_cannot_be_encoded_is_rejected_not_raised() -> None:
    body = request_body(protectedItemName="VM;iaasvmcontainerv2;rg;vm\ud800")  # json.dumps escapes it as \ud800
    transport = script(parsed())
    svc, sender, _ = services(transport)

    outcome = handle_request(body, Delivery("msg-1", 1, NOW), svc)

    assert outcome is not None
    result = result_of(outcome)
    assert (result["status"], result["error"]["target"]) == ("Rejected", "protectedItemName")
    assert sender.messages == []
    assert transport.sent == []


def test_no_nesting_depth_escapes_handle_request() -> None:
    svc, sender, _ = services(FakeTransport())
    limit = sys.getrecursionlimit()
    for depth in range(max(1, limit - 250), limit + 50):
        body = ('{"x":' + "[" * depth + "]" * depth + "}").encode()
        outcome = handle_request(body, Delivery("msg-1", 1, NOW), svc)
        assert outcome is not None
    assert sender.messages == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_results_are_strict_json(constant: str) -> None:
    body = request_body()[:-1] + f', "retentionDays": {constant}}}'.encode()
    svc, _, _ = services(FakeTransport())
    outcome = handle_request(body, Delivery("msg-1", 1, NOW), svc) or ""

    def refuse(name: str) -> None:
        raise ValueError(name)

    assert json.loads(outcome, parse_constant=refuse)["status"] == "Rejected"


# --- accepted ------------------------------------------------------------------------------


def test_an_accepted_request_queues_one_follow_up_delayed_by_retry_after() -> None:
    request = parsed(correlationId="c-accept")
    transport = script(request, post=[accepted(request, retry_after="45")])
    svc, sender, _ = services(transport)

    outcome = handle_request(request_body(correlationId="c-accept"), Delivery("msg-1", 1, NOW), svc)

    assert outcome is None
    assert len(transport.calls("POST")) == 1
    assert len(transport.sent) == 1
    [message] = sender.messages
    assert (message.queue, message.delay_seconds) == (STATUS_QUEUE, 45)
    value = follow_up_of(message)
    assert value.phase is Phase.OPERATION
    assert value.async_operation_url == operation_url(request)
    assert value.location_url == location_url(request)
    assert value.triggered_at == NOW
    assert value.request == request


def test_status_queue_name_comes_from_settings() -> None:
    svc, sender, _ = services(script(parsed()), settings=make_settings(BACKUP_STATUS_QUEUE="my-status"))

    handle_request(request_body(), Delivery("msg-1", 1, NOW), svc)

    assert sender.messages[0].queue == "my-status"


@pytest.mark.parametrize("wrapper", ["eventgrid", "cloudevents", "base64"])
def test_wrapped_requests_are_correlated_by_event_id(wrapper: str) -> None:
    document = names()
    if wrapper == "eventgrid":
        body = json.dumps([{"id": "evt-7", "eventType": "Backup.Requested", "data": document}]).encode()
    elif wrapper == "cloudevents":
        data = base64.b64encode(json.dumps(document).encode()).decode()
        body = json.dumps({"specversion": "1.0", "id": "evt-7", "data_base64": data}).encode()
    else:
        body = base64.b64encode(json.dumps(document).encode())
    svc, sender, _ = services(script(parsed()))

    handle_request(body, Delivery("msg-1", 1, NOW), svc)

    expected = "msg-1" if wrapper == "base64" else "evt-7"
    assert follow_up_of(sender.messages[0]).correlation_id == expected


# --- redelivery: never trigger twice blindly ------------------------------------------------


def test_a_redelivered_request_adopts_a_found_job_instead_of_posting() -> None:
    inserted = NOW - timedelta(minutes=2)
    transport = script(parsed(), job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, _ = services(transport)

    outcome = handle_request(request_body(), Delivery("msg-1", 2, inserted), svc)

    assert outcome is None
    assert transport.calls("POST") == []
    [listing] = transport.calls("GET", r"/backupJobs\?")
    assert "startTime eq '2026-11-26 11:53:00 AM'" in parse_qs(urlsplit(listing.url).query)["$filter"][0]
    [message] = sender.messages
    value = follow_up_of(message)
    assert (value.phase, value.job_id, message.delay_seconds) == (Phase.JOB, "job-found", 60)
    assert value.triggered_at == inserted
    assert value.trigger_uncertain_since is None


def test_a_redelivered_request_posts_when_no_job_is_found() -> None:
    transport = script(parsed(), job_lists=[Reply(200, body={"value": [job_entry("x", NOW, friendly="other")]})])
    svc, sender, _ = services(transport)

    outcome = handle_request(request_body(), Delivery("msg-1", 2, NOW - timedelta(minutes=2)), svc)

    assert outcome is None
    assert [sent.method for sent in transport.sent] == ["GET", "POST"]
    assert follow_up_of(sender.messages[0]).phase is Phase.OPERATION


def test_a_redelivered_request_without_insertion_time_looks_back_from_now() -> None:
    transport = script(parsed())
    svc, _, _ = services(transport)

    handle_request(request_body(), Delivery("msg-1", 3, None), svc)

    [listing] = transport.calls("GET", r"/backupJobs\?")
    assert "startTime eq '2026-11-26 11:55:00 AM'" in parse_qs(urlsplit(listing.url).query)["$filter"][0]


def test_a_redelivered_request_with_tracking_off_ends_triggered_on_the_found_job() -> None:
    transport = script(parsed(), job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, _ = services(transport, settings=make_settings(TRACK_BACKUP_JOBS="false"))

    outcome = handle_request(request_body(), Delivery("msg-1", 2, NOW), svc)

    result = result_of(outcome or "")
    assert (result["status"], result["jobId"]) == ("Triggered", "job-found")
    assert transport.calls("POST") == []
    assert sender.messages == []


def test_a_first_delivery_posts_without_listing() -> None:
    transport = script(parsed())
    svc, _, _ = services(transport)

    handle_request(request_body(), Delivery("msg-1", 1, NOW - timedelta(minutes=2)), svc)

    assert [sent.method for sent in transport.sent] == ["POST"]


def test_delivery_of_a_queue_message() -> None:
    @dataclass
    class Message:
        id: str | None
        dequeue_count: int | None
        insertion_time: datetime | None

    assert Delivery.of(Message("m", None, None)) == Delivery("m", 1, None)
    assert Delivery.of(Message("m", 1, NOW)).redelivered is False
    assert Delivery.of(Message("m", 2, NOW)).redelivered is True
    naive = Delivery.of(Message("m", 2, NOW.replace(tzinfo=None)))
    assert naive.insertion_time == NOW  # the queue service speaks UTC
    assert naive.insertion_time is not None
    assert naive.insertion_time.utcoffset() == timedelta(0)


# --- transient failures --------------------------------------------------------------------


def test_a_throttled_post_is_tried_again_after_retry_after() -> None:
    request = parsed()
    throttled = Reply(429, body={"error": {"code": "TooManyRequests", "message": "slow down"}},
                      headers={"Retry-After": "30", "x-ms-request-id": "req-429"})
    transport = script(request, post=[throttled, accepted(request)])
    svc, sender, clock = services(transport)

    assert handle_request(request_body(), Delivery("msg-1", 1, NOW), svc) is None

    first = sender.take()
    value = follow_up_of(first)
    assert value.phase is Phase.TRIGGER
    assert 30 <= first.delay_seconds <= 45
    assert value.last_error is not None
    assert (value.last_error.code, value.last_error.http_status) == ("TooManyRequests", 429)
    assert value.trigger_uncertain_since is None

    clock.advance(first.delay_seconds)
    assert handle_follow_up(first.text.encode(), Delivery("f-1", 1, clock.now), svc) is None

    # a retried POST first looks for a job an earlier invocation of the request may have started
    assert [sent.method for sent in transport.sent] == ["POST", "GET", "POST"]
    assert "/backupJobs?" in transport.sent[1].url
    second = sender.take()
    assert follow_up_of(second).phase is Phase.OPERATION
    assert second.delay_seconds == 60


def test_a_lost_post_answer_looks_for_the_job_before_posting_again() -> None:
    request = parsed()
    transport = script(request, post=[Reply(0, raise_exc=requests.ReadTimeout("read timed out")), accepted(request)],
                       job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, clock = services(transport)

    assert handle_request(request_body(), Delivery("msg-1", 1, NOW), svc) is None
    first = sender.take()
    value = follow_up_of(first)
    assert value.phase is Phase.TRIGGER
    assert value.trigger_uncertain_since == NOW
    assert 5 <= first.delay_seconds <= 10

    clock.advance(first.delay_seconds)
    handle_follow_up(first.text.encode(), Delivery("f-1", 1, clock.now), svc)

    assert [sent.method for sent in transport.sent] == ["POST", "GET"]
    adopted = follow_up_of(sender.take())
    assert (adopted.phase, adopted.job_id, adopted.triggered_at) == (Phase.JOB, "job-found", NOW)


def test_a_lost_post_answer_with_no_job_found_posts_again() -> None:
    request = parsed()
    transport = script(request, post=[Reply(0, raise_exc=requests.ReadTimeout("read timed out")), accepted(request)])

    result = walk(request_body(), transport)

    assert [call for call in result.calls() if call.startswith("POST")] == ["POST backup", "POST backup"]
    assert result.calls()[:3] == ["POST backup", "GET backupJobs", "POST backup"]
    assert result.result["status"] == "Succeeded"


@pytest.mark.parametrize("status", [500, 503, 504, 408])
def test_a_post_answered_with_a_server_error_looks_for_the_job_before_posting_again(status: int) -> None:
    request = parsed()
    transport = script(request, post=[Reply(status, body=b"oops"), accepted(request)],
                       job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])

    result = walk(request_body(), transport)

    assert result.calls()[:3] == ["POST backup", "GET backupJobs", "GET backupJobs/id"]
    assert len(transport.calls("POST")) == 1
    assert result.result["jobId"] == "job-found"


@pytest.mark.parametrize("status", [429, 401])
def test_a_post_refused_before_reaching_the_service_is_not_uncertain_but_still_looks(status: int) -> None:
    request = parsed()
    transport = script(request, post=[Reply(status, headers={"Retry-After": "7"}), accepted(request)])

    result = walk(request_body(), transport)

    assert result.calls()[:3] == ["POST backup", "GET backupJobs", "POST backup"]
    assert follow_up_of(result.follow_ups[0]).trigger_uncertain_since is None


def test_a_refused_connection_is_not_uncertain_but_the_retry_still_looks() -> None:
    request = parsed()
    refused = requests.ConnectTimeout("connect timed out")
    transport = script(request, post=[Reply(0, raise_exc=refused), accepted(request)])

    result = walk(request_body(), transport)

    assert result.calls()[:3] == ["POST backup", "GET backupJobs", "POST backup"]
    assert follow_up_of(result.follow_ups[0]).trigger_uncertain_since is None


def test_a_redelivered_follow_up_in_the_trigger_phase_looks_first() -> None:
    request = parsed()
    transport = script(request, job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, _ = services(transport)
    text = FollowUp(request, Phase.TRIGGER, NOW, NOW, attempt=1).to_text()

    handle_follow_up(text.encode(), Delivery("f-1", 2, NOW - timedelta(seconds=30)), svc)

    assert transport.calls("POST") == []
    assert follow_up_of(sender.take()).job_id == "job-found"


def _job_window_start(transport: FakeTransport) -> str:
    """The startTime of the one job listing sent: five minutes before the instant the app looked from."""
    [listing] = transport.calls("GET", r"/backupJobs\?")
    clause = parse_qs(urlsplit(listing.url).query)["$filter"][0]
    return clause.split("startTime eq '")[1].split("'")[0]


# A follow-up of the trigger phase whose first POST was sent without looking (attempt 0, never
# throttled): only the redelivery says that an earlier invocation may have posted.
FIRST_REQUEST = parsed()
FIRST_TRY = FollowUp(FIRST_REQUEST, Phase.TRIGGER, NOW - timedelta(minutes=10), NOW - timedelta(minutes=10))


def test_a_redelivered_first_try_follow_up_looks_from_its_insertion_and_adopts_the_job() -> None:
    inserted = NOW - timedelta(seconds=30)
    transport = script(FIRST_REQUEST, job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, _ = services(transport)

    assert handle_follow_up(FIRST_TRY.to_text().encode(), Delivery("f-1", 2, inserted), svc) is None

    assert transport.calls("POST") == []
    assert _job_window_start(transport) == "2026-11-26 11:54:30 AM"
    adopted = follow_up_of(sender.take())
    assert (adopted.phase, adopted.job_id) == (Phase.JOB, "job-found")
    assert adopted.triggered_at == inserted  # the earliest the lost POST can have been sent
    assert adopted.trigger_uncertain_since is None


def test_a_redelivered_first_try_follow_up_without_insertion_time_looks_from_the_request() -> None:
    transport = script(FIRST_REQUEST, job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, _ = services(transport)

    handle_follow_up(FIRST_TRY.to_text().encode(), Delivery("f-1", 3, None), svc)

    assert transport.calls("POST") == []
    assert _job_window_start(transport) == "2026-11-26 11:45:00 AM"
    assert follow_up_of(sender.take()).triggered_at == FIRST_TRY.requested_at


def test_a_redelivered_follow_up_keeps_the_earlier_uncertain_instant() -> None:
    earlier = NOW - timedelta(minutes=20)
    follow_up = FIRST_TRY.advance(trigger_uncertain_since=earlier)
    transport = script(FIRST_REQUEST, job_lists=[Reply(200, body={"value": [job_entry("job-found", NOW)]})])
    svc, sender, _ = services(transport)

    handle_follow_up(follow_up.to_text().encode(), Delivery("f-1", 2, NOW - timedelta(seconds=30)), svc)

    assert _job_window_start(transport) == "2026-11-26 11:35:00 AM"
    assert follow_up_of(sender.take()).triggered_at == earlier


def test_a_redelivered_first_try_follow_up_that_finds_no_job_posts_once_and_moves_on() -> None:
    transport = script(FIRST_REQUEST)
    svc, sender, _ = services(transport)

    handle_follow_up(FIRST_TRY.to_text().encode(), Delivery("f-1", 2, NOW - timedelta(seconds=30)), svc)

    assert [sent.method for sent in transport.sent] == ["GET", "POST"]
    posted = follow_up_of(sender.take())
    assert posted.phase is Phase.OPERATION
    assert (posted.triggered_at, posted.trigger_uncertain_since) == (NOW, None)


def test_a_first_delivery_of_a_first_try_follow_up_posts_without_listing() -> None:
    transport = script(FIRST_REQUEST)
    svc, _, _ = services(transport)

    handle_follow_up(FIRST_TRY.to_text().encode(), Delivery("f-1", 1, NOW - timedelta(seconds=30)), svc)

    assert [sent.method for sent in transport.sent] == ["POST"]


def test_a_redelivered_follow_up_past_the_trigger_phase_is_not_marked_uncertain() -> None:
    follow_up = FIRST_TRY.enter(Phase.OPERATION, NOW - timedelta(minutes=9), async_operation_url=operation_url(
        FIRST_REQUEST), triggered_at=NOW - timedelta(minutes=9))
    transport = script(FIRST_REQUEST, operations=[op_reply("InProgress", retry_after="60")])
    svc, sender, _ = services(transport)

    handle_follow_up(follow_up.to_text().encode(), Delivery("f-1", 2, NOW - timedelta(seconds=30)), svc)

    assert transport.calls("GET", r"/backupJobs\?") == []
    assert follow_up_of(sender.take()).trigger_uncertain_since is None


def test_transient_failures_end_failed_with_the_last_error_after_the_attempts() -> None:
    request = parsed()
    transport = script(request, post=[Reply(503, body=b"busy", headers={"x-ms-request-id": "r-503"})])
    svc = services(transport, settings=make_settings(RETRY_MAX_ATTEMPTS="4"))

    result = walk(request_body(), transport, services_=svc, strict_schema=False)

    assert len(transport.calls("POST")) == 4
    assert result.result["status"] == "Failed"
    assert result.result["error"]["code"] == "Http503"
    assert result.result["error"]["requestId"] == "r-503"
    assert all(5 <= delay <= 600 for delay in result.delays)


def test_a_token_failure_is_transient_and_sends_nothing() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    request = parsed()
    transport = script(request)
    credential = FakeCredential(ClientAuthenticationError("IMDS down"))
    svc = services(transport, credential=credential)

    result = walk(request_body(), transport, services_=svc)

    assert result.result["status"] == "Succeeded"
    assert follow_up_of(result.follow_ups[0]).phase is Phase.TRIGGER
    assert result.calls()[:2] == ["GET backupJobs", "POST backup"]
    assert len(transport.calls("POST")) == 1


def test_a_transient_operation_poll_failure_is_tried_again() -> None:
    request = parsed()
    transport = script(request, operations=[Reply(500, body=b"oops"), Reply(200, body=b"<html>"),
                                            op_reply("Succeeded", job_id=JOB_ID)])

    result = walk(request_body(), transport)

    assert result.result["status"] == "Succeeded"
    assert result.calls()[:4] == ["POST backup", "GET operationsStatus", "GET operationsStatus",
                                  "GET operationsStatus"]


# --- whole walks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "object_type"),
    [("vm", "IaasVMBackupRequest"), ("fileshare", "AzureFileShareBackupRequest"),
     ("sql", "AzureWorkloadBackupRequest"), ("hana", "AzureWorkloadBackupRequest")],
)
def test_a_whole_walk_to_succeeded(kind: str, object_type: str) -> None:
    request = parsed(kind, correlationId=f"walk-{kind}")
    transport = script(
        request,
        operations=[op_reply("InProgress", retry_after="20"), op_reply("Succeeded", job_id=JOB_ID)],
        jobs=[Reply(200, body=JOB), Reply(200, body=ended_job("Completed"))],
    )

    result = walk(request_body(kind, correlationId=f"walk-{kind}"), transport)

    assert result.delays == [60, 20, 60, 60]
    assert result.calls() == ["POST backup", "GET operationsStatus", "GET operationsStatus",
                              "GET backupJobs/id", "GET backupJobs/id"]
    assert transport.sent[1].url == operation_url(request)
    assert urlsplit(transport.sent[3].url).path.endswith(f"/backupJobs/{JOB_ID}")
    document = result.result
    assert document["status"] == "Succeeded"
    assert document["correlationId"] == f"walk-{kind}"
    assert document["protectedItemId"] == request.item.id
    assert document["jobId"] == JOB_ID
    assert document["job"]["status"] == "Completed"
    assert document["job"]["endTime"] == "2026-11-26T12:41:10Z"
    assert document["job"]["tasks"] == JOB["properties"]["extendedInfo"]["tasksList"]
    assert document["request"] == request.to_json()
    assert document["request"]["properties"]["objectType"] == object_type
    assert "error" not in document
    assert document["timings"] == {"requestedAt": "2026-11-26T12:00:00Z", "triggeredAt": "2026-11-26T12:00:00Z",
                                   "completedAt": "2026-11-26T12:03:20Z", "elapsedSeconds": 200.0}
    assert all(follow_up_of(message).correlation_id == f"walk-{kind}" for message in result.follow_ups)
    client_ids = [sent.headers["x-ms-client-request-id"] for sent in transport.sent]
    assert len(set(client_ids)) == len(transport.sent)
    assert all(sent.headers["Authorization"] == f"Bearer {FAKE_TOKEN}" for sent in transport.sent)


def test_a_long_job_is_polled_less_and_less_often() -> None:
    request = parsed()
    transport = script(request, jobs=[*[Reply(200, body=JOB)] * 7, Reply(200, body=ended_job("Completed"))])

    result = walk(request_body(), transport)

    assert result.delays == [60, 60, 60, 120, 240, 480, 900, 900, 900]
    assert result.result["status"] == "Succeeded"


def test_completed_with_warnings() -> None:
    warning = {"errorCode": "UserErrorSomeFilesSkipped", "errorString": "Some files were skipped."}
    transport = script(parsed(), jobs=[Reply(200, body=ended_job("CompletedWithWarnings", errorDetails=[warning]))])

    result = walk(request_body(), transport).result

    assert result["status"] == "CompletedWithWarnings"
    assert result["job"]["status"] == "CompletedWithWarnings"
    assert result["job"]["errorDetails"] == [warning]


def test_a_failed_operation() -> None:
    transport = script(parsed(), operations=[op_reply("Failed", error=REFUSED)])

    result = walk(request_body(), transport).result

    assert result["status"] == "Failed"
    assert result["error"] == REFUSED
    assert "jobId" not in result


def test_a_post_refused_by_arm_fails_at_once_with_its_cloud_error() -> None:
    transport = script(parsed(), post=[Reply(409, body={"error": {**REFUSED, "target": "item"}}, headers={
        "x-ms-request-id": "req-409", "x-ms-correlation-request-id": "corr-409"})])
    svc, sender, _ = services(transport)

    outcome = handle_request(request_body(), Delivery("msg-1", 1, NOW), svc)

    result = json.loads(outcome or "")
    assert result["status"] == "Failed"
    assert result["error"] == {**REFUSED, "target": "item", "httpStatus": 409, "requestId": "req-409",
                               "correlationRequestId": "corr-409"}
    assert sender.messages == []
    assert len(transport.sent) == 1


def test_a_failed_job() -> None:
    details = [{"errorCode": "UserErrorVmNotFound", "errorString": "The VM no longer exists."}]
    transport = script(parsed(), jobs=[Reply(200, body=ended_job("Failed", errorDetails=details))])

    result = walk(request_body(), transport).result

    assert result["status"] == "Failed"
    assert result["error"] == {"code": "UserErrorVmNotFound", "message": "The VM no longer exists."}
    assert result["job"]["errorDetails"] == details
    assert result["jobId"] == JOB_ID


@pytest.mark.parametrize("where", ["operation", "job"])
def test_cancelled(where: str) -> None:
    if where == "operation":
        transport = script(parsed(), operations=[op_reply("Canceled")])
    else:
        transport = script(parsed(), jobs=[Reply(200, body=JOB), Reply(200, body=ended_job("Cancelled"))])

    result = walk(request_body(), transport).result

    assert result["status"] == "Cancelled"


def test_operation_timeout() -> None:
    transport = script(parsed(), operations=[op_reply("InProgress", retry_after="50")])
    svc = services(transport, settings=make_settings(OPERATION_TIMEOUT_SECONDS="120"))

    result = walk(request_body(), transport, services_=svc)

    assert result.delays == [60, 50, 10]
    assert result.result["status"] == "TimedOut"
    assert result.result["error"]["code"] == "OperationTimedOut"
    assert result.result["lastState"]["status"] == "InProgress"
    assert result.result["timings"]["elapsedSeconds"] == 120.0


def test_job_timeout() -> None:
    transport = script(parsed(), jobs=[Reply(200, body=JOB)])
    svc = services(transport, settings=make_settings(JOB_TIMEOUT_SECONDS="200"))

    result = walk(request_body(), transport, services_=svc)

    assert result.delays == [60, 60, 60, 80]
    assert result.result["status"] == "TimedOut"
    assert result.result["error"]["code"] == "JobTimedOut"
    assert result.result["lastState"]["status"] == "InProgress"
    assert result.result["jobId"] == JOB_ID


def test_tracking_off_ends_triggered_once_the_job_exists() -> None:
    transport = script(parsed())
    svc = services(transport, settings=make_settings(TRACK_BACKUP_JOBS="false"))

    result = walk(request_body(), transport, services_=svc)

    assert result.result["status"] == "Triggered"
    assert result.result["jobId"] == JOB_ID
    assert "job" not in result.result
    assert result.calls() == ["POST backup", "GET operationsStatus"]


@pytest.mark.parametrize("found", [True, False])
def test_location_fallback(found: bool) -> None:
    request = parsed()
    listed = [job_entry("job-loc", NOW + timedelta(seconds=3))] if found else []
    transport = script(
        request,
        post=[accepted(request, with_async=False)],
        results=[Reply(202, headers={"Retry-After": "30"}), Reply(204)],
        job_lists=[Reply(200, body={"value": listed})],
    )

    result = walk(request_body(), transport)

    assert transport.sent[1].url == location_url(request)
    if found:
        assert result.delays == [60, 30, 5, 60]
        assert result.calls() == ["POST backup", "GET operationResults", "GET operationResults",
                                  "GET backupJobs", "GET backupJobs/id"]
        assert (result.result["status"], result.result["jobId"]) == ("Succeeded", "job-loc")
    else:
        assert result.result["status"] == "Triggered"
        assert "jobId" not in result.result


# --- follow-ups that cannot be trusted -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"garbage", b"", b'{"schemaVersion": 2, "phase": "job"}', b'{"schemaVersion": 1, "phase": "sleep"}',
     b"[1, 2]"],
)
def test_an_unreadable_follow_up_fails_with_its_raw_text(body: bytes) -> None:
    transport = script(parsed())
    svc, sender, _ = services(transport)

    result = result_of(handle_follow_up(body, Delivery("f-9", 1, NOW), svc) or "")

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "UnreadableFollowUp"
    assert result["rawMessage"] == body.decode()
    assert result["messageId"] == "f-9"
    assert transport.sent == []
    assert sender.messages == []


def test_a_tampered_request_in_a_follow_up_is_unreadable() -> None:
    document = json.loads(FollowUp(parsed(), Phase.OPERATION, NOW, NOW,
                                   async_operation_url=operation_url(parsed())).to_text())
    document["request"]["vaultName"] = "../../x"
    transport = script(parsed())
    svc, _, _ = services(transport)

    result = result_of(handle_follow_up(json.dumps(document).encode(), Delivery("f-9", 1, NOW), svc) or "")

    assert result["error"]["code"] == "UnreadableFollowUp"
    assert result["error"]["target"] == "vaultName"
    assert transport.sent == []


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("async_operation_url", f"https://evil.example/subscriptions/{SUB}/operationsStatus/1"),
        ("async_operation_url", f"{ARM}/subscriptions/{OTHER_SUB}/operationsStatus/1"),
        ("location_url", f"http://management.azure.com/subscriptions/{SUB}/operationResults/1"),
    ],
)
def test_an_untrusted_url_in_a_follow_up_fails_without_sending_the_token(field: str, url: str) -> None:
    transport = script(parsed())
    credential = FakeCredential()
    svc, sender, _ = services(transport, credential=credential)
    text = FollowUp(parsed(), Phase.OPERATION, NOW, NOW, triggered_at=NOW).advance(**{field: url}).to_text()

    result = result_of(handle_follow_up(text.encode(), Delivery("f-1", 1, NOW), svc) or "")

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "UntrustedFollowUpUrl"
    assert transport.sent == []
    assert credential.scopes == []
    assert sender.messages == []


def test_an_operation_follow_up_without_urls_fails() -> None:
    transport = script(parsed())
    svc, _, _ = services(transport)
    text = FollowUp(parsed(), Phase.OPERATION, NOW, NOW, triggered_at=NOW).to_text()

    result = result_of(handle_follow_up(text.encode(), Delivery("f-1", 1, NOW), svc) or "")

    assert (result["status"], result["error"]["code"]) == ("Failed", "NothingToFollow")
    assert transport.sent == []


# --- logs ----------------------------------------------------------------------------------


def test_tokens_never_reach_a_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = parsed(correlationId="walk-log")
    transport = script(
        request,
        post=[Reply(429, headers={"Retry-After": "5"}), accepted(request)],
        operations=[Reply(500), op_reply("InProgress"), op_reply("Succeeded", job_id=JOB_ID)],
        jobs=[Reply(200, body=JOB), Reply(200, body=ended_job("Failed", errorDetails=[{"errorCode": "E"}]))],
    )

    result = walk(request_body(correlationId="walk-log"), transport)
    svc, _, _ = services(transport)
    handle_request(b"not json", Delivery("msg-2", 1, NOW), svc)
    handle_follow_up(b"garbage", Delivery("f-x", 1, NOW), svc)

    assert result.result["status"] == "Failed"
    assert caplog.records
    for record in caplog.records:
        assert FAKE_TOKEN not in record.getMessage()
        assert FAKE_TOKEN not in repr(record.__dict__)
    assert FAKE_TOKEN not in caplog.text
    assert all(FAKE_TOKEN in sent.headers["Authorization"] for sent in transport.sent)  # it was really used


def test_log_lines_about_a_request_carry_its_correlation_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    transport = script(parsed(correlationId="walk-ids"))

    walk(request_body(correlationId="walk-ids"), transport)

    records = [record for record in caplog.records if record.name.startswith("shared.")]
    assert len(records) >= 5
    for record in records:
        assert getattr(record, "correlation_id", None) == "walk-ids"
        assert record.getMessage().startswith("[walk-ids] ")
