"""shared.arm: the ArmClient over a FakeTransport mounted on a real requests.Session."""

from __future__ import annotations

import copy
import logging
import socket
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity import CredentialUnavailableError
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ProtocolError

from shared.arm import USER_AGENT, Accepted, LocationSnapshot
from shared.errors import (
    ArmProtocolError,
    ArmRejected,
    ArmThrottled,
    ArmUnavailable,
    ArmUnreachable,
    TokenUnavailable,
    UntrustedUrl,
)
from shared.messages import BackupRequest
from shared.statuses import JobStatus, OperationStatus
from tests.fakes import ARM, FAKE_TOKEN, Clock, FakeCredential, FakeTransport, Reply, headers_of, load_example
from tests.unit.builders import NOW, OTHER_SUB, RG, SUB, VAULT, arm_client, backup_request, make_settings

TRIGGER = load_example("TriggerBackup_Post.json")
TRIGGER_HEADERS = headers_of(TRIGGER, "202")
OPERATION = load_example("ProtectedItemOperationStatus.json")["responses"]["200"]["body"]
RESULTS = load_example("ProtectedItemOperationResults.json")
JOB = load_example("GetJobDetails.json")["responses"]["200"]["body"]
LIST_JOBS = load_example("ListJobs.json")["responses"]["200"]["body"]
VAULT_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
EXAMPLE = TRIGGER["parameters"]
TRIGGER_URL = (
    f"{ARM}{VAULT_PATH}/backupFabrics/Azure/protectionContainers/{EXAMPLE['containerName']}"
    f"/protectedItems/{EXAMPLE['protectedItemName']}/backup?api-version=2024-04-01"
)


