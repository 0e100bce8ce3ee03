"""App settings: read once from the environment into one frozen, validated object.

The setting names are the app's public interface (see README, "Settings"). Nothing else in
the app reads ``os.environ``; everything receives a ``Settings``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["CLOUDS", "Cloud", "Settings", "SettingsError"]

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
_MAX_RELEASE_SPAN_SECONDS = 7 * 24 * 3600 - 3600  # the queue's limit, less an hour of slack for listing


class SettingsError(ValueError):
    """An app setting is missing or malformed; the app cannot start."""


@dataclass(frozen=True)
class Cloud:
    endpoint: str
    scope: str
    storage_suffix: str
    """What follows ``{account}.queue.`` / ``{account}.table.`` in the cloud's storage host names."""


# US Gov is the odd one out: its endpoint and its token audience differ in host name.
CLOUDS: Mapping[str, Cloud] = {
    "azurecloud": Cloud(
        "https://management.azure.com", "https://management.azure.com/.default", "core.windows.net"
    ),
    "azureusgovernment": Cloud(
        "https://management.usgovcloudapi.net",
        "https://management.core.usgovcloudapi.net/.default",
        "core.usgovcloudapi.net",
    ),
    "azurechinacloud": Cloud(
        "https://management.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/.default",
        "core.chinacloudapi.cn",
    ),
}


@dataclass(frozen=True)
class Settings:
    storage_connection: str | None
    """``AzureWebJobsStorage`` as a connection string, or None when storage is identity-based."""
    storage_queue_service_uri: str | None
    storage_table_service_uri: str | None
    """The ledger's table service when storage is identity-based; None with a connection string."""
    storage_client_id: str | None
    requests_queue: str
    status_queue: str
    results_queue: str
    arm_endpoint: str
    """Scheme and host (and port) of ARM, no trailing slash: the only place tokens go."""
    arm_scope: str
    api_version: str
    allowed_subscriptions: frozenset[str]
    """Lower-cased; empty means any."""
    allowed_vaults: frozenset[str]
    """Lower-cased vault names or ``resourceGroup/vault`` pairs; empty means any."""
    track_backup_jobs: bool
    min_delay_seconds: int
    poll_interval_seconds: int
    job_poll_initial_seconds: int
    job_poll_max_seconds: int
    retry_max_attempts: int
    retry_base_seconds: int
    retry_max_seconds: int
    operation_timeout_seconds: int
    job_timeout_seconds: int
    http_connect_timeout_seconds: float
    http_read_timeout_seconds: float
    ledger_table: str | None
    """The request ledger's table; None when ``BACKUP_LEDGER_TABLE`` is set empty (ledger off)."""
    ledger_retention_days: int
    daily_trigger_limits: Mapping[str, int]
    """Triggers allowed per item and UTC day, by the item name's type prefix (``VM``, ``SQLDataBase``…)
    lower-cased; a type not named has no limit of ours."""
    batch_triggers_per_minute: int
    """How fast a batch releases its requests: the children's POSTs per minute (``shared.batches``)."""
    batch_max_items: int
    """A batch selecting more items than this is refused before any starts."""

    @property
    def arm_netloc(self) -> str:
        return urlsplit(self.arm_endpoint).netloc.lower()

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        cloud_name = env.text("AZURE_CLOUD", "AzureCloud")
        cloud = CLOUDS.get(cloud_name.lower())
        if cloud is None:
            raise SettingsError(f"AZURE_CLOUD must be one of {', '.join(sorted(CLOUDS))}, not {cloud_name!r}")
        arm_endpoint = env.text("ARM_ENDPOINT", cloud.endpoint).rstrip("/")
        if not _is_plain_https_origin(arm_endpoint):
            raise SettingsError(f"ARM_ENDPOINT must be https://host[:port] and nothing else, not {arm_endpoint!r}")
        storage_connection, queue_service_uri, table_service_uri = _storage(env, cloud)
        settings = cls(
            storage_connection=storage_connection,
            storage_queue_service_uri=queue_service_uri,
            storage_table_service_uri=table_service_uri,
            storage_client_id=env.optional("AzureWebJobsStorage__clientId"),
            requests_queue=env.text("BACKUP_REQUESTS_QUEUE", "backup-requests"),
            status_queue=env.text("BACKUP_STATUS_QUEUE", "backup-status"),
            results_queue=env.text("BACKUP_RESULTS_QUEUE", "backup-results"),
            arm_endpoint=arm_endpoint,
            arm_scope=env.text("ARM_SCOPE", cloud.scope),
            api_version=env.text("BACKUP_API_VERSION", "2024-04-01"),
            allowed_subscriptions=env.lower_set("ALLOWED_SUBSCRIPTIONS"),
            allowed_vaults=env.lower_set("ALLOWED_VAULTS"),
            track_backup_jobs=env.flag("TRACK_BACKUP_JOBS", True),
            min_delay_seconds=env.integer("MIN_DELAY_SECONDS", 5, low=0),
            poll_interval_seconds=env.integer("POLL_INTERVAL_SECONDS", 30, low=1),
            job_poll_initial_seconds=env.integer("JOB_POLL_INITIAL_SECONDS", 60, low=1),
            job_poll_max_seconds=env.integer("JOB_POLL_MAX_SECONDS", 900, low=1),
            retry_max_attempts=env.integer("RETRY_MAX_ATTEMPTS", 8, low=1),
            retry_base_seconds=env.integer("RETRY_BASE_SECONDS", 10, low=1),
            retry_max_seconds=env.integer("RETRY_MAX_SECONDS", 600, low=1),
            operation_timeout_seconds=env.integer("OPERATION_TIMEOUT_SECONDS", 6 * 3600, low=1),
            job_timeout_seconds=env.integer("JOB_TIMEOUT_SECONDS", 48 * 3600, low=1),
            http_connect_timeout_seconds=env.number("HTTP_CONNECT_TIMEOUT_SECONDS", 10.0),
            http_read_timeout_seconds=env.number("HTTP_READ_TIMEOUT_SECONDS", 60.0),
            ledger_table=_ledger_table(env),
            ledger_retention_days=env.integer("LEDGER_RETENTION_DAYS", 30, low=1),
            daily_trigger_limits=_daily_limits(env.optional("DAILY_TRIGGER_LIMITS")),
            batch_triggers_per_minute=env.integer("BATCH_TRIGGERS_PER_MINUTE", 60, low=1),
            batch_max_items=env.integer("BATCH_MAX_ITEMS", 1000, low=1),
        )
        if settings.job_poll_max_seconds < settings.job_poll_initial_seconds:
            raise SettingsError("JOB_POLL_MAX_SECONDS must not be below JOB_POLL_INITIAL_SECONDS")
        if settings.retry_max_seconds < settings.retry_base_seconds:
            raise SettingsError("RETRY_MAX_SECONDS must not be below RETRY_BASE_SECONDS")
        # A batch's last request is released by a queue visibility delay, which cannot exceed 7 days.
        if settings.batch_max_items * 60 > settings.batch_triggers_per_minute * _MAX_RELEASE_SPAN_SECONDS:
            raise SettingsError(
                "BATCH_MAX_ITEMS at BATCH_TRIGGERS_PER_MINUTE would take longer than the 7 days a queue "
                "message can be delayed: raise the rate or lower the maximum"
            )
        return settings


