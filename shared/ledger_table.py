"""The request ledger in Azure Table storage: ``TableStore``, and its construction from the app settings.

The table lives in the ``AzureWebJobsStorage`` account the Functions host already needs, reached
by its connection string (``TableEndpoint``, or ``UseDevelopmentStorage=true``, which the SDK
itself maps to Azurite's ``127.0.0.1:10002``) or by identity with ``__tableServiceUri``. It is
created the first time a create finds it missing, not checked on every call.

Conflicts are the service's own verdicts: a create on a taken key (409) is ``RecordExists``, a
replace whose ETag no longer matches (412) or whose record is gone (404) is ``RecordChanged``.
Every other failure, the service unreachable included, is ``LedgerUnavailable``, whose message
names the operation, the status and the service's error code, never a connection string, key or
SAS. Entity mapping and Table limits: ``shared.ledger_entity``.

Calls fail fast rather than hang an invocation: connect and read timeouts, and at most two SDK
retries (short backoff) within a deadline per call; the host's redelivery does the rest. The
SDK retries a write only when it never reached the service (a connection not made): a write
whose answer was lost is ``LedgerUnavailable``, not retried, so that ``RecordExists`` and
``RecordChanged`` always mean another writer, never our own earlier attempt. The one exception
is a ``patient`` replace (the sent mark), whose repetition is harmless: it is retried on every
failure for a few seconds, to outlast a storage restart.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, UpdateMode
from azure.identity import DefaultAzureCredential

from shared.httpsession import sdk_transport
from shared.ledger_entity import from_entity, to_entity
from shared.ledger_store import Fields, LedgerUnavailable, RecordChanged, RecordExists, RecordKey, Stored
from shared.settings import Settings, SettingsError

__all__ = ["CLIENT_OPTIONS", "TableStore", "ledger_store", "ledger_table_client"]

logger = logging.getLogger(__name__)

CLIENT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 3.0,
    "read_timeout": 10.0,
    "timeout": 20,  # the whole call, retries and backoff included
    "retry_total": 2,
    "retry_backoff_factor": 0.25,
    "retry_backoff_max": 1,
}
"""Every ledger client's transport and retry settings: an unreachable ledger fails within seconds.