class KwargsTransport(FakeTransport):
    """A FakeTransport that also keeps what requests passed to the adapter (timeouts, TLS)."""

    def __init__(self) -> None:
        super().__init__()
        self.kwargs: list[dict[str, Any]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.kwargs.append(kwargs)
        return super().send(request, **kwargs)


def example_request(**changes: Any) -> BackupRequest:
    """The request of the official TriggerBackup_Post example."""
    return backup_request("vm", **changes)


def accepted_reply(**extra: str) -> Reply:
    return Reply(202, headers={**TRIGGER_HEADERS, **extra})


# --- trigger -------------------------------------------------------------------------------


def test_example_request_matches_the_official_example() -> None:
    request = example_request()

    assert request.item.to_json() == {key: EXAMPLE[key] for key in (
        "subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName", "protectedItemName")}


def test_trigger_posts_to_the_exact_url_with_the_body() -> None:
    transport = FakeTransport().on("POST", r"/backup\?", accepted_reply())
    request = example_request()

    arm_client(transport).trigger(request)

    assert len(transport.sent) == 1
    sent = transport.sent[0]
    assert sent.method == "POST"
    assert sent.url == TRIGGER_URL
    assert sent.body == {"properties": {"objectType": "IaasVMBackupRequest",
                                        "recoveryPointExpiryTimeInUTC": "2026-12-26T12:00:00Z"}}
    assert sent.body == request.body()


def test_trigger_uses_backup_api_version() -> None:
    transport = FakeTransport().on("POST", r"/backup\?", accepted_reply())

    arm_client(transport, settings=make_settings(BACKUP_API_VERSION="2025-02-01")).trigger(example_request())

    assert parse_qs(urlsplit(transport.sent[0].url).query) == {"api-version": ["2025-02-01"]}


@pytest.mark.parametrize(
    ("container", "item", "encoded_item"),
    [
        ("IaasVMContainer;iaasvmcontainerv2;rg;vm (1)", "VM;iaasvmcontainerv2;rg;vm (1)",
         "VM;iaasvmcontainerv2;rg;vm%20%281%29"),
        ("IaasVMContainer;v2;rg;vm'1", "VM;v2;rg;vm'1", "VM;v2;rg;vm%271"),
        ("IaasVMContainer;v2;rg;vm=1,2", "VM;v2;rg;vm=1,2", "VM;v2;rg;vm%3D1%2C2"),
        ("IaasVMContainer;v2;rg;vmé", "VM;v2;rg;vmé", "VM;v2;rg;vm%C3%A9"),
        ("IaasVMContainer;v2;rg;vm!$~", "VM;v2;rg;vm!$~", "VM;v2;rg;vm%21%24~"),
    ],
)
def test_each_name_is_one_encoded_segment(container: str, item: str, encoded_item: str) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", accepted_reply())

    arm_client(transport).trigger(example_request(containerName=container, protectedItemName=item))

    path = urlsplit(transport.sent[0].url).path
    segments = path.split("/")
    assert len(segments) == 16
    assert segments[-1] == "backup"
    assert segments[-2] == encoded_item
    assert [unquote(segment) for segment in segments[1:-1]] == [
        "subscriptions", SUB, "resourceGroups", RG, "providers", "Microsoft.RecoveryServices", "vaults", VAULT,
        "backupFabrics", "Azure", "protectionContainers", container, "protectedItems", item,
    ]


def test_trigger_headers() -> None:
    transport = FakeTransport().on("POST", r"/backup\?", accepted_reply())
    client = arm_client(transport)

    client.trigger(example_request())
    client.trigger(example_request())

    first, second = transport.sent
    assert first.headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    assert first.headers["User-Agent"] == USER_AGENT
    assert first.headers["Accept"] == "application/json"
    assert first.headers["Content-Type"] == "application/json"
    ids = [uuid.UUID(sent.headers["x-ms-client-request-id"]) for sent in (first, second)]
    assert all(client_id.version == 4 for client_id in ids)
    assert ids[0] != ids[1]


def test_timeouts_come_from_settings() -> None:
    transport = KwargsTransport()
    transport.on("POST", r"/backup\?", accepted_reply())
    settings = make_settings(HTTP_CONNECT_TIMEOUT_SECONDS="3", HTTP_READ_TIMEOUT_SECONDS="7.5")

    arm_client(transport, settings=settings).trigger(example_request())

    assert transport.kwargs[0]["timeout"] == (3.0, 7.5)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(status: int) -> None:
    transport = FakeTransport().on(
        "POST", r"/backup\?", Reply(status, headers={"Location": f"{ARM}/elsewhere", "x-ms-request-id": "r-3xx"}),
    ).on("GET", r".", Reply(200, body={}))

    with pytest.raises(ArmRejected) as caught:
        arm_client(transport).trigger(example_request())

    assert len(transport.sent) == 1
    assert caught.value.info.http_status == status
    assert caught.value.info.request_id == "r-3xx"


def test_official_202_is_accepted_with_both_urls_and_retry_after() -> None:
    transport = FakeTransport().on("POST", r"/backup\?", accepted_reply(**{"x-ms-request-id": "req-1"}))

    accepted = arm_client(transport).trigger(example_request())

    assert accepted == Accepted(
        async_operation_url=TRIGGER_HEADERS["Azure-AsyncOperation"],
        location_url=TRIGGER_HEADERS["Location"],
        retry_after=60.0,
        request_id="req-1",
    )


@pytest.mark.parametrize("status", [200, 201, 202])
@pytest.mark.parametrize(
    ("headers", "async_url", "location"),
    [
        ({"Azure-AsyncOperation": f"{ARM}/subscriptions/{SUB}/op"}, f"{ARM}/subscriptions/{SUB}/op", None),
        ({"Location": f"{ARM}/subscriptions/{SUB}/res"}, None, f"{ARM}/subscriptions/{SUB}/res"),
        ({"azure-asyncoperation": f"{ARM}/subscriptions/{SUB}/op", "location": f"{ARM}/subscriptions/{SUB}/res"},
         f"{ARM}/subscriptions/{SUB}/op", f"{ARM}/subscriptions/{SUB}/res"),
    ],
)
def test_either_operation_header_is_enough(
    status: int, headers: dict[str, str], async_url: str | None, location: str | None
) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(status, headers=headers))

    accepted = arm_client(transport).trigger(example_request())

    assert (accepted.async_operation_url, accepted.location_url, accepted.retry_after) == (async_url, location, None)


@pytest.mark.parametrize("headers", [{}, {"Azure-AsyncOperation": "", "Location": ""}, {"Retry-After": "60"}])
def test_missing_operation_headers_is_a_protocol_error(headers: dict[str, str]) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(202, headers={**headers, "x-ms-request-id": "r-9"}))

    with pytest.raises(ArmProtocolError) as caught:
        arm_client(transport).trigger(example_request())

    assert caught.value.info.code == "MissingOperationHeaders"
    assert caught.value.info.http_status == 202
    assert caught.value.info.request_id == "r-9"


