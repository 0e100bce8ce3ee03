"""The ledger's table client from the storage settings (no network: clients connect lazily)."""

from __future__ import annotations

import pytest
from azure.data.tables import TableClient
from azure.identity import DefaultAzureCredential

from shared.ledger_table import TableStore, ledger_store, ledger_table_client
from shared.settings import Settings, SettingsError
from tests.fakes import FakeCredential

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
    "QueueEndpoint=http://127.0.0.1:10999/devstoreaccount1;TableEndpoint=http://127.0.0.1:10998/devstoreaccount1;"
)


def store(environ: dict[str, str], credential: FakeCredential | None = None) -> TableStore:
    found = ledger_store(Settings.from_environment(environ), credential)
    assert found is not None
    return found


def client_of(environ: dict[str, str], credential: FakeCredential | None = None) -> TableClient:
    settings = Settings.from_environment(environ)
    assert settings.ledger_table is not None
    return ledger_table_client(settings, settings.ledger_table, credential)


def test_a_connection_string_with_a_table_endpoint_names_the_account_and_endpoint() -> None:
    client = client_of({"AzureWebJobsStorage": AZURITE})

    assert client.account_name == "devstoreaccount1"
    assert client.url.startswith("http://127.0.0.1:10998/devstoreaccount1")
    assert client.table_name == "backupledger"


@pytest.mark.parametrize("connection", ["UseDevelopmentStorage=true", " UseDevelopmentStorage=true; "])
def test_development_storage_is_azurites_table_service(connection: str) -> None:
    settings = Settings.from_environment({"AzureWebJobsStorage": connection})

    client = ledger_table_client(settings, "backupledger")

    assert client.url.startswith("http://127.0.0.1:10002/devstoreaccount1")


def test_an_account_connection_string_reaches_the_public_table_endpoint() -> None:
    connection = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"

    client = ledger_table_client(Settings.from_environment({"AzureWebJobsStorage": connection}), "backupledger")

    assert client.url.startswith("https://acct.table.core.windows.net")


def test_a_connection_string_with_other_endpoints_but_no_table_endpoint_is_refused_by_name() -> None:
    queue_only = AZURITE.split("TableEndpoint=", maxsplit=1)[0]

    with pytest.raises(SettingsError) as caught:
        ledger_table_client(Settings.from_environment({"AzureWebJobsStorage": queue_only}), "backupledger")

    assert "TableEndpoint" in str(caught.value)
    assert "BACKUP_LEDGER_TABLE" in str(caught.value)
    assert KEY not in str(caught.value)


def test_a_malformed_connection_string_is_a_settings_error_that_does_not_repeat_it() -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage") as caught:
        ledger_table_client(Settings.from_environment({"AzureWebJobsStorage": "AccountKey=hunter2"}), "backupledger")

    assert "hunter2" not in str(caught.value)


def test_identity_based_storage_uses_the_app_credential() -> None:
    credential = FakeCredential()
    environ = {
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net/",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net/",
    }

    client = client_of(environ, credential)

    assert client.url.startswith("https://acct.table.core.windows.net")
    assert client.credential is credential


def test_an_account_name_becomes_the_public_table_endpoint() -> None:
    client = client_of({"AzureWebJobsStorage__accountName": "acct2"}, FakeCredential())

    assert client.url.startswith("https://acct2.table.core.windows.net")


def test_a_client_id_selects_a_user_assigned_identity_for_the_table() -> None:
    app_credential = FakeCredential()
    environ = {"AzureWebJobsStorage__accountName": "acct3", "AzureWebJobsStorage__clientId": "1111-2222"}

    client = client_of(environ, app_credential)

    assert client.credential is not app_credential
    assert isinstance(client.credential, DefaultAzureCredential)


def test_identity_based_storage_without_a_table_endpoint_names_the_setting() -> None:
    environ = {"AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net"}

    with pytest.raises(SettingsError) as caught:
        ledger_store(Settings.from_environment(environ), FakeCredential())

    assert "AzureWebJobsStorage__tableServiceUri" in str(caught.value)
    assert "BACKUP_LEDGER_TABLE" in str(caught.value)


def test_the_store_uses_the_configured_table() -> None:
    assert store({"AzureWebJobsStorage": AZURITE}).table_name == "backupledger"
    assert store({"AzureWebJobsStorage": AZURITE, "BACKUP_LEDGER_TABLE": "Ledger2"}).table_name == "Ledger2"


@pytest.mark.parametrize(
    "storage",
    [
        {"AzureWebJobsStorage": AZURITE},
        {"AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net"},  # no table endpoint at all
    ],
)
def test_an_empty_ledger_table_setting_turns_the_ledger_off(storage: dict[str, str]) -> None:
    settings = Settings.from_environment({**storage, "BACKUP_LEDGER_TABLE": ""})

    assert ledger_store(settings, FakeCredential()) is None
