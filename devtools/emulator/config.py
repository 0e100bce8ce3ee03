"""The emulator's behaviour settings: what a backup does, how ARM limits and fails, as typed frozen values.

The JSON form (file given with --config, or patches POSTed to /_emulator/config) uses the field names below;
README.md shows an example. Durations are emulated seconds unless the name says real.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .inventory import Item
from .typed_json import build

OPERATION_OUTCOMES = ("Succeeded", "Failed", "Canceled")
JOB_OUTCOMES = ("Completed", "CompletedWithWarnings", "Failed", "Cancelled")
# Where a second trigger of a busy item shows up: a 400 on the POST, a Failed operation, or a Failed job.
IN_PROGRESS_MODES = ("post", "operation", "job")
FAULT_KINDS = ("500", "503", "429", "drop", "slow", "malformed", "missing_headers")
REQUEST_KINDS = (
    "*", "trigger", "operation_status", "operation_results", "job_get", "job_list", "items_list", "backup_status",
    "vm_get", "token", "unknown",
)
MAX_SLOW_SECONDS = 300.0
# Settings that shape sockets, files or the clock's origin: fixed once the emulator runs.
STARTUP_ONLY = frozenset({"inventory", "arm_port", "identity_port", "clock_start", "request_log_limit"})
# The Recovery Services backup api-versions ARM knows (stable and preview); 2016-12-01 is what the
# service's own operation URLs carry.
API_VERSIONS = (
    "2016-06-01", "2016-08-10", "2016-12-01", "2017-07-01", "2019-05-13", "2019-06-15", "2020-10-01", "2020-12-01",
    "2021-01-01", "2021-02-01", "2021-02-10", "2021-03-01", "2021-04-01", "2021-06-01", "2021-07-01", "2021-08-01",
    "2021-10-01", "2021-12-01", "2022-01-01", "2022-02-01", "2022-03-01", "2022-04-01", "2022-06-01-preview",
    "2022-09-01-preview", "2022-09-30-preview", "2022-10-01", "2023-01-01", "2023-02-01", "2023-04-01",
    "2023-06-01", "2023-08-01", "2024-01-01", "2024-02-01", "2024-04-01", "2024-07-30-preview", "2024-10-01",
    "2024-11-01-preview", "2025-01-01", "2025-02-01",
)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class Behaviour:
    """What one trigger does; set in `defaults`, per item in the inventory, and per item name in `items`."""

    operation_seconds: float = 120.0
    operation_retry_after: float = 60.0
    job_seconds: float = 600.0
    operation_outcome: str = "Succeeded"
    job_outcome: str = "Completed"
    error_code: str | None = None
    error_message: str | None = None
    error_number: int = 400000

    def __post_init__(self) -> None:
        _require(self.operation_seconds >= 0 and self.job_seconds >= 0, "durations must be >= 0")
        _require(self.operation_retry_after > 0, "operation_retry_after must be > 0")
        _require(self.operation_outcome in OPERATION_OUTCOMES, f"operation_outcome must be one of {OPERATION_OUTCOMES}")
        _require(self.job_outcome in JOB_OUTCOMES, f"job_outcome must be one of {JOB_OUTCOMES}")

    def merged(self, overrides: Mapping[str, Any], where: str = "behaviour") -> Behaviour:
        return build(Behaviour, {**dataclasses.asdict(self), **overrides}, where)


@dataclass(frozen=True)
class Bucket:
    """A token bucket: `capacity` requests at once, refilled by `refill_per_second` per real second."""

    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        _require(self.capacity >= 1 and self.refill_per_second > 0, "bucket needs capacity >= 1 and refill > 0")


@dataclass(frozen=True)
class ThrottleConfig:
    writes: Bucket = Bucket(1000.0, 100.0)
    reads: Bucket = Bucket(10000.0, 1000.0)


@dataclass(frozen=True)
class FaultSpec:
    """One injected failure; `when` (drop only) says whether the request took effect before the connection died."""

    fault: str = "500"
    when: str = "before"
    seconds: float = 1.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        _require(self.fault in FAULT_KINDS, f"fault must be one of {FAULT_KINDS}, not {self.fault!r}")
        _require(self.when in ("before", "after"), "when must be 'before' or 'after'")
        _require(0 <= self.seconds <= MAX_SLOW_SECONDS, f"seconds must be within 0..{MAX_SLOW_SECONDS}")
        _require(self.retry_after >= 0, "retry_after must be >= 0")


@dataclass(frozen=True)
class RateRule(FaultSpec):
    """Fault a share of the requests of one kind (`*` for any)."""

    request: str = "*"
    probability: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.request in REQUEST_KINDS, f"request must be one of {REQUEST_KINDS}")
        _require(0.0 <= self.probability <= 1.0, "probability must be within 0..1")


@dataclass(frozen=True)
class ScriptStep(FaultSpec):
    """The next scripted fault: lets `skip` matching requests pass, then faults `times` of them."""

    method: str = "*"
    path: str = ""
    skip: int = 0
    times: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            re.compile(self.path)
        except re.error as exc:
            raise ValueError(f"path is not a regular expression: {exc}") from exc
        _require(self.skip >= 0 and self.times >= 1, "skip must be >= 0 and times >= 1")


@dataclass(frozen=True)
class FaultsConfig:
    seed: int | None = None
    max_slow_seconds: float = 30.0
    rates: tuple[RateRule, ...] = ()
    script: tuple[ScriptStep, ...] = ()

    def __post_init__(self) -> None:
        within = 0 <= self.max_slow_seconds <= MAX_SLOW_SECONDS
        _require(within, f"max_slow_seconds must be within 0..{MAX_SLOW_SECONDS}")


def _default_daily_limits() -> dict[str, int | None]:
    # Azure Backup support matrices: on-demand backups per item and UTC day, VMs 9, Azure Files 10, SQL in VM 3.
    return {"AzureIaasVM": 9, "AzureStorage": 10, "AzureWorkload": 3}


def _default_attempt_limits() -> dict[str, int | None]:
    # Trigger attempts per item in any 24 hours: 9 for VMs and for SQL in VM; none documented for Azure Files.
    return {"AzureIaasVM": 9, "AzureStorage": None, "AzureWorkload": 9}


@dataclass(frozen=True)
class EmulatorConfig:
    time_scale: float = 1.0
    clock_start: str | None = None
    token_lifetime_seconds: float = 3600.0
    token_audiences: tuple[str, ...] = ("https://management.azure.com", "https://management.azure.com/")
    client_id: str = "11111111-2222-3333-4444-555555555555"
    api_versions: tuple[str, ...] = API_VERSIONS
    page_size: int = 50
    in_progress: str = "post"
    daily_limits: dict[str, int | None] = field(default_factory=_default_daily_limits)
    attempt_limits: dict[str, int | None] = field(default_factory=_default_attempt_limits)
    defaults: Behaviour = Behaviour()
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttle: ThrottleConfig = ThrottleConfig()
    faults: FaultsConfig = FaultsConfig()
    request_log_limit: int = 100000
    inventory: str | None = None
    arm_port: int = 0
    identity_port: int = 0

    def __post_init__(self) -> None:
        _require(self.time_scale > 0, "time_scale must be > 0")
        _require(self.token_lifetime_seconds >= 0, "token_lifetime_seconds must be >= 0")
        _require(self.page_size >= 1, "page_size must be >= 1")
        _require(self.in_progress in IN_PROGRESS_MODES, f"in_progress must be one of {IN_PROGRESS_MODES}")
        _require(self.request_log_limit >= 1, "request_log_limit must be >= 1")
        if self.clock_start is not None:
            start = datetime.fromisoformat(self.clock_start)
            _require(start.tzinfo is not None, "clock_start needs a time zone, e.g. 2026-01-01T00:00:00Z")
        for name, overrides in self.items.items():
            self.defaults.merged(overrides, f"items.{name}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmulatorConfig:
        return build(cls, data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (lists, not tuples), which from_dict reads back."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[no-any-return]

    def behaviour_for(self, item: Item) -> Behaviour:
        """Defaults, then the inventory's overrides for the item, then the runtime overrides by item name."""
        runtime = {name.lower(): overrides for name, overrides in self.items.items()}
        behaviour = self.defaults.merged(item.overrides, f"inventory {item.name}")
        return behaviour.merged(runtime.get(item.name.lower(), {}), f"items.{item.name}")

    def daily_limit(self, backup_management_type: str) -> int | None:
        return self.daily_limits.get(backup_management_type)

    def attempt_limit(self, backup_management_type: str) -> int | None:
        return self.attempt_limits.get(backup_management_type)
