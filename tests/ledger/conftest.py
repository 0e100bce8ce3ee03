"""Stores to run the ledger's store contract against: in memory, and in a table on a real Azurite.

One Azurite (queues and tables) serves the session; each test gets a table of its own, so no
test sees another's records. Without Azurite installed the table tests are skipped with the
reason, unless ``REQUIRE_INTEGRATION=1``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from devtools.azurite import Azurite, AzuriteNotInstalled, executable
from devtools.bench.counting import CountingStore
from devtools.funchost.processes import wait_until
from shared.ledger_store import LedgerStore, MemoryStore
from shared.ledger_table import TableStore, ledger_store
from shared.settings import Settings
from tests.fakes import Clock

# Azurite stamps Timestamp from the same system clock as ours; this much apart is unambiguous.
_CLOCK_GAP = timedelta(milliseconds=5)


@dataclass
class Subject:
    """A store under test, and how to draw a line in time between what was written and what will be."""

    store: LedgerStore
    boundary: Callable[[], datetime]


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    try:
        executable()
    except AzuriteNotInstalled as exc:
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    server = Azurite(f"pytest-ledger-{os.getpid()}", fresh=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def table_name() -> str:
    return f"ledger{uuid.uuid4().hex[:12]}"


@pytest.fixture
def table_store(azurite: Azurite, table_name: str) -> TableStore:
    """A store on a table that does not exist yet, built from settings as the app builds it."""
    store = ledger_store(
        Settings.from_environment({"AzureWebJobsStorage": azurite.connection_string, "BACKUP_LEDGER_TABLE": table_name})
    )
    assert store is not None
    return store


@pytest.fixture
def raw_table(azurite: Azurite, table_name: str) -> TableClient:
    """The same table through the SDK, to look behind the store's back."""
    return TableClient.from_connection_string(azurite.connection_string, table_name)


def table_boundary() -> datetime:
    line = datetime.now(UTC)
    wait_until(lambda: datetime.now(UTC) >= line + _CLOCK_GAP or None, timeout=5, what="the clock to move on")
    return line


def memory_subject() -> Subject:
    clock = Clock()

    def boundary() -> datetime:
        line = clock.now + timedelta(microseconds=1)
        clock.advance(1)
        return line

    return Subject(MemoryStore(clock), boundary)


@pytest.fixture(params=["memory", "counting", pytest.param("table", marks=pytest.mark.integration)])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "memory":
        return memory_subject()
    if request.param == "counting":  # the benchmark's decorator must keep the contract of what it wraps
        memory = memory_subject()
        return Subject(CountingStore(memory.store), memory.boundary)
    store: TableStore = request.getfixturevalue("table_store")
    return Subject(store, table_boundary)