CLOUD_ERROR = {
    "error": {
        "code": "UserErrorBackupOperationInProgress",
        "message": "Taking snapshot is not allowed as a backup is already in progress.",
        "target": "protectedItem",
        "details": [{"code": "Detail", "message": "d"}, "junk"],
        "additionalInfo": [{"type": "Info", "info": {"k": "v"}}],
    }
}
ID_HEADERS = {"x-ms-request-id": "req-42", "x-ms-correlation-request-id": "corr-42"}


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_are_arm_unavailable_with_retry_after(status: int) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(status, body=CLOUD_ERROR,
                                                               headers={"Retry-After": "17", **ID_HEADERS}))

    with pytest.raises(ArmUnavailable) as caught:
        arm_client(transport).trigger(example_request())

    assert caught.value.retry_after == 17.0
    assert caught.value.info.http_status == status
    assert caught.value.info.code == "UserErrorBackupOperationInProgress"
    assert caught.value.info.request_id == "req-42"
    assert isinstance(caught.value, ArmThrottled) is (status == 429)
    assert len(transport.sent) == 1  # never retried inside one invocation


def test_transient_status_without_retry_after() -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(503, body=b"Service Unavailable"))

    with pytest.raises(ArmUnavailable) as caught:
        arm_client(transport).trigger(example_request())

    assert caught.value.retry_after is None
    assert caught.value.info.code == "Http503"


def test_401_is_transient() -> None:
    expired = {"error": {"code": "ExpiredAuthenticationToken", "message": "expired"}}
    transport = FakeTransport().on("POST", r"/backup\?", Reply(401, body=expired))

    with pytest.raises(ArmUnavailable) as caught:
        arm_client(transport).trigger(example_request())

    assert not isinstance(caught.value, ArmThrottled)
    assert caught.value.info.code == "ExpiredAuthenticationToken"


@pytest.mark.parametrize("status", [400, 403, 404, 409])
def test_other_4xx_are_rejected_with_the_cloud_error(status: int) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(status, body=CLOUD_ERROR, headers=ID_HEADERS))

    with pytest.raises(ArmRejected) as caught:
        arm_client(transport).trigger(example_request())

    info = caught.value.info
    assert info.code == "UserErrorBackupOperationInProgress"
    assert info.message == "Taking snapshot is not allowed as a backup is already in progress."
    assert info.target == "protectedItem"
    assert info.details == ({"code": "Detail", "message": "d"},)
    assert info.additional_info == ({"type": "Info", "info": {"k": "v"}},)
    assert info.http_status == status
    assert info.request_id == "req-42"
    assert info.correlation_request_id == "corr-42"


def test_unwrapped_cloud_error_body() -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(400, body={"code": "BadRequest", "message": "no"}))

    with pytest.raises(ArmRejected) as caught:
        arm_client(transport).trigger(example_request())

    assert (caught.value.info.code, caught.value.info.message) == ("BadRequest", "no")


@pytest.mark.parametrize(
    "body", [b"<html><body>Bad Request</body></html>", b"", b"[1, 2]", b'{"error": "text"}', b"\xff\xfe"]
)
def test_unreadable_error_body(body: bytes) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(400, body=body, headers=ID_HEADERS))

    with pytest.raises(ArmRejected) as caught:
        arm_client(transport).trigger(example_request())

    assert caught.value.info.code == "Http400"
    assert caught.value.info.message == "POST backup answered HTTP 400"
    assert caught.value.info.request_id == "req-42"


# --- connection failures -------------------------------------------------------------------


def _connection() -> HTTPSConnection:
    return HTTPSConnection("management.azure.com")


def _pool() -> HTTPSConnectionPool:
    return HTTPSConnectionPool("management.azure.com")


