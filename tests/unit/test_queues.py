"""Queue service construction from the storage settings (no network: clients connect lazily)."""

from __future__ import annotations

from azure.identity import DefaultAzureCredential

from shared.queues import queue_service
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
