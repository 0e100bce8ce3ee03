"""Bad input, generated: every malformed or hostile message ends in exactly one Rejected or Failed result.

In-process: ``handle_request`` / ``handle_follow_up`` over a recording transport that answers every
call with a 400 (so a message that happens to be valid ends ``Failed`` too) and a recording
credential. For each message: no unhandled exception; exactly one result and no follow-up; the
result fits a queue message, matches the published schema and holds no token; nothing but a
``RequestRejected`` makes a ``Rejected`` (and then nothing was sent); every request went to the
ARM host over https, under the allowed subscription, one name per path segment; tokens were asked
for the ARM scope only.

The generator says of each message whether it breaks a published rule (``hostile.Hostile``). Such a
message must be refused with nothing sent: a request ``Rejected``, a follow-up ``Failed`` without a
token. Only the others may reach ARM, so the share that reaches it is bounded by construction.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.followup import FollowUp, Phase
from shared.settings import Settings
from shared.workflow import Delivery, handle_follow_up, handle_request
from tests.fakes import FAKE_TOKEN, FakeCredential, FakeTransport, Reply
from tests.reliability.hostile import ARM_HOST, request_messages
from tests.reliability.hostile_follow_ups import follow_up_messages
from tests.reliability.published_rules import Hostile
from tests.reliability.support import Scale, publish
from tests.unit.builders import NOW, OTHER_SUB, SUB, backup_request, make_settings, result_of, services

QUEUE_MESSAGE_LIMIT = 64 * 1024
REJECTED_CODES = {"InvalidRequest", "NotAllowed", "EventIgnored"}  # what RequestRejected carries
SETTINGS = make_settings(ALLOWED_SUBSCRIPTIONS=SUB)
TRIGGER_SEGMENTS = ("", "subscriptions", None, "resourceGroups", None, "providers", "Microsoft.RecoveryServices",
                    "vaults", None, "backupFabrics", None, "protectionContainers", None, "protectedItems", None,
                    "backup")
BACKUP_STATUS_SEGMENTS = ("", "subscriptions", None, "providers", "Microsoft.RecoveryServices", "locations", None,
                          "backupStatus")


def _refusing_transport() -> FakeTransport:
    refusal = Reply(400, {"error": {"code": "HostileInputSeen", "message": "refused by the test transport"}},
                    headers={"x-ms-request-id": "test-request"})
    return FakeTransport().on("POST", "", refusal).on("GET", "", refusal)


def _check_sent(transport: FakeTransport, credential: FakeCredential, settings: Settings) -> None:
    for sent in transport.sent:
        parts = urlsplit(sent.url)
        assert parts.scheme == "https" and parts.netloc == ARM_HOST, f"a request left the ARM host: {sent.url!r}"
        assert parts.username is None and parts.password is None  # (a fragment never goes on the wire)
        assert sent.headers.get("Authorization") == f"Bearer {FAKE_TOKEN}"
        segments = [unquote(segment) for segment in parts.path.split("/")]
        assert segments[1].lower() == "subscriptions" and segments[2].lower() == SUB, sent.url
        assert not any(segment in {".", ".."} or "/" in segment or "\\" in segment for segment in segments), sent.url
        if sent.method == "POST":
            raw = parts.path.split("/")
            shape = BACKUP_STATUS_SEGMENTS if raw[-1] == "backupStatus" else TRIGGER_SEGMENTS
            assert len(raw) == len(shape), f"a name added or removed a path segment: {sent.url!r}"
            assert all(want is None or got == want for got, want in zip(raw, shape, strict=True)), sent.url
            assert parts.query.startswith("api-version=") and "&" not in parts.query, sent.url
    assert set(credential.scopes) <= {settings.arm_scope}


def _check_result(outcome: str | None, follow_ups: int, transport: FakeTransport) -> dict[str, Any]:
    assert outcome is not None and follow_ups == 0, "a refused message must end in one result, not a follow-up"
    assert len(outcome.encode("utf-8")) <= QUEUE_MESSAGE_LIMIT, "the result would not fit in a queue message"
    assert FAKE_TOKEN not in outcome
    result = result_of(outcome)  # also checks the published schema
    assert result["status"] in {"Rejected", "Failed"}, result["status"]
    if result["status"] == "Rejected":
        assert result["error"]["code"] in REJECTED_CODES, result["error"]
        assert transport.sent == [], "a rejected request must send nothing to Azure"
        assert "rawMessage" in result
    return result


def _tally(counter: Counter[str], targets: Counter[str], result: dict[str, Any], transport: FakeTransport,
           message: Hostile) -> None:
    counter[f"{result['status']}:{result['error']['code']}"] += 1
    counter["examples"] += 1
    counter["must_refuse" if message.refuse else "may_be_valid"] += 1
    counter["reached_arm"] += bool(transport.sent)
    counter["arm_requests_sent"] += len(transport.sent)
    target = result["error"].get("target")
    targets[target if target in _KNOWN_TARGETS else "other"] += 1


def _check_bound(counted: Counter[str]) -> None:
    """Only messages that break no rule reached ARM, and they are a minority, or the suite would test little."""
    assert counted["examples"] > 0
    assert counted["reached_arm"] <= counted["may_be_valid"]
    assert counted["must_refuse"] >= counted["examples"] // 2, f"the generator refuses too little: {counted}"


_KNOWN_TARGETS = {"message", "specversion", "data", "data_base64", "subscriptionId", "resourceGroupName", "vaultName",
                  "fabricName", "containerName", "protectedItemName", "protectedItemId", "correlationId",
                  "retentionDays", "properties", "properties.objectType", "properties.backupType",
                  "properties.recoveryPointExpiryTimeInUTC", "properties.enableCompression", "request", "phase",
                  "schemaVersion", "jobId", "asyncOperationUrl", "locationUrl", "resourceId", "location", "target",
                  "subject", "eventType", "data.resourceUri", "data.operationName"}


def test_hostile_request_messages_each_end_in_one_rejected_or_failed_result(scale: Scale) -> None:
    counted: Counter[str] = Counter()
    targets: Counter[str] = Counter()

    @settings(max_examples=scale.bad_input_examples, deadline=None, database=None, derandomize=scale.name == "ci",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(message=request_messages, dequeue_count=st.sampled_from([1, 1, 1, 2]))
    def check(message: Hostile, dequeue_count: int) -> None:
        transport, credential = _refusing_transport(), FakeCredential()
        svc, sender, _ = services(transport, settings=SETTINGS, credential=credential)
        outcome = handle_request(message.body, Delivery("msg-1", dequeue_count, NOW - timedelta(seconds=30)), svc)
        result = _check_result(outcome, len(sender.messages), transport)
        if message.refuse:
            assert result["status"] == "Rejected", f"must be refused ({message.refuse}): {result}"
            assert transport.sent == [] and credential.scopes == []
        _check_sent(transport, credential, SETTINGS)
        _tally(counted, targets, result, transport, message)

    check()
    publish("bad-input-requests", scale, f"{scale.bad_input_examples} generated request messages (not JSON, wrong "
            "types, huge, deeply nested, unicode, path syntax in names and resource ids, other subscriptions, "
            "envelopes, ARM events)",
            {**dict(counted.most_common()), "error_targets": dict(targets.most_common())})
    _check_bound(counted)


def test_hostile_follow_ups_each_end_in_one_failed_result_without_leaking_the_token(scale: Scale) -> None:
    counted: Counter[str] = Counter()
    targets: Counter[str] = Counter()

    @settings(max_examples=scale.bad_input_examples, deadline=None, database=None, derandomize=scale.name == "ci",
              suppress_health_check=[HealthCheck.too_slow])
    @given(message=follow_up_messages(), dequeue_count=st.sampled_from([1, 2]))
    def check(message: Hostile, dequeue_count: int) -> None:
        transport, credential = _refusing_transport(), FakeCredential()
        svc, sender, _ = services(transport, settings=SETTINGS, credential=credential)
        outcome = handle_follow_up(message.body, Delivery("fu-1", dequeue_count, NOW - timedelta(seconds=30)), svc)
        result = _check_result(outcome, len(sender.messages), transport)
        assert result["status"] == "Failed", "a follow-up is this app's own message: never Rejected"
        if message.refuse or result["error"]["code"] == "UntrustedFollowUpUrl":
            assert transport.sent == [] and credential.scopes == [], f"sent despite: {message.refuse or result}"
        _check_sent(transport, credential, SETTINGS)
        _tally(counted, targets, result, transport, message)

    check()
    publish("bad-input-follow-ups", scale, f"{scale.bad_input_examples} generated follow-ups (other hosts, plain "
            "http, other subscriptions, dot segments, encoded separators, tampered requests and fields)",
            {**dict(counted.most_common()), "error_targets": dict(targets.most_common())})
    assert counted["examples"] > 0
    assert counted["reached_arm"] <= counted["may_be_valid"]


@pytest.mark.parametrize("allow", [{"ALLOWED_SUBSCRIPTIONS": SUB}, {"ALLOWED_VAULTS": "someOtherVault"}])
def test_a_follow_up_outside_the_allow_lists_is_refused(allow: dict[str, str]) -> None:
    settings = make_settings(**allow)
    request = backup_request("vm", subscriptionId=OTHER_SUB)  # parsed without allow-lists, as a forger writes it
    body = FollowUp(request, Phase.TRIGGER, NOW, NOW).to_text().encode()
    transport, credential = _refusing_transport(), FakeCredential()
    svc, sender, _ = services(transport, settings=settings, credential=credential)

    result = result_of(handle_follow_up(body, Delivery("fu-forged", 1, NOW), svc) or "")

    assert transport.sent == [], f"the app called ARM for a request it must refuse: {transport.sent[0].url}"
    assert credential.scopes == []
    assert result["status"] == "Failed"
    assert sender.messages == []


_OPERATION_PATH = backup_request("vm").item.item_path + "/operationsStatus/op-1?api-version=2016-12-01"


@pytest.mark.parametrize("url", [
    f"https://{ARM_HOST}/\r\n" + _OPERATION_PATH.lstrip("/"),
    f"https://{ARM_HOST}\r\n{_OPERATION_PATH}",
    f"https://{ARM_HOST}" + _OPERATION_PATH.replace("op-1", "op\n-1"),
    f"https://manage\tment.azure.com{_OPERATION_PATH}",
])
def test_a_follow_up_url_with_control_characters_is_refused(url: str) -> None:
    request = backup_request("vm")
    body = FollowUp(request, Phase.OPERATION, NOW, NOW, async_operation_url=url).to_text().encode()
    transport, credential = _refusing_transport(), FakeCredential()
    svc, sender, _ = services(transport, settings=SETTINGS, credential=credential)

    outcome = handle_follow_up(body, Delivery("fu-crlf", 1, NOW), svc)

    assert outcome is not None and sender.messages == [], "refused at once, not retried as if ARM were down"
    assert result_of(outcome)["error"]["code"] == "UntrustedFollowUpUrl"
    assert transport.sent == [] and credential.scopes == []


def test_a_job_id_that_is_not_unicode_text_ends_in_a_result() -> None:
    body = FollowUp(backup_request("vm"), Phase.JOB, NOW, NOW, job_id="\ud800").to_text().encode()
    transport, credential = _refusing_transport(), FakeCredential()
    svc, sender, _ = services(transport, settings=SETTINGS, credential=credential)

    outcome = handle_follow_up(body, Delivery("fu-surrogate", 1, NOW), svc)

    assert outcome is not None and sender.messages == []
    assert result_of(outcome)["status"] == "Failed"
    assert transport.sent == []


def test_a_follow_up_url_that_urlsplit_refuses_ends_in_a_result() -> None:
    url = f"https://{ARM_HOST}\uff0f" + _OPERATION_PATH
    body = FollowUp(backup_request("vm"), Phase.OPERATION, NOW, NOW, async_operation_url=url).to_text().encode()
    transport, credential = _refusing_transport(), FakeCredential()
    svc, sender, _ = services(transport, settings=SETTINGS, credential=credential)

    outcome = handle_follow_up(body, Delivery("fu-nfkc", 1, NOW), svc)

    assert outcome is not None and sender.messages == []
    assert result_of(outcome)["error"]["code"] == "UntrustedFollowUpUrl"
    assert transport.sent == []