@pytest.mark.parametrize(
    ("exc", "arrived", "code"),
    [
        (requests.ConnectTimeout("connect timed out"), False, "ArmTimeout"),
        (requests.ReadTimeout("read timed out"), True, "ArmTimeout"),
        (requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))),
         True, "ArmConnectionFailed"),
        (requests.ConnectionError(MaxRetryError(_pool(), "/x", ProtocolError("Connection aborted."))),
         True, "ArmConnectionFailed"),
        (requests.ConnectionError(MaxRetryError(_pool(), "/x", NewConnectionError(_connection(), "refused"))),
         False, "ArmConnectionFailed"),
        (requests.ConnectionError(MaxRetryError(_pool(), "/x", NameResolutionError(
            "management.azure.com", _connection(), socket.gaierror(-2, "no such host")))),
         False, "ArmConnectionFailed"),
        (requests.ConnectionError("plain"), True, "ArmConnectionFailed"),
        (requests.exceptions.SSLError("bad handshake"), True, "ArmConnectionFailed"),
        (requests.exceptions.ChunkedEncodingError("broken"), True, "ArmConnectionFailed"),
    ],
)
def test_connection_failures_are_unreachable(exc: requests.RequestException, arrived: bool, code: str) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(0, raise_exc=exc))

    with pytest.raises(ArmUnreachable) as caught:
        arm_client(transport).trigger(example_request())

    assert caught.value.request_may_have_arrived is arrived
    assert caught.value.info.code == code
    assert caught.value.info.message.startswith("POST failed: ")
    assert caught.value.__cause__ is exc
    assert len(transport.sent) == 1


# --- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [ClientAuthenticationError("ManagedIdentityCredential authentication unavailable"),
     CredentialUnavailableError("no identity"),
     ServiceRequestError("IMDS unreachable")],
)
def test_token_failure_sends_nothing(failure: Exception) -> None:
    transport = FakeTransport().on("POST", r".", accepted_reply())
    credential = FakeCredential(failure)

    with pytest.raises(TokenUnavailable) as caught:
        arm_client(transport, credential=credential).trigger(example_request())

    assert transport.sent == []
    assert caught.value.info.code == "TokenUnavailable"
    assert caught.value.retry_after is None
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize(
    ("overrides", "scope", "host"),
    [
        ({}, "https://management.azure.com/.default", "management.azure.com"),
        ({"AZURE_CLOUD": "AzureUSGovernment"}, "https://management.core.usgovcloudapi.net/.default",
         "management.usgovcloudapi.net"),
        ({"AZURE_CLOUD": "AzureChinaCloud"}, "https://management.chinacloudapi.cn/.default",
         "management.chinacloudapi.cn"),
        ({"ARM_ENDPOINT": "https://localhost:8443", "ARM_SCOPE": "https://localhost/.default"},
         "https://localhost/.default", "localhost:8443"),
    ],
)
def test_scope_and_host_per_cloud(overrides: dict[str, str], scope: str, host: str) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", Reply(202, headers={"Location": "x"}))
    credential = FakeCredential()

    arm_client(transport, settings=make_settings(**overrides), credential=credential).trigger(example_request())

    assert credential.scopes == [scope]
    assert urlsplit(transport.sent[0].url).netloc == host


# --- following URLs ------------------------------------------------------------------------

UNTRUSTED = [
    f"https://evil.example/subscriptions/{SUB}/x/operationsStatus/1",
    f"http://management.azure.com/subscriptions/{SUB}/x/operationsStatus/1",
    f"{ARM}/subscriptions/{OTHER_SUB}/x/operationsStatus/1",
    f"{ARM}/subscriptions/{SUB}/../{OTHER_SUB}/operationsStatus/1",
    f"https://user@management.azure.com/subscriptions/{SUB}/x",
    f"https://management.azure.com:8443/subscriptions/{SUB}/x",
    "",
]


@pytest.mark.parametrize("url", UNTRUSTED)
@pytest.mark.parametrize("call", ["operation_status", "operation_result"])
def test_untrusted_follow_up_urls_send_nothing(url: str, call: str) -> None:
    transport = FakeTransport().on("GET", r".", Reply(200, body=OPERATION))
    credential = FakeCredential()
    client = arm_client(transport, credential=credential)

    with pytest.raises(UntrustedUrl) as caught:
        getattr(client, call)(url, example_request())

    assert transport.sent == []
    assert credential.scopes == []  # not even a token was fetched
    assert caught.value.info.code == "UntrustedFollowUpUrl"


def test_operation_status_follows_the_url_exactly_as_given() -> None:
    url = TRIGGER_HEADERS["Azure-AsyncOperation"]
    transport = FakeTransport().on("GET", r"/operationsStatus/", Reply(200, body=OPERATION,
                                                                       headers={"Retry-After": "15"}))

    snapshot, retry_after = arm_client(transport).operation_status(url, example_request())

    assert transport.sent[0].url == url  # "Subscriptions", the other container spelling, api-version 2016-12-01
    assert transport.sent[0].body is None
    assert transport.sent[0].headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    assert snapshot.status is OperationStatus.SUCCEEDED
    assert snapshot.job_id == OPERATION["properties"]["jobId"]
    assert retry_after == 15.0


