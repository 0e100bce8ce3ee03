"""Storage queues: client construction from the app settings and delayed sends.

Output bindings cannot delay a message, so every follow-up goes through
``QueueClient.send_message(visibility_timeout=…)`` here. What this app writes is plain text
(JSON), never base64: host.json reads queues with ``messageEncoding: none``.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import DefaultAzureCredential
from azure.storage.queue import QueueClient, QueueServiceClient

from shared.errors import QueueUnavailable
from shared.httpsession import sdk_transport
from shared.settings import Settings

__all__ = ["MAX_DELAY_SECONDS", "MessageSender", "QueueSender", "queue_service"]

logger = logging.getLogger(__name__)

MAX_DELAY_SECONDS = 7 * 24 * 3600
"""The service refuses a visibility timeout beyond seven days."""

# The queue SDK's own defaults, which a client given its transport no longer applies itself.
_CONNECTION_TIMEOUT, _READ_TIMEOUT = 20.0, 60.0

# Follow-ups may sleep for days and results may wait for a slow consumer: neither may expire.
_NEVER_EXPIRES = -1


class MessageSender(Protocol):
    """What the handlers need from the queues: send text, optionally invisible for a while."""

    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None: ...


def queue_service(settings: Settings, credential: TokenCredential | None = None) -> QueueServiceClient:
    """The queue service of ``AzureWebJobsStorage``, by connection string or by identity."""
    if settings.storage_connection:
        return QueueServiceClient.from_connection_string(settings.storage_connection, transport=_transport())
    if settings.storage_queue_service_uri is None:  # Settings guarantees one of the two
        raise QueueUnavailable("no storage account is configured")
    if credential is None or settings.storage_client_id:
        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
    return QueueServiceClient(settings.storage_queue_service_uri, credential=credential, transport=_transport())


def _transport() -> RequestsTransport:
    return sdk_transport(connection_timeout=_CONNECTION_TIMEOUT, read_timeout=_READ_TIMEOUT)


class QueueSender:
    """Sends to named queues of one service, reusing one ``QueueClient`` per queue."""

    def __init__(self, service: QueueServiceClient) -> None:
        self._service = service
        self._clients: dict[str, QueueClient] = {}

    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None:
        delay = max(0, min(int(delay_seconds), MAX_DELAY_SECONDS))
        client = self._client(queue_name)
        try:
            client.send_message(text, visibility_timeout=delay, time_to_live=_NEVER_EXPIRES)
        except AzureError as exc:
            if getattr(exc, "error_code", None) != "QueueNotFound":
                raise QueueUnavailable(f"cannot send to queue {queue_name!r}: {exc}") from exc
            self._create(client)
            try:
                client.send_message(text, visibility_timeout=delay, time_to_live=_NEVER_EXPIRES)
            except AzureError as retry_exc:
                raise QueueUnavailable(f"cannot send to queue {queue_name!r}: {retry_exc}") from retry_exc

    def _client(self, queue_name: str) -> QueueClient:
        client = self._clients.get(queue_name)
        if client is None:
            client = self._service.get_queue_client(queue_name)
            self._clients[queue_name] = client
        return client

    @staticmethod
    def _create(client: QueueClient) -> None:
        logger.info("creating queue %s", client.queue_name)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
