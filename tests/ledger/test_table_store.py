"""What only the table store does: create its table, type values on the wire, sweep with listed ETags."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.core.paging import ItemPaged
from azure.data.tables import EdmType, EntityProperty, TableClient, TableEntity

from devtools.azurite import Azurite
from shared.ledger_store import LedgerUnavailable, RecordKey, Stored
from shared.ledger_table import TableStore
from tests.ledger.conftest import table_boundary

pytestmark = pytest.mark.integration

KEY = RecordKey("9f86d081884c7d65-2026-11-27", "e3b0c44298fc1c14")


class MeddlingTable(TableClient):
    """A table client that lets a test act between the sweep's listing and its deletions."""

    after_listing: Callable[[], object] = staticmethod(lambda: None)

    def query_entities(self, query_filter: str, **kwargs: Any) -> ItemPaged[TableEntity]:
        listed = list(super().query_entities(query_filter, **kwargs))
        self.after_listing()
        return ItemPaged(lambda _token: listed, lambda page: (None, page))


def meddling_table(azurite: Azurite, table_name: str) -> MeddlingTable:
    table = MeddlingTable.from_connection_string(azurite.connection_string, table_name)
    assert isinstance(table, MeddlingTable)
    return table


def test_the_table_is_created_by_the_first_create_and_not_by_reads(
    table_store: TableStore, raw_table: TableClient
) -> None:
    assert table_store.read(KEY) is None
    with pytest.raises(ResourceNotFoundError):
        raw_table.get_entity(KEY.partition, KEY.row)  # a read created nothing, not even the table

    table_store.create(KEY, {"n": 1})

    assert raw_table.get_entity(KEY.partition, KEY.row)["n"] == 1


def test_a_second_store_on_an_existing_table_just_writes(azurite: Azurite, table_store: TableStore) -> None:
    table_store.create(KEY, {"n": 1})
    other = TableStore(TableClient.from_connection_string(azurite.connection_string, table_store.table_name))

    other.create(RecordKey(KEY.partition, "second"), {"n": 2})

    assert other.read(KEY) is not None
    assert table_store.read(RecordKey(KEY.partition, "second")) is not None


def test_numbers_go_as_int32_when_they_fit_and_as_int64_otherwise(
    table_store: TableStore, raw_table: TableClient
) -> None:
    table_store.create(KEY, {"small": 2**31 - 1, "large": 2**31, "negative_large": -(2**31) - 1})

    raw = raw_table.get_entity(KEY.partition, KEY.row)

    assert raw["small"] == 2**31 - 1 and not isinstance(raw["small"], EntityProperty)
    assert raw["large"] == EntityProperty(2**31, EdmType.INT64)
    assert raw["negative_large"] == EntityProperty(-(2**31) - 1, EdmType.INT64)


def test_instants_come_back_as_plain_utc_datetimes(table_store: TableStore) -> None:
    written = datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC)
    table_store.create(KEY, {"at": written.astimezone(timezone(timedelta(hours=-5)))})

    stored = table_store.read(KEY)

    assert stored is not None
    value = stored.fields["at"]
    assert type(value) is datetime
    assert (value, value.utcoffset()) == (written, timedelta(0))


def test_a_property_of_a_type_the_ledger_never_writes_is_left_out(
    table_store: TableStore, raw_table: TableClient
) -> None:
    table_store.create(KEY, {"n": 1})
    raw_table.upsert_entity({"PartitionKey": KEY.partition, "RowKey": KEY.row, "n": 1, "ratio": 0.5})

    stored = table_store.read(KEY)

    assert stored is not None
    assert dict(stored.fields) == {"n": 1}


def test_a_record_changed_after_the_sweep_listed_it_is_kept(azurite: Azurite, table_name: str) -> None:
    table = meddling_table(azurite, table_name)
    store = TableStore(table)
    kept, swept = RecordKey("p", "changed-after-listing"), RecordKey("p", "unchanged")
    kept_etag = store.create(kept, {"n": 1})
    store.create(swept, {"n": 1})
    cutoff = table_boundary()
    table.after_listing = lambda: store.replace(kept, {"n": 2}, kept_etag)

    deleted = store.delete_older_than(cutoff, limit=10)

    assert deleted == 1
    assert store.read(swept) is None
    stored = store.read(kept)
    assert stored is not None
    assert stored.fields == {"n": 2}


def test_a_record_another_sweep_deleted_first_is_not_counted(azurite: Azurite, table_name: str) -> None:
    table = meddling_table(azurite, table_name)
    store = TableStore(table)
    first, second = RecordKey("p", "a"), RecordKey("p", "b")
    store.create(first, {"n": 1})
    store.create(second, {"n": 1})
    cutoff = table_boundary()
    table.after_listing = lambda: TableClient.from_connection_string(
        azurite.connection_string, table_name
    ).delete_entity(first.partition, first.row)

    deleted = store.delete_older_than(cutoff, limit=10)

    assert deleted == 1
    assert [store.read(first), store.read(second)] == [None, None]


def test_a_sweep_of_a_table_never_written_deletes_nothing(table_store: TableStore) -> None:
    assert table_store.delete_older_than(datetime.now(UTC), limit=10) == 0


def test_records_survive_an_azurite_restart_on_the_same_ports(azurite: Azurite, table_store: TableStore) -> None:
    etag = table_store.create(KEY, {"n": 1})
    ports = (azurite.port, azurite.table_port)

    azurite.stop()
    with pytest.raises(LedgerUnavailable):
        table_store.read(KEY)
    azurite.start()

    assert (azurite.port, azurite.table_port) == ports
    assert table_store.read(KEY) == Stored({"n": 1}, etag)