def test_operation_status_202_is_read_too() -> None:
    transport = FakeTransport().on("GET", r"/operationsStatus/", Reply(202, body={"status": "InProgress"}))

    snapshot, retry_after = arm_client(transport).operation_status(TRIGGER_HEADERS["Azure-AsyncOperation"],
                                                                  example_request())

    assert snapshot.status is OperationStatus.IN_PROGRESS
    assert retry_after is None


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"", b'"text"', b"null", b"{trunc"])
def test_malformed_json_on_a_get_is_transient(body: bytes) -> None:
    transport = FakeTransport().on("GET", r"/operationsStatus/", Reply(200, body=body, headers={
        "Retry-After": "9", "x-ms-request-id": "req-m"}))

    with pytest.raises(ArmUnavailable) as caught:
        arm_client(transport).operation_status(TRIGGER_HEADERS["Azure-AsyncOperation"], example_request())

    assert caught.value.info.code == "MalformedResponse"
    assert caught.value.info.http_status == 200
    assert caught.value.info.request_id == "req-m"
    assert caught.value.retry_after == 9.0


@pytest.mark.parametrize(("status", "error"), [(404, ArmRejected), (403, ArmRejected), (500, ArmUnavailable),
                                               (429, ArmThrottled), (204, ArmRejected)])
def test_operation_status_errors(status: int, error: type[Exception]) -> None:
    transport = FakeTransport().on("GET", r"/operationsStatus/", Reply(status, body=CLOUD_ERROR))

    with pytest.raises(error):
        arm_client(transport).operation_status(TRIGGER_HEADERS["Azure-AsyncOperation"], example_request())


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(202, headers=headers_of(RESULTS, "202")), LocationSnapshot(done=False, retry_after=60.0)),
        (Reply(202), LocationSnapshot(done=False, retry_after=None)),
        (Reply(200, body=RESULTS["responses"]["200"]["body"]), LocationSnapshot(done=True, retry_after=None)),
        (Reply(204, headers={"Retry-After": "3"}), LocationSnapshot(done=True, retry_after=3.0)),
    ],
)
def test_operation_result(reply: Reply, expected: LocationSnapshot) -> None:
    url = TRIGGER_HEADERS["Location"]
    transport = FakeTransport().on("GET", r"/operationResults/", reply)

    assert arm_client(transport).operation_result(url, example_request()) == expected
    assert transport.sent[0].url == url


@pytest.mark.parametrize(("status", "error"), [(400, ArmRejected), (404, ArmRejected), (503, ArmUnavailable),
                                               (201, ArmRejected)])
def test_operation_result_errors(status: int, error: type[Exception]) -> None:
    transport = FakeTransport().on("GET", r"/operationResults/", Reply(status, body=CLOUD_ERROR))

    with pytest.raises(error):
        arm_client(transport).operation_result(TRIGGER_HEADERS["Location"], example_request())


# --- jobs ----------------------------------------------------------------------------------


def test_job_url_and_snapshot() -> None:
    transport = FakeTransport().on("GET", r"/backupJobs/", Reply(200, body=JOB, headers={"Retry-After": "120"}))

    snapshot, retry_after = arm_client(transport).job(example_request(), "00000000-0000-0000-0000-000000000000")

    assert transport.sent[0].url == (
        f"{ARM}{VAULT_PATH}/backupJobs/00000000-0000-0000-0000-000000000000?api-version=2024-04-01"
    )
    assert snapshot.status is JobStatus.IN_PROGRESS
    assert snapshot.job_id == "00000000-0000-0000-0000-000000000000"
    assert snapshot.summary["entityFriendlyName"] == "testvm"
    assert retry_after == 120.0


@pytest.mark.parametrize(("job_id", "segment"), [("a?b#c", "a%3Fb%23c"), ("j 1", "j%201"), ("j;1", "j;1")])
def test_job_id_is_one_encoded_segment(job_id: str, segment: str) -> None:
    transport = FakeTransport().on("GET", r"/backupJobs/", Reply(200, body=JOB))

    arm_client(transport).job(example_request(), job_id)

    assert urlsplit(transport.sent[0].url).path == f"{VAULT_PATH}/backupJobs/{segment}"