def _ledger_table(env: _Env) -> str | None:
    # Set but empty turns the ledger off; unset means the default table.
    raw = env.raw("BACKUP_LEDGER_TABLE")
    if raw is None:
        return "backupledger"
    name = raw.strip()
    if not name:
        return None
    if not _TABLE_NAME.fullmatch(name) or name.lower() == "tables":  # "tables" is reserved by the service
        raise SettingsError(
            f"BACKUP_LEDGER_TABLE must be 3-63 letters and digits, starting with a letter, not {name!r}"
        )
    return name


def _daily_limits(raw: str | None) -> Mapping[str, int]:
    """``VM=9,AzureFileShare=10`` as ``{"vm": 9, "azurefileshare": 10}``."""
    limits: dict[str, int] = {}
    for part in (raw or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        kind, equals, count = part.partition("=")
        count = count.strip()
        if not equals or not kind.strip() or not (count.isascii() and count.isdigit()) or int(count) < 1:
            raise SettingsError(f"DAILY_TRIGGER_LIMITS must read like VM=9,AzureFileShare=10, not {part.strip()!r}")
        limits[kind.strip().lower()] = int(count)
    return limits


def _is_plain_https_origin(url: str) -> bool:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return False
    return (
        parts.scheme == "https" and bool(parts.hostname) and not parts.path and not parts.query
        and not parts.fragment and parts.username is None and parts.password is None and "@" not in parts.netloc
    )


def _storage(env: _Env, cloud: Cloud) -> tuple[str | None, str | None, str | None]:
    """Connection string, or the queue and table service URIs of identity-based storage."""
    connection = env.optional("AzureWebJobsStorage")
    if connection:
        return connection, None, None
    account = env.optional("AzureWebJobsStorage__accountName")
    queue_uri = env.optional("AzureWebJobsStorage__queueServiceUri")
    table_uri = env.optional("AzureWebJobsStorage__tableServiceUri")
    if account:
        queue_uri = queue_uri or f"https://{account}.queue.{cloud.storage_suffix}"
        table_uri = table_uri or f"https://{account}.table.{cloud.storage_suffix}"
    if queue_uri:
        return None, queue_uri.rstrip("/"), table_uri.rstrip("/") if table_uri else None
    raise SettingsError(
        "AzureWebJobsStorage is not set: give a connection string, or "
        "AzureWebJobsStorage__queueServiceUri / AzureWebJobsStorage__accountName"
    )


class _Env:
    """Typed, validating reads of one environment mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        return self._environ.get(name)

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def lower_set(self, name: str) -> frozenset[str]:
        raw = self.optional(name) or ""
        return frozenset(part.strip().lower() for part in raw.replace(";", ",").split(",") if part.strip())

    def flag(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        if raw.lower() in {"true", "1", "yes"}:
            return True
        if raw.lower() in {"false", "0", "no"}:
            return False
        raise SettingsError(f"{name} must be true or false, not {raw!r}")

    def integer(self, name: str, default: int, *, low: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
        if value < low:
            raise SettingsError(f"{name} must be at least {low}, not {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, not {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise SettingsError(f"{name} must be a positive number, not {raw!r}")
        return value
