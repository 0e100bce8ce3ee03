"""shared.settings, ledger changes: the ledger table, retention, daily limits, and the table endpoint."""

from __future__ import annotations

import pytest

from shared.settings import CLOUDS, Settings, SettingsError
from tests.fakes import env


def load(**overrides: str) -> Settings:
    return Settings.from_environment(env(**overrides))


# --- BACKUP_LEDGER_TABLE -------------------------------------------------------------------


def test_the_ledger_is_on_by_default() -> None:
    settings = load()

    assert settings.ledger_table == "backupledger"
    assert settings.ledger_retention_days == 30
    assert settings.daily_trigger_limits == {}


@pytest.mark.parametrize("raw", ["", " ", "\t\n"])
def test_an_empty_ledger_table_turns_the_ledger_off(raw: str) -> None:
    assert load(BACKUP_LEDGER_TABLE=raw).ledger_table is None


@pytest.mark.parametrize(
    ("raw", "name"),
    [("myLedger", "myLedger"), (" ledger2 ", "ledger2"), ("abc", "abc"), ("a" + "b" * 62, "a" + "b" * 62),
     ("L3dger", "L3dger")],
)
def test_a_valid_table_name_is_used(raw: str, name: str) -> None:
    assert load(BACKUP_LEDGER_TABLE=raw).ledger_table == name


@pytest.mark.parametrize(
    "raw",
    ["ab", "a" * 64, "1ledger", "back-up", "back_up", "backup ledger", "ledger/x", "l\u00e9dger", "ledger\x00",
     "\uff21\uff22\uff23", "ledger\u0663"],  # fullwidth ABC, an Arabic-Indic digit: letters and digits, not ASCII
)
def test_an_invalid_table_name_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="BACKUP_LEDGER_TABLE"):
        load(BACKUP_LEDGER_TABLE=raw)


@pytest.mark.parametrize("raw", ["tables", "Tables"])
def test_the_reserved_table_name_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="BACKUP_LEDGER_TABLE"):
        load(BACKUP_LEDGER_TABLE=raw)


# --- LEDGER_RETENTION_DAYS -----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "days"), [("1", 1), (" 7 ", 7), ("3650", 3650)])
def test_the_retention_is_read(raw: str, days: int) -> None:
    assert load(LEDGER_RETENTION_DAYS=raw).ledger_retention_days == days


@pytest.mark.parametrize("raw", ["0", "-1", "seven", "1.5", "7d"])
def test_a_bad_retention_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="LEDGER_RETENTION_DAYS"):
        load(LEDGER_RETENTION_DAYS=raw)


# --- DAILY_TRIGGER_LIMITS ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "limits"),
    [
        ("", {}),
        ("  ", {}),
        ("VM=9,AzureFileShare=10,SQLDataBase=3,SAPHanaDatabase=3",
         {"vm": 9, "azurefileshare": 10, "sqldatabase": 3, "saphanadatabase": 3}),
        ("VM=3", {"vm": 3}),
        (" VM = 4 ; SAPAseDatabase=2 ", {"vm": 4, "sapasedatabase": 2}),
        ("VM=1,,", {"vm": 1}),
    ],
)
def test_daily_limits_are_read_by_lower_cased_item_type(raw: str, limits: dict[str, int]) -> None:
    assert load(DAILY_TRIGGER_LIMITS=raw).daily_trigger_limits == limits


@pytest.mark.parametrize(
    "raw",
    ["VM", "VM=", "=3", "VM=0", "VM=-1", "VM=x", "VM=1.5", "VM=3=4", "VM:3", "VM=9,AzureFileShare"],
)
def test_malformed_daily_limits_are_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="DAILY_TRIGGER_LIMITS"):
        load(DAILY_TRIGGER_LIMITS=raw)


def test_a_superscript_daily_limit_is_refused_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="DAILY_TRIGGER_LIMITS"):
        load(DAILY_TRIGGER_LIMITS="VM=²")


# --- the table endpoint --------------------------------------------------------------------


def test_a_connection_string_leaves_both_service_uris_to_it() -> None:
    settings = load()

    assert (settings.storage_queue_service_uri, settings.storage_table_service_uri) == (None, None)


def test_identity_based_storage_reads_the_table_service_uri() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net/",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net/",
    })

    assert settings.storage_connection is None
    assert settings.storage_queue_service_uri == "https://acct.queue.core.windows.net"
    assert settings.storage_table_service_uri == "https://acct.table.core.windows.net"


def test_a_queue_service_uri_alone_gives_no_table_service_uri() -> None:
    settings = Settings.from_environment({"AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net"})

    assert settings.storage_table_service_uri is None


def test_a_table_service_uri_alone_is_not_storage_for_the_queues() -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        Settings.from_environment({"AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net"})


@pytest.mark.parametrize(
    ("cloud", "suffix"),
    [("AzureCloud", "core.windows.net"), ("AzureUSGovernment", "core.usgovcloudapi.net"),
     ("AzureChinaCloud", "core.chinacloudapi.cn"), ("azurechinacloud", "core.chinacloudapi.cn")],
)
def test_an_account_name_derives_both_uris_with_the_clouds_storage_suffix(cloud: str, suffix: str) -> None:
    settings = Settings.from_environment({"AzureWebJobsStorage__accountName": "acct01", "AZURE_CLOUD": cloud})

    assert settings.storage_queue_service_uri == f"https://acct01.queue.{suffix}"
    assert settings.storage_table_service_uri == f"https://acct01.table.{suffix}"


def test_every_cloud_has_a_storage_suffix() -> None:
    assert {name: cloud.storage_suffix for name, cloud in CLOUDS.items()} == {
        "azurecloud": "core.windows.net", "azureusgovernment": "core.usgovcloudapi.net",
        "azurechinacloud": "core.chinacloudapi.cn",
    }


def test_explicit_service_uris_win_over_the_account_name() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage__accountName": "acct01",
        "AzureWebJobsStorage__tableServiceUri": "https://tables.example/",
    })

    assert settings.storage_table_service_uri == "https://tables.example"
    assert settings.storage_queue_service_uri == "https://acct01.queue.core.windows.net"


def test_a_connection_string_wins_over_a_table_service_uri() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
    })

    assert (settings.storage_connection, settings.storage_table_service_uri) == ("UseDevelopmentStorage=true", None)


def test_the_new_settings_are_documented() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    sample = (root / "local.settings.sample.json").read_text(encoding="utf-8")
    for name in ("BACKUP_LEDGER_TABLE", "LEDGER_RETENTION_DAYS", "DAILY_TRIGGER_LIMITS"):
        assert f"`{name}`" in readme and f'"{name}"' in sample, name
    assert "`__tableServiceUri`" in readme