@pytest.mark.parametrize("job_id", ["..", ".", "a/b", "../../x", "a\\b"])
def test_job_id_cannot_climb(job_id: str) -> None:
    transport = FakeTransport().on("GET", r".", Reply(200, body=JOB))

    with pytest.raises(UntrustedUrl):
        arm_client(transport).job(example_request(), job_id)

    assert transport.sent == []


@pytest.mark.parametrize(("status", "error"), [(404, ArmRejected), (500, ArmUnavailable), (202, ArmRejected)])
def test_job_errors(status: int, error: type[Exception]) -> None:
    transport = FakeTransport().on("GET", r"/backupJobs/", Reply(status, body=CLOUD_ERROR))

    with pytest.raises(error):
        arm_client(transport).job(example_request(), "j-1")


# --- find_backup_job -----------------------------------------------------------------------


def job_entry(name: str, *, friendly: str = "v1win2012r", operation: str = "Backup",
              start: str = "2026-11-26T11:58:00Z") -> dict[str, Any]:
    entry: dict[str, Any] = copy.deepcopy(LIST_JOBS["value"][0])
    entry["name"] = name
    entry["id"] = f"/Subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}" \
                  f"/backupJobs/{name}"
    entry["properties"].update({"entityFriendlyName": friendly, "operation": operation, "startTime": start})
    return entry


def list_reply(*jobs: Any, next_link: str | None = None) -> Reply:
    body: dict[str, Any] = {"value": list(jobs)}
    if next_link is not None:
        body["nextLink"] = next_link
    return Reply(200, body=body)


def test_find_backup_job_filter() -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply())
    clock = Clock(NOW)

    found = arm_client(transport, clock=clock).find_backup_job(example_request(), NOW)

    assert found is None
    url = urlsplit(transport.sent[0].url)
    assert url.path == f"{VAULT_PATH}/backupJobs"
    assert parse_qs(url.query) == {
        "api-version": ["2024-04-01"],
        "$filter": ["operation eq 'Backup' and startTime eq '2026-11-26 11:55:00 AM'"
                    " and endTime eq '2026-11-27 12:00:00 PM'"],
    }


def test_find_backup_job_filter_follows_the_clock_and_since() -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply())
    clock = Clock(NOW)
    clock.advance(3 * 3600)
    since = NOW.replace(hour=0, minute=2)

    arm_client(transport, clock=clock).find_backup_job(example_request(), since)

    query = parse_qs(urlsplit(transport.sent[0].url).query)["$filter"][0]
    assert "startTime eq '2026-11-25 11:57:00 PM'" in query
    assert "endTime eq '2026-11-27 03:00:00 PM'" in query


def test_find_backup_job_matches_item_operation_and_start_time() -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply(
        "not a job",
        {"name": "no-properties"},
        job_entry("other-item", friendly="othervm"),
        job_entry("configure", operation="ConfigureBackup"),
        job_entry("too-old", start="2026-11-26T11:54:59Z"),
        job_entry("bad-start", start="yesterday"),
        {**job_entry("x"), "name": ""},
        job_entry("the-one", friendly="V1WIN2012R", start="2026-11-26T11:55:00Z"),
        job_entry("later-one"),
    ))

    assert arm_client(transport).find_backup_job(example_request(), NOW) == "the-one"


def test_find_backup_job_skips_a_job_of_another_kind_with_the_same_name() -> None:
    file_share_job = job_entry("a-share", start="2026-11-26T11:59:00Z")
    file_share_job["properties"]["backupManagementType"] = "AzureStorage"
    vm_job = job_entry("the-vm")  # the official example's backupManagementType: AzureIaasVM
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply(file_share_job, vm_job))

    assert arm_client(transport).find_backup_job(example_request(), NOW) == "the-vm"


def test_find_backup_job_skips_a_job_of_another_container() -> None:
    elsewhere = job_entry("other-instance", start="2026-11-26T11:59:00Z")
    elsewhere["properties"]["containerName"] = "iaasvmcontainerv2;otherrg;v1win2012r"
    own = job_entry("own-container")
    own["properties"]["containerName"] = "iaasvmcontainerv2;testrg;v1win2012r"
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply(elsewhere, own))

    assert arm_client(transport).find_backup_job(example_request(), NOW) == "own-container"