The two timeouts are the transport's (``_transport``), the rest the clients' retry policy."""

# Per call, for writes: no retry once the request may have reached the service (read errors, 5xx).
_WRITE_ONCE: dict[str, Any] = {"retry_read": 0, "retry_status": 0}
# Per call, for a patient write (the sent mark): every failure retried for up to eight seconds, which
# covers a storage restart or a failover blip and stays far inside the host's message lease.
_PATIENT: dict[str, Any] = {
    "retry_total": 6, "retry_connect": 6, "retry_read": 6, "retry_status": 6,
    "retry_backoff_factor": 0.5, "retry_backoff_max": 2, "timeout": 8,
}
_NO_CONTENT = {"response_preference": "return-no-content"}  # a create need not echo the entity back
_DELETED = 204
_SPLIT_ENDPOINTS = ("blobendpoint", "queueendpoint", "fileendpoint")
_QUERY_STRING = re.compile(r"\?[^\s'\")]*")


class TableStore:
    """A ``LedgerStore`` on one Azure Table; one instance per process, safe to share between threads."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def table_name(self) -> str:
        return self._table.table_name

    def read(self, key: RecordKey) -> Stored | None:
        try:
            entity = self._table.get_entity(key.partition, key.row)
        except ResourceNotFoundError:  # the record, or the whole table, is not there yet
            return None
        except AzureError as exc:
            raise self._unavailable("read", exc) from exc
        return Stored(from_entity(entity), str(entity.metadata["etag"]))

    def create(self, key: RecordKey, fields: Fields) -> str:
        entity = to_entity(key, fields)
        try:
            return self._insert(entity)
        except ResourceNotFoundError:  # a 404 on an insert can only mean the table is missing
            self._create_table()
        try:
            return self._insert(entity)
        except ResourceNotFoundError as exc:
            raise self._unavailable("create", exc) from exc

    def replace(self, key: RecordKey, fields: Fields, etag: str, *, patient: bool = False) -> str:
        entity = to_entity(key, fields)
        try:
            metadata = self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified,
                **(_PATIENT if patient else _WRITE_ONCE),
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise RecordChanged(f"{key} changed since it was read") from exc
        except AzureError as exc:
            if isinstance(exc, HttpResponseError) and exc.status_code == 412:
                raise RecordChanged(f"{key} changed since it was read") from exc
            raise self._unavailable("replace", exc) from exc
        return str(metadata["etag"])

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` records whose Timestamp is before ``cutoff``, each only as it was listed.

        The listing is a scan of the table (Timestamp is not indexed); it stops at ``limit``. A
        record changed after it was listed fails its ETag and is kept; another sweep's deletion
        of the same record is not counted.
        """
        if cutoff.tzinfo is None or cutoff.utcoffset() is None:
            raise ValueError("cutoff must be an aware datetime")
        if limit <= 0:
            return 0
        try:
            listed = self._table.query_entities(
                "Timestamp lt @cutoff",
                parameters={"cutoff": cutoff},
                select=["PartitionKey", "RowKey"],
                results_per_page=min(limit, 1000),
            )
            old = [
                (entity["PartitionKey"], entity["RowKey"], str(entity.metadata["etag"]))
                for entity in itertools.islice(listed, limit)
            ]
        except ResourceNotFoundError:
            return 0
        except AzureError as exc:
            raise self._unavailable("list old records", exc) from exc
        return sum(self._delete(partition, row, etag) for partition, row, etag in old)

    def read_partition(self, partition: str) -> list[tuple[str, Stored]]:
        """One query, paged by the SDK (1,000 entities a page); the service returns them in row key order."""
        try:
            entities = self._table.query_entities("PartitionKey eq @partition", parameters={"partition": partition})
            return [(str(entity["RowKey"]), Stored(from_entity(entity), str(entity.metadata["etag"])))
                    for entity in entities]
        except ResourceNotFoundError:  # no table yet: nothing was written
            return []
        except AzureError as exc:
            raise self._unavailable("read a partition", exc) from exc

    def _insert(self, entity: dict[str, Any]) -> str:
        try:
            metadata = self._table.create_entity(entity, **_WRITE_ONCE, **_NO_CONTENT)
        except ResourceExistsError as exc:
            raise RecordExists(f"{RecordKey(entity['PartitionKey'], entity['RowKey'])} exists") from exc
        except ResourceNotFoundError:
            raise
        except AzureError as exc:
            raise self._unavailable("create", exc) from exc
        return str(metadata["etag"])

    def _create_table(self) -> None:
        logger.info("creating ledger table %s", self.table_name)
        try:
            with contextlib.suppress(ResourceExistsError):
                self._table.create_table()
        except AzureError as exc:
            raise self._unavailable("create the table", exc) from exc

    def _delete(self, partition: str, row: str, etag: str) -> bool:
        statuses: list[int] = []

        def note_status(response: PipelineResponse[Any, Any]) -> None:
            statuses.append(response.http_response.status_code)

        try:
            # The SDK answers a 404 (already gone) with silence, so the status tells who deleted it.
            self._table.delete_entity(
                partition, row, etag=etag, match_condition=MatchConditions.IfNotModified, raw_response_hook=note_status
            )
        except ResourceModifiedError:
            return False
        except AzureError as exc:
            if isinstance(exc, HttpResponseError) and exc.status_code == 412:
                return False
            raise self._unavailable("delete an old record", exc) from exc
        return statuses[-1:] == [_DELETED]

    def _unavailable(self, action: str, exc: AzureError) -> LedgerUnavailable:
        return LedgerUnavailable(f"ledger table {self.table_name!r}: {action} failed: {describe(exc)}")


def describe(exc: AzureError) -> str:
    """Type, status, error code and the first line of the message, with URL query strings (SAS) cut."""
    parts = [type(exc).__name__]
    status = getattr(exc, "status_code", None)
    if status:
        parts.append(str(status))
    code = getattr(exc, "error_code", None)
    if code:
        parts.append(str(getattr(code, "value", code)))
    first_line = str(exc.message or "").strip().splitlines()[:1]
    if first_line:
        parts.append(_QUERY_STRING.sub("?…", first_line[0])[:300])
    return " ".join(parts)


def ledger_table_client(settings: Settings, table_name: str, credential: TokenCredential | None = None) -> TableClient:
    """A client of ``table_name`` in the ``AzureWebJobsStorage`` account, by connection string or by identity."""
    if settings.storage_connection:
        return _from_connection_string(settings.storage_connection, table_name)
    if settings.storage_table_service_uri is None:
        raise SettingsError(
            "the request ledger needs the storage account's table endpoint: set "
            "AzureWebJobsStorage__tableServiceUri (or AzureWebJobsStorage__accountName), "
            "or set BACKUP_LEDGER_TABLE empty to turn the ledger off"
        )
    if credential is None or settings.storage_client_id:
        credential = DefaultAzureCredential(managed_identity_client_id=settings.storage_client_id)
    return TableClient(
        settings.storage_table_service_uri, table_name, credential=credential, transport=_transport(),
        **CLIENT_OPTIONS,
    )


def _transport() -> RequestsTransport:
    return sdk_transport(
        connection_timeout=CLIENT_OPTIONS["connection_timeout"], read_timeout=CLIENT_OPTIONS["read_timeout"]
    )


def ledger_store(settings: Settings, credential: TokenCredential | None = None) -> TableStore | None:
    """The ledger's ``TableStore``, or None when ``BACKUP_LEDGER_TABLE`` turns the ledger off."""
    if settings.ledger_table is None:
        return None
    return TableStore(ledger_table_client(settings, settings.ledger_table, credential))


def _from_connection_string(connection: str, table_name: str) -> TableClient:
    text = connection.strip().rstrip(";")
    if text.lower() != "usedevelopmentstorage=true":
        parts = {
            name.strip().lower()
            for name, equals, _ in (part.partition("=") for part in text.split(";"))
            if equals
        }
        # Without this check the SDK would quietly aim at {account}.table.core.windows.net.
        if "tableendpoint" not in parts and "endpointsuffix" not in parts and parts & set(_SPLIT_ENDPOINTS):
            raise SettingsError(
                "AzureWebJobsStorage names its endpoints one by one but has no TableEndpoint, which the "
                "request ledger needs: add TableEndpoint=…, or set BACKUP_LEDGER_TABLE empty to turn the ledger off"
            )
    try:
        return TableClient.from_connection_string(text, table_name, transport=_transport(), **CLIENT_OPTIONS)
    except ValueError as exc:  # the SDK's messages name what is missing, never the string's content
        raise SettingsError(f"AzureWebJobsStorage is not a connection string the ledger can use: {exc}") from None

