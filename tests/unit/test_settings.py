"""shared.settings: defaults, clouds, overrides, storage forms, allow-lists, malformed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import CLOUDS, Settings, SettingsError
from tests.fakes import RecordingEnvironment, env

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def load(**overrides: str) -> Settings:
    return Settings.from_environment(env(**overrides))


def test_defaults_match_the_documented_table() -> None:
    settings = Settings.from_environment(dict(STORAGE))

    assert settings.storage_connection == "UseDevelopmentStorage=true"
    assert settings.storage_queue_service_uri is None
    assert settings.storage_client_id is None
    assert (settings.requests_queue, settings.status_queue, settings.results_queue) == (
        "backup-requests", "backup-status", "backup-results",
    )
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.arm_netloc == "management.azure.com"
    assert settings.arm_scope == "https://management.azure.com/.default"
    assert settings.api_version == "2024-04-01"
    assert settings.allowed_subscriptions == frozenset()
    assert settings.allowed_vaults == frozenset()
    assert settings.track_backup_jobs is True
    assert settings.min_delay_seconds == 5
    assert settings.poll_interval_seconds == 30
    assert (settings.job_poll_initial_seconds, settings.job_poll_max_seconds) == (60, 900)
    assert settings.retry_max_attempts == 8
    assert (settings.retry_base_seconds, settings.retry_max_seconds) == (10, 600)
    assert settings.operation_timeout_seconds == 6 * 3600
    assert settings.job_timeout_seconds == 48 * 3600
    assert (settings.http_connect_timeout_seconds, settings.http_read_timeout_seconds) == (10.0, 60.0)
    assert (settings.batch_triggers_per_minute, settings.batch_max_items) == (60, 1000)


def test_settings_are_frozen() -> None:
    settings = load()
    with pytest.raises(AttributeError):
        settings.api_version = "x"  # type: ignore[misc]


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__accountName", "ARM_ENDPOINT",
                 "AZURE_CLOUD", "ARM_SCOPE", "BACKUP_API_VERSION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv("BACKUP_RESULTS_QUEUE", "results-from-os-environ")

    assert Settings.from_environment().results_queue == "results-from-os-environ"


@pytest.mark.parametrize(
    ("cloud", "endpoint", "scope"),
    [
        ("AzureCloud", "https://management.azure.com", "https://management.azure.com/.default"),
        ("azurecloud", "https://management.azure.com", "https://management.azure.com/.default"),
        ("AzureUSGovernment", "https://management.usgovcloudapi.net",
         "https://management.core.usgovcloudapi.net/.default"),
        ("azureusgovernment", "https://management.usgovcloudapi.net",
         "https://management.core.usgovcloudapi.net/.default"),
        ("AzureChinaCloud", "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
        ("AZURECHINACLOUD", "https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
        (" AzureCloud ", "https://management.azure.com", "https://management.azure.com/.default"),
    ],
)
def test_each_cloud_picks_its_endpoint_and_scope(cloud: str, endpoint: str, scope: str) -> None:
    settings = load(AZURE_CLOUD=cloud)

    assert settings.arm_endpoint == endpoint
    assert settings.arm_scope == scope


def test_us_government_scope_host_differs_from_its_endpoint_host() -> None:
    settings = load(AZURE_CLOUD="AzureUSGovernment")

    assert settings.arm_netloc == "management.usgovcloudapi.net"
    assert settings.arm_scope.startswith("https://management.core.usgovcloudapi.net/")


def test_three_clouds_are_known() -> None:
    assert set(CLOUDS) == {"azurecloud", "azureusgovernment", "azurechinacloud"}


@pytest.mark.parametrize("cloud", ["AzureGermanCloud", "Azure", "public"])
def test_unknown_cloud_is_refused(cloud: str) -> None:
    with pytest.raises(SettingsError, match="AZURE_CLOUD"):
        load(AZURE_CLOUD=cloud)


@pytest.mark.parametrize(
    ("given", "endpoint", "netloc"),
    [
        ("https://localhost:8443", "https://localhost:8443", "localhost:8443"),
        ("https://localhost:8443/", "https://localhost:8443", "localhost:8443"),
        ("https://ARM.Example.test", "https://ARM.Example.test", "arm.example.test"),
    ],
)
def test_arm_endpoint_override(given: str, endpoint: str, netloc: str) -> None:
    settings = load(ARM_ENDPOINT=given)

    assert settings.arm_endpoint == endpoint
    assert settings.arm_netloc == netloc
    assert settings.arm_scope == "https://management.azure.com/.default"


def test_arm_scope_override_keeps_the_cloud_endpoint() -> None:
    settings = load(AZURE_CLOUD="AzureChinaCloud", ARM_SCOPE="api://emulator/.default")

    assert settings.arm_scope == "api://emulator/.default"
    assert settings.arm_endpoint == "https://management.chinacloudapi.cn"


def test_both_overrides_win_over_the_cloud() -> None:
    settings = load(AZURE_CLOUD="AzureUSGovernment", ARM_ENDPOINT="https://localhost:9443",
                    ARM_SCOPE="https://localhost/.default")

    assert (settings.arm_endpoint, settings.arm_scope) == ("https://localhost:9443", "https://localhost/.default")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://management.azure.com",
        "HTTP://localhost:8080",
        "https://management.azure.com/subscriptions",
        "https://management.azure.com/x/",
        "management.azure.com",
        "https://",
        "ftp://management.azure.com",
    ],
)
def test_arm_endpoint_must_be_https_host_without_path(endpoint: str) -> None:
    with pytest.raises(SettingsError, match="ARM_ENDPOINT"):
        load(ARM_ENDPOINT=endpoint)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://management.azure.com?x=1",
        "https://management.azure.com#fragment",
        "https://user@management.azure.com",
        "https://management.azure.com:99999",
    ],
)
def test_arm_endpoint_with_query_fragment_userinfo_or_bad_port_is_refused(endpoint: str) -> None:
    with pytest.raises(SettingsError, match="ARM_ENDPOINT"):
        load(ARM_ENDPOINT=endpoint)


# --- storage -------------------------------------------------------------------------------


def test_storage_connection_string() -> None:
    connection = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"
    settings = Settings.from_environment({"AzureWebJobsStorage": connection})

    assert settings.storage_connection == connection
    assert settings.storage_queue_service_uri is None


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://acct.queue.core.windows.net", "https://acct.queue.core.windows.net"),
        ("https://acct.queue.core.windows.net/", "https://acct.queue.core.windows.net"),
        ("http://127.0.0.1:10001/devstoreaccount1", "http://127.0.0.1:10001/devstoreaccount1"),
    ],
)
def test_storage_queue_service_uri(uri: str, expected: str) -> None:
    settings = Settings.from_environment({"AzureWebJobsStorage__queueServiceUri": uri})

    assert settings.storage_connection is None
    assert settings.storage_queue_service_uri == expected
    assert settings.storage_client_id is None


def test_storage_account_name_builds_the_public_queue_uri() -> None:
    settings = Settings.from_environment({"AzureWebJobsStorage__accountName": "acct01"})

    assert settings.storage_connection is None
    assert settings.storage_queue_service_uri == "https://acct01.queue.core.windows.net"


def test_storage_client_id_for_a_user_assigned_identity() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage__accountName": "acct01",
        "AzureWebJobsStorage__clientId": "9a3e0c55-1111-2222-3333-444444444444",
    })

    assert settings.storage_client_id == "9a3e0c55-1111-2222-3333-444444444444"
    assert settings.storage_queue_service_uri == "https://acct01.queue.core.windows.net"


def test_queue_service_uri_wins_over_account_name() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage__queueServiceUri": "https://custom.example/",
        "AzureWebJobsStorage__accountName": "acct01",
    })

    assert settings.storage_queue_service_uri == "https://custom.example"


def test_connection_string_wins_over_identity_settings() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AzureWebJobsStorage__accountName": "acct01",
    })

    assert settings.storage_connection == "UseDevelopmentStorage=true"
    assert settings.storage_queue_service_uri is None


def test_blank_connection_string_falls_through_to_identity() -> None:
    settings = Settings.from_environment({
        "AzureWebJobsStorage": "   ",
        "AzureWebJobsStorage__accountName": "acct01",
    })

    assert settings.storage_connection is None
    assert settings.storage_queue_service_uri == "https://acct01.queue.core.windows.net"


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"AzureWebJobsStorage": ""},
        {"AzureWebJobsStorage__clientId": "9a3e0c55-1111-2222-3333-444444444444"},
        {"AzureWebJobsStorage__accountName": "  "},
    ],
)
def test_missing_storage_is_an_error(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        Settings.from_environment(environ)


# --- queues, allow-lists, flags ------------------------------------------------------------


def test_queue_names_are_read() -> None:
    settings = load(BACKUP_REQUESTS_QUEUE="in", BACKUP_STATUS_QUEUE="mid", BACKUP_RESULTS_QUEUE="out")

    assert (settings.requests_queue, settings.status_queue, settings.results_queue) == ("in", "mid", "out")


def test_api_version_is_read() -> None:
    assert load(BACKUP_API_VERSION="2025-02-01").api_version == "2025-02-01"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", frozenset()),
        ("   ", frozenset()),
        ("AAAA", frozenset({"aaaa"})),
        ("A, b;C ,, ;", frozenset({"a", "b", "c"})),
        ("11111111-2222-3333-4444-555555555555,00000000-0000-0000-0000-00000000000A",
         frozenset({"11111111-2222-3333-4444-555555555555", "00000000-0000-0000-0000-00000000000a"})),
    ],
)
def test_allowed_subscriptions_parsing(raw: str, expected: frozenset[str]) -> None:
    assert load(ALLOWED_SUBSCRIPTIONS=raw).allowed_subscriptions == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("vault-a", frozenset({"vault-a"})),
        ("RG-One/Vault-A, vault-b; rg2/VAULT-C", frozenset({"rg-one/vault-a", "vault-b", "rg2/vault-c"})),
    ],
)
def test_allowed_vaults_parsing(raw: str, expected: frozenset[str]) -> None:
    assert load(ALLOWED_VAULTS=raw).allowed_vaults == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("Yes", True),
     ("false", False), ("False", False), ("0", False), ("no", False), ("NO", False), (" ", True), ("", True)],
)
def test_track_backup_jobs_flag(raw: str, expected: bool) -> None:
    assert load(TRACK_BACKUP_JOBS=raw).track_backup_jobs is expected


@pytest.mark.parametrize("raw", ["maybe", "2", "on", "off", "t", "truee"])
def test_bad_flag_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="TRACK_BACKUP_JOBS"):
        load(TRACK_BACKUP_JOBS=raw)


# --- numbers -------------------------------------------------------------------------------

INTEGER_SETTINGS = [
    ("MIN_DELAY_SECONDS", "min_delay_seconds", 0),
    ("POLL_INTERVAL_SECONDS", "poll_interval_seconds", 1),
    ("JOB_POLL_INITIAL_SECONDS", "job_poll_initial_seconds", 1),
    ("JOB_POLL_MAX_SECONDS", "job_poll_max_seconds", 1),
    ("RETRY_MAX_ATTEMPTS", "retry_max_attempts", 1),
    ("RETRY_BASE_SECONDS", "retry_base_seconds", 1),
    ("RETRY_MAX_SECONDS", "retry_max_seconds", 1),
    ("OPERATION_TIMEOUT_SECONDS", "operation_timeout_seconds", 1),
    ("JOB_TIMEOUT_SECONDS", "job_timeout_seconds", 1),
    ("BATCH_TRIGGERS_PER_MINUTE", "batch_triggers_per_minute", 1),
    ("BATCH_MAX_ITEMS", "batch_max_items", 1),
]


def _consistent(name: str, value: str) -> dict[str, str]:
    """Companion settings so that a value under test does not trip a cross-setting check."""
    companions = {
        "JOB_POLL_INITIAL_SECONDS": {"JOB_POLL_MAX_SECONDS": "100000"},
        "JOB_POLL_MAX_SECONDS": {"JOB_POLL_INITIAL_SECONDS": "1"},
        "RETRY_BASE_SECONDS": {"RETRY_MAX_SECONDS": "100000"},
        "RETRY_MAX_SECONDS": {"RETRY_BASE_SECONDS": "1"},
        "BATCH_TRIGGERS_PER_MINUTE": {"BATCH_MAX_ITEMS": "1"},
    }
    return {**companions.get(name, {}), name: value}


@pytest.mark.parametrize(("name", "attribute", "low"), INTEGER_SETTINGS)
def test_integer_settings_are_read(name: str, attribute: str, low: int) -> None:
    settings = load(**_consistent(name, " 777 "))
    assert getattr(settings, attribute) == 777


@pytest.mark.parametrize(("name", "attribute", "low"), INTEGER_SETTINGS)
def test_integer_settings_accept_their_lower_bound(name: str, attribute: str, low: int) -> None:
    settings = load(**_consistent(name, str(low)))
    assert getattr(settings, attribute) == low


@pytest.mark.parametrize(("name", "attribute", "low"), INTEGER_SETTINGS)
@pytest.mark.parametrize("raw", ["abc", "1.5", "10s", "0x10", "1e3"])
def test_integer_settings_refuse_non_integers(name: str, attribute: str, low: int, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load(**_consistent(name, raw))


@pytest.mark.parametrize(("name", "attribute", "low"), INTEGER_SETTINGS)
def test_integer_settings_refuse_values_below_their_bound(name: str, attribute: str, low: int) -> None:
    with pytest.raises(SettingsError, match=name):
        load(**_consistent(name, str(low - 1)))


def test_job_poll_max_below_initial_is_refused() -> None:
    with pytest.raises(SettingsError, match="JOB_POLL_MAX_SECONDS"):
        load(JOB_POLL_INITIAL_SECONDS="120", JOB_POLL_MAX_SECONDS="60")


def test_a_batch_maximum_that_cannot_be_released_within_the_queues_seven_days_is_refused() -> None:
    # One a minute: 10,020 items fit in a queue's 7-day delay less an hour; 10,021 do not.
    assert load(BATCH_TRIGGERS_PER_MINUTE="1", BATCH_MAX_ITEMS="10020").batch_max_items == 10020
    with pytest.raises(SettingsError, match="BATCH_MAX_ITEMS"):
        load(BATCH_TRIGGERS_PER_MINUTE="1", BATCH_MAX_ITEMS="10021")
    assert load(BATCH_TRIGGERS_PER_MINUTE="2", BATCH_MAX_ITEMS="20040").batch_max_items == 20040


def test_retry_max_below_base_is_refused() -> None:
    with pytest.raises(SettingsError, match="RETRY_MAX_SECONDS"):
        load(RETRY_BASE_SECONDS="30", RETRY_MAX_SECONDS="20")


@pytest.mark.parametrize(
    ("name", "attribute"),
    [("HTTP_CONNECT_TIMEOUT_SECONDS", "http_connect_timeout_seconds"),
     ("HTTP_READ_TIMEOUT_SECONDS", "http_read_timeout_seconds")],
)
@pytest.mark.parametrize(("raw", "expected"), [("2.5", 2.5), (" 3 ", 3.0), ("0.001", 0.001)])
def test_http_timeouts_are_read(name: str, attribute: str, raw: str, expected: float) -> None:
    assert getattr(load(**{name: raw}), attribute) == expected


@pytest.mark.parametrize("name", ["HTTP_CONNECT_TIMEOUT_SECONDS", "HTTP_READ_TIMEOUT_SECONDS"])
@pytest.mark.parametrize("raw", ["abc", "0", "-1", "-0.5", "ten"])
def test_bad_http_timeouts_are_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load(**{name: raw})


@pytest.mark.parametrize("name", ["HTTP_CONNECT_TIMEOUT_SECONDS", "HTTP_READ_TIMEOUT_SECONDS"])
@pytest.mark.parametrize("raw", ["nan", "inf", "Infinity"])
def test_non_finite_http_timeouts_are_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load(**{name: raw})


def test_every_setting_the_app_reads_is_in_the_sample_and_the_readme() -> None:
    root = Path(__file__).resolve().parents[2]
    environment = RecordingEnvironment({"AzureWebJobsStorage": ""} | {"AzureWebJobsStorage__accountName": "acct"})
    Settings.from_environment(environment)
    sample = json.loads((root / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    readme = (root / "README.md").read_text(encoding="utf-8")

    identity_storage = {name for name in environment.asked if name.startswith("AzureWebJobsStorage__")}
    assert set(sample) >= environment.asked - identity_storage
    for name in environment.asked:
        spellings = {f"`{name}`", f"`__{name.rpartition('__')[2]}`"}  # the README abbreviates the identity keys
        assert any(spelling in readme for spelling in spellings), f"{name} is not documented"