def test_find_backup_job_none_found() -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply(job_entry("other", friendly="othervm")))

    assert arm_client(transport).find_backup_job(example_request(), NOW) is None


def test_find_backup_job_with_the_official_list_example_finds_nothing_for_another_item() -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", Reply(200, body=LIST_JOBS))

    assert arm_client(transport).find_backup_job(example_request(), NOW) is None


def test_find_backup_job_follows_next_link() -> None:
    next_link = f"{ARM}{VAULT_PATH}/backupJobs?api-version=2024-04-01&$skiptoken=abc"
    transport = FakeTransport().on("GET", r"skiptoken=abc", list_reply(job_entry("page-two"))).on(
        "GET", r"/backupJobs\?", list_reply(job_entry("other", friendly="x"), next_link=next_link))

    assert arm_client(transport).find_backup_job(example_request(), NOW) == "page-two"
    assert [sent.url for sent in transport.sent][1] == next_link
    assert len(transport.sent) == 2


@pytest.mark.parametrize(
    "next_link",
    [f"https://evil.example{VAULT_PATH}/backupJobs?x=1", f"http://management.azure.com{VAULT_PATH}/backupJobs",
     f"{ARM}/subscriptions/{OTHER_SUB}/backupJobs"],
)
def test_an_untrusted_next_link_is_refused(next_link: str) -> None:
    transport = FakeTransport().on("GET", r".", list_reply(next_link=next_link))

    with pytest.raises(UntrustedUrl):
        arm_client(transport).find_backup_job(example_request(), NOW)

    assert len(transport.sent) == 1


def test_paging_is_bounded() -> None:
    next_link = f"{ARM}{VAULT_PATH}/backupJobs?api-version=2024-04-01&$skiptoken=again"
    transport = FakeTransport().on("GET", r"/backupJobs\?", list_reply(next_link=next_link))

    assert arm_client(transport).find_backup_job(example_request(), NOW) is None
    assert len(transport.sent) == 5


@pytest.mark.parametrize("body", [{}, {"value": None}, {"value": []}, {"nextLink": ""}, {"nextLink": 5}])
def test_empty_or_odd_pages(body: dict[str, Any]) -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", Reply(200, body=body))

    assert arm_client(transport).find_backup_job(example_request(), NOW) is None
    assert len(transport.sent) == 1


@pytest.mark.parametrize(("status", "error"), [(500, ArmUnavailable), (403, ArmRejected)])
def test_find_backup_job_errors(status: int, error: type[Exception]) -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", Reply(status, body=CLOUD_ERROR))

    with pytest.raises(error):
        arm_client(transport).find_backup_job(example_request(), NOW)


@pytest.mark.parametrize("odd", [5, True, "text", {"code": "x"}])
def test_malformed_error_lists_stay_in_the_error_tree(odd: object) -> None:
    body = {"error": {"code": "X", "message": "m", "details": odd, "additionalInfo": odd}}
    transport = FakeTransport().on("POST", r"/backup\?", Reply(400, body=body))

    with pytest.raises(ArmRejected) as caught:
        arm_client(transport).trigger(example_request())

    assert (caught.value.info.code, caught.value.info.details, caught.value.info.additional_info) == ("X", (), ())


@pytest.mark.parametrize("odd", [5, True, "text", {"name": "x"}])
def test_a_malformed_job_list_finds_nothing(odd: object) -> None:
    transport = FakeTransport().on("GET", r"/backupJobs\?", Reply(200, body={"value": odd}))

    assert arm_client(transport).find_backup_job(example_request(), NOW) is None


# --- logging -------------------------------------------------------------------------------


def test_each_call_is_logged_with_the_correlation_id_and_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    transport = FakeTransport().on("POST", r"/backup\?", accepted_reply(**{"x-ms-request-id": "req-log"}))
    caplog.set_level(logging.DEBUG)

    arm_client(transport).trigger(example_request(correlationId="corr-log"))

    records = [record for record in caplog.records if record.name == "shared.armtransport"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert message.startswith("[corr-log] ARM POST ")
    assert "-> 202" in message
    assert "req-log" in message
    assert transport.sent[0].headers["x-ms-client-request-id"] in message
    assert "api-version" not in message
    assert FAKE_TOKEN not in caplog.text
    assert getattr(records[0], "correlation_id", None) == "corr-log"
