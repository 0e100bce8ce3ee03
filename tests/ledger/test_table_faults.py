"""A ledger that is down or failing: ``LedgerUnavailable``, no secrets in it, and no write sent twice.

No Azurite here: a closed loopback port, and a tiny HTTP server that answers every request with
one scripted status and counts what reached it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.exceptions import AzureError, ServiceRequestError

from devtools.azurite import ACCOUNT_KEY, ACCOUNT_NAME, connection_string, free_port
from shared.ledger_store import LedgerUnavailable, RecordKey
from shared.ledger_table import TableStore, describe, ledger_store
from shared.settings import Settings

KEY = RecordKey("9f86d081884c7d65", "e3b0c44298fc1c14")
SAS = "sv=2024-11-04&ss=t&srt=sco&sp=rwdlacu&se=2099-01-01T00:00:00Z&sig=SECRETsignature%3D"
ETAG = "W/\"datetime'2026-11-27T12%3A00%3A00.0000000Z'\""

Operation = Callable[[TableStore], object]
OPERATIONS: dict[str, Operation] = {
    "read": lambda store: store.read(KEY),
    "create": lambda store: store.create(KEY, {"n": 1}),
    "replace": lambda store: store.replace(KEY, {"n": 2}, ETAG),
    "delete_older_than": lambda store: store.delete_older_than(datetime.now(UTC), 10),
    "read_partition": lambda store: store.read_partition(KEY.partition),
}


def store_at(connection: str) -> TableStore:
    store = ledger_store(Settings.from_environment({"AzureWebJobsStorage": connection}))
    assert store is not None
    return store


def closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:  # nothing listens there: the connection is refused at once
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


class ScriptedService:
    """Answers every request with ``status`` and a Table error body; records method and path.

    Given ``failures``, only the first that many: every later request succeeds (204 and an ETag).
    """

    def __init__(self, status: int, code: str, failures: int | None = None) -> None:
        self.status, self.code, self.failures = status, code, failures
        self.requests: list[tuple[str, str]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                service.requests.append((self.command, self.path.split("?")[0]))
                if service.failures is not None and len(service.requests) > service.failures:
                    self.send_response(204)
                    self.send_header("ETag", f"W/\"datetime'2026-11-27T12%3A00%3A0{len(service.requests)}Z'\"")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"odata.error": {"code": service.code, "message": {"value": "scripted"}}}).encode()
                self.send_response(service.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-ms-error-code", service.code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])

    def __enter__(self) -> ScriptedService:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def busy_service() -> Iterator[ScriptedService]:
    with ScriptedService(503, "ServerBusy") as service:
        yield service


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_unreachable_ledger_is_unavailable_and_the_message_keeps_the_key_secret(operation: str) -> None:
    store = store_at(connection_string(closed_port(), table_port=closed_port()))

    with pytest.raises(LedgerUnavailable) as caught:
        OPERATIONS[operation](store)

    assert isinstance(caught.value.__cause__, AzureError)
    assert store.table_name in str(caught.value)
    assert ACCOUNT_KEY not in str(caught.value)
    assert ACCOUNT_KEY[:12] not in str(caught.value)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_sas_never_reaches_the_message(operation: str) -> None:
    port = closed_port()
    store = store_at(f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};SharedAccessSignature={SAS}")

    with pytest.raises(LedgerUnavailable) as caught:
        OPERATIONS[operation](store)

    assert "SECRETsignature" not in str(caught.value)
    assert "sig=" not in str(caught.value)


def test_a_refused_permission_is_unavailable_with_the_status_and_code(busy_service: ScriptedService) -> None:
    busy_service.status, busy_service.code = 403, "AuthorizationPermissionMismatch"
    store = store_at(connection_string(closed_port(), table_port=busy_service.port))

    with pytest.raises(LedgerUnavailable) as caught:
        store.read(KEY)

    assert "403" in str(caught.value)
    assert "AuthorizationPermissionMismatch" in str(caught.value)


@pytest.mark.parametrize("operation", ["read", "delete_older_than", "read_partition"])
def test_a_busy_service_is_asked_again_a_bounded_number_of_times(busy_service: ScriptedService, operation: str) -> None:
    store = store_at(connection_string(closed_port(), table_port=busy_service.port))

    with pytest.raises(LedgerUnavailable, match="503"):
        OPERATIONS[operation](store)

    assert len(busy_service.requests) == 3  # one try and two retries, then the host's redelivery takes over


@pytest.mark.parametrize(("operation", "method"), [("create", "POST"), ("replace", "PUT")])
def test_a_write_that_reached_the_service_is_never_sent_again(
    busy_service: ScriptedService, operation: str, method: str
) -> None:
    store = store_at(connection_string(closed_port(), table_port=busy_service.port))

    with pytest.raises(LedgerUnavailable, match="503"):
        OPERATIONS[operation](store)

    assert [sent_method for sent_method, _ in busy_service.requests] == [method]


def test_a_patient_write_waits_out_a_brief_outage_and_lands() -> None:
    # The sent mark: a result is out, and a mark given up on makes the redelivery send it again.
    with ScriptedService(503, "ServerBusy", failures=2) as service:
        store = store_at(connection_string(closed_port(), table_port=service.port))

        etag = store.replace(KEY, {"n": 2}, ETAG, patient=True)

    assert etag.startswith("W/")
    assert [method for method, _ in service.requests] == ["PUT", "PUT", "PUT"]


def test_a_patient_write_still_gives_up_on_a_ledger_that_stays_down() -> None:
    store = store_at(connection_string(closed_port(), table_port=closed_port()))

    with pytest.raises(LedgerUnavailable, match="replace"):
        store.replace(KEY, {"n": 2}, ETAG, patient=True)


def test_a_url_in_an_error_message_loses_its_query_string() -> None:
    error = ServiceRequestError(
        f"HTTPConnectionPool(host='acct.table.core.windows.net', port=443): Max retries exceeded with url: "
        f"/backupledger(PartitionKey='a',RowKey='b')?{SAS} (Caused by NewConnectionError('refused'))"
    )

    text = describe(error)

    assert "SECRETsignature" not in text
    assert "sig=" not in text
    assert text.startswith("ServiceRequestError HTTPConnectionPool(host='acct.table.core.windows.net'")
