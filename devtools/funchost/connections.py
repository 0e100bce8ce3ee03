"""Queue clients for a binding's ``connection``, resolved the way the Functions host resolves it.

A binding names an app setting (empty means ``AzureWebJobsStorage``; a name ``X`` is looked up as
``AzureWebJobsX`` first, then ``X``). The setting is either a connection string (including
``UseDevelopmentStorage=true``) or, identity-based, ``X__queueServiceUri`` / ``X__accountName``
with optional ``X__credential=managedidentity`` and ``X__clientId``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from azure.core.credentials import TokenCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.queue import LinearRetry, QueueClient, QueueServiceClient

from devtools.funchost.appsettings import AppSettings
from devtools.funchost.errors import ConfigError
from shared.httpsession import pooled_session

__all__ = ["DEFAULT_CONNECTION", "QueueConnections", "StorageConnection", "resolve_connection"]

DEFAULT_CONNECTION = "AzureWebJobsStorage"
DEVSTORE_ACCOUNT = "devstoreaccount1"
DEVSTORE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Enough pooled connections for every worker thread, so a busy host never re-dials Azurite.
_POOL_SIZE = 64


@dataclass(frozen=True)
class StorageConnection:
    setting: str
    connection_string: str | None = None
    queue_service_uri: str | None = None
    client_id: str | None = None
    managed_identity_only: bool = False


def resolve_connection(settings: AppSettings, connection: str) -> StorageConnection:
    name = connection or DEFAULT_CONNECTION
    candidates = [name] if name.lower().startswith("azurewebjobs") else [f"AzureWebJobs{name}", name]
    for setting in candidates:
        value = settings.get(setting)
        if value:
            return StorageConnection(setting, connection_string=_expand_development_storage(value))
        section = settings.section(setting)
        uri = section.get("queueserviceuri")
        account = section.get("accountname")
        if uri or account:
            return StorageConnection(
                setting,
                queue_service_uri=(uri or f"https://{account}.queue.core.windows.net").rstrip("/"),
                client_id=section.get("clientid"),
                managed_identity_only=section.get("credential", "").lower() == "managedidentity",
            )
    raise ConfigError(
        f"the storage connection '{name}' is not configured: set the app setting {name} to a connection "
        f"string, or {name}__queueServiceUri / {name}__accountName for an identity-based connection"
    )


def _expand_development_storage(connection_string: str) -> str:
    """``UseDevelopmentStorage=true`` as the explicit Azurite connection string it stands for."""
    parts = dict(
        (key.strip().lower(), value.strip())
        for key, _, value in (part.partition("=") for part in connection_string.split(";") if part.strip())
    )
    if parts.get("usedevelopmentstorage", "").lower() != "true":
        return connection_string
    proxy = parts.get("developmentstorageproxyuri", "http://127.0.0.1").rstrip("/")
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEVSTORE_ACCOUNT};AccountKey={DEVSTORE_KEY};"
        f"QueueEndpoint={proxy}:10001/{DEVSTORE_ACCOUNT};"
    )


class QueueConnections:
    """One ``QueueServiceClient`` per connection setting and one ``QueueClient`` per queue, shared."""

    def __init__(self, settings: AppSettings, *, connect_timeout: int = 5, read_timeout: int = 30) -> None:
        self._settings = settings
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._services: dict[str, QueueServiceClient] = {}
        self._queues: dict[tuple[str, str], QueueClient] = {}
        self._session = pooled_session(_POOL_SIZE)  # as the app's own clients

    def describe(self, connection: str) -> StorageConnection:
        return resolve_connection(self._settings, connection)

    def service(self, connection: str) -> QueueServiceClient:
        with self._lock:
            client = self._services.get(connection)
            if client is None:
                client = self._build(resolve_connection(self._settings, connection))
                self._services[connection] = client
            return client

    def queue(self, connection: str, queue_name: str) -> QueueClient:
        service = self.service(connection)
        with self._lock:
            client = self._queues.get((connection, queue_name))
            if client is None:
                client = service.get_queue_client(queue_name)
                self._queues[(connection, queue_name)] = client
            return client

    def close(self) -> None:
        self._session.close()

    def _build(self, connection: StorageConnection) -> QueueServiceClient:
        transport = RequestsTransport(
            session=self._session,
            session_owner=False,
            connection_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
        )
        # Short SDK retries: the listener has its own back-off, and settling a message retries itself.
        retry = LinearRetry(backoff=1, random_jitter_range=1, retry_total=2)
        try:
            if connection.connection_string is not None:
                return QueueServiceClient.from_connection_string(
                    connection.connection_string, transport=transport, retry_policy=retry
                )
        except ValueError as exc:
            raise ConfigError(f"the app setting {connection.setting} is not a valid connection string: {exc}") from exc
        if connection.queue_service_uri is None:
            raise ConfigError(f"the storage connection {connection.setting} names no queue service")
        return QueueServiceClient(
            connection.queue_service_uri, credential=_credential(connection), transport=transport, retry_policy=retry
        )


def _credential(connection: StorageConnection) -> TokenCredential:
    # Imported here so connection-string apps never pay for the credential chain.
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if connection.managed_identity_only:
        return ManagedIdentityCredential(client_id=connection.client_id)
    return DefaultAzureCredential(managed_identity_client_id=connection.client_id)
