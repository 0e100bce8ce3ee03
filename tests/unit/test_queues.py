"""Queue service construction from the storage settings, and delayed sends (QueueSender over a recording fake).

No network but loopback: clients connect lazily, and the identity test serves its token endpoint on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError
from azure.identity import DefaultAzureCredential

from shared.errors import QueueUnavailable
from shared.queues import MAX_DELAY_SECONDS, QueueSender, queue_service
from shared.settings import Settings
from tests.fakes import FakeCredential

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:10999/devstoreaccount1;"
)


def test_a_connection_string_names_the_account_and_endpoint() -> None:
    service = queue_service(Settings.from_environment({"AzureWebJobsStorage": AZURITE}))

    assert service.account_name == "devstoreaccount1"
    assert service.url.startswith("http://127.0.0.1:10999/devstoreaccount1")


def test_development_storage_is_the_local_emulator() -> None:
    service = queue_service(Settings.from_environment({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}))

    assert service.url.startswith("http://127.0.0.1:10001/devstoreaccount1")


def test_identity_based_storage_uses_the_app_credential() -> None:
    credential = FakeCredential()
    settings = Settings.from_environment({"AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net/"})

    service = queue_service(settings, credential)

    assert service.url.startswith("https://acct.queue.core.windows.net")
    assert service.credential is credential


def test_an_account_name_becomes_the_public_queue_endpoint() -> None:
    settings = Settings.from_environment({"AzureWebJobsStorage__accountName": "acct2"})

    service = queue_service(settings, FakeCredential())

    assert service.url.startswith("https://acct2.queue.core.windows.net")


def test_a_client_id_selects_a_user_assigned_identity_for_storage() -> None:
    app_credential = FakeCredential()
    settings = Settings.from_environment(
        {"AzureWebJobsStorage__accountName": "acct3", "AzureWebJobsStorage__clientId": "1111-2222"}
    )

    service = queue_service(settings, app_credential)

    assert service.credential is not app_credential
    assert isinstance(service.credential, DefaultAzureCredential)


# --- which identity asks for the storage token ------------------------------------------------


class _TokenEndpoint(BaseHTTPRequestHandler):
    """The App Service managed identity endpoint, on loopback: records each query, answers a token."""

    queries: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:  # the name http.server calls
        type(self).queries.append(parse_qs(urlsplit(self.path).query))
        body = json.dumps({"access_token": "storage-token", "expires_on": str(int(time.time()) + 3600),
                           "resource": "https://storage.azure.com", "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def token_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, list[str]]]]:
    _TokenEndpoint.queries = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE",
                 "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_port}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "secret")
    try:
        yield _TokenEndpoint.queries
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("client_id", "asked_with"), [("1111-2222", ["1111-2222"]), (None, None)])
def test_the_storage_token_is_asked_for_the_configured_identity(
    token_endpoint: list[dict[str, list[str]]], client_id: str | None, asked_with: list[str] | None
) -> None:
    environment = {"AzureWebJobsStorage__accountName": "acct4"}
    if client_id:
        environment["AzureWebJobsStorage__clientId"] = client_id
    service = queue_service(Settings.from_environment(environment))

    assert service.credential.get_token("https://storage.azure.com/.default").token == "storage-token"

    [query] = token_endpoint
    assert query.get("client_id") == asked_with
    assert query["resource"] == ["https://storage.azure.com"]


# --- QueueSender ----------------------------------------------------------------------------------


@dataclass
class _Send:
    text: str
    visibility_timeout: int
    time_to_live: int


@dataclass
class _FakeQueue:
    """Records what QueueSender asks of one queue; ``failures`` are raised by the next sends, in order."""

    queue_name: str
    failures: list[Exception] = field(default_factory=list)
    sends: list[_Send] = field(default_factory=list)
    created: int = 0

    def send_message(self, content: str, *, visibility_timeout: int, time_to_live: int) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sends.append(_Send(content, visibility_timeout, time_to_live))

    def create_queue(self) -> None:
        self.created += 1


@dataclass
class _FakeService:
    queues: dict[str, _FakeQueue] = field(default_factory=dict)
    lookups: int = 0

    def get_queue_client(self, name: str) -> _FakeQueue:
        self.lookups += 1
        return self.queues.setdefault(name, _FakeQueue(name))


def _sender(service: _FakeService) -> QueueSender:
    return QueueSender(service)  # type: ignore[arg-type]  # duck-typed: only get_queue_client is used


def _not_found() -> ResourceNotFoundError:
    error = ResourceNotFoundError("The specified queue does not exist.")
    error.error_code = "QueueNotFound"  # type: ignore[attr-defined]  # set by azure-storage-queue from x-ms-error-code
    return error


@pytest.mark.parametrize(("asked", "sent"), [(0, 0), (90, 90), (-5, 0), (MAX_DELAY_SECONDS + 1, MAX_DELAY_SECONDS),
                                             (10**9, MAX_DELAY_SECONDS)])
def test_a_message_is_hidden_for_the_delay_within_the_queue_bounds_and_never_expires(asked: int, sent: int) -> None:
    service = _FakeService()

    _sender(service).send("backup-status", "{}", asked)

    assert service.queues["backup-status"].sends == [_Send("{}", sent, -1)]


def test_one_queue_client_per_queue_is_reused() -> None:
    service = _FakeService()
    sender = _sender(service)

    for queue in ("backup-status", "backup-results", "backup-status"):
        sender.send(queue, "x")

    assert service.lookups == 2
    assert [len(queue.sends) for queue in service.queues.values()] == [2, 1]


def test_a_missing_queue_is_created_and_the_message_sent_again() -> None:
    service = _FakeService({"backup-status": _FakeQueue("backup-status", failures=[_not_found()])})

    _sender(service).send("backup-status", "follow-up", 30)

    queue = service.queues["backup-status"]
    assert queue.created == 1
    assert queue.sends == [_Send("follow-up", 30, -1)]


@pytest.mark.parametrize("failures", [
    [ServiceRequestError("connection refused")],
    [_not_found(), ServiceRequestError("connection reset")],
])
def test_storage_that_cannot_be_reached_is_queue_unavailable(failures: list[Exception]) -> None:
    service = _FakeService({"backup-status": _FakeQueue("backup-status", failures=list(failures))})

    with pytest.raises(QueueUnavailable, match="backup-status"):
        _sender(service).send("backup-status", "follow-up", 30)

    assert service.queues["backup-status"].sends == []
