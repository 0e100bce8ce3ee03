"""The local stack as load runs use it: a generated estate, an emulator config file, app timing settings.

Also reads the local host's per-invocation log lines ("Executed <function> … outcome=… duration_ms=…")
and its process counters (/proc), for invocation counts, wall times and peak memory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench.estate import Estate
from devtools.funchost.hostconfig import load_host_config
from devtools.stack import REPO_ROOT, LocalStack

__all__ = [
    "HostLog", "Invocation", "app_timing", "base_config", "make_stack", "peak_rss_mb", "process_cpu_seconds",
    "remove_state", "use_stack_identity",
]

# Read by the local host only, as the Functions host reads AzureFunctionsJobHost__* app settings.
HOST_POLLING_OVERRIDE = "AzureFunctionsJobHost__extensions__queues__maxPollingInterval"
_MIN_HOST_POLL_SECONDS = 0.1

_EXECUTED = re.compile(
    r"Executed (?P<function>\w+) message=(?P<message>\S+) dequeue=(?P<dequeue>\d+) outcome=(?P<outcome>\w+) "
    r"duration_ms=(?P<duration>\d+)"
)


def base_config(time_scale: float, **overrides: Any) -> dict[str, Any]:
    """Emulator config for load runs: no daily or attempt limit, a budget no run reaches unless a test sets one."""
    config: dict[str, Any] = {
        "time_scale": time_scale,
        "daily_limits": {"AzureIaasVM": None, "AzureStorage": None, "AzureWorkload": None},
        "attempt_limits": {"AzureIaasVM": None, "AzureStorage": None, "AzureWorkload": None},
        "throttle": {
            "writes": {"capacity": 1_000_000, "refill_per_second": 1_000_000},
            "reads": {"capacity": 1_000_000, "refill_per_second": 1_000_000},
        },
        "request_log_limit": 1_000_000,
    }
    config.update(overrides)
    return config


def app_timing(scale: float) -> dict[str, str]:
    """The app's timing settings, and the host's idle polling, divided by the emulator's time scale.

    The app's are whole seconds, at least 1. host.json's ``maxPollingInterval`` is scaled too (through
    the override the local host honours, at least its 0.1 s floor): left at 10 real seconds it would
    stand for 300 emulated ones at scale 30. A follow-up would then be picked up that much after its
    Retry-After, and a late look needs fewer looks (see ``devtools.bench.schedule``).
    """
    def scaled(seconds: float) -> str:
        return str(max(1, round(seconds / scale)))

    polling = load_host_config(REPO_ROOT).queues.max_polling_interval
    return {
        "MIN_DELAY_SECONDS": "1",
        "POLL_INTERVAL_SECONDS": scaled(30),
        "JOB_POLL_INITIAL_SECONDS": scaled(60),
        "JOB_POLL_MAX_SECONDS": scaled(900),
        "RETRY_BASE_SECONDS": scaled(10),
        "RETRY_MAX_SECONDS": scaled(600),
        HOST_POLLING_OVERRIDE: _timespan(max(_MIN_HOST_POLL_SECONDS, polling / scale)),
    }


def _timespan(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"00:{int(minutes):02d}:{rest:06.3f}"


def make_stack(
    name: str,
    estate: Estate,
    config: Mapping[str, Any],
    app_settings: Mapping[str, str],
    *,
    host_args: Sequence[str] = (),
) -> LocalStack:
    """A LocalStack (not started) whose emulator serves ``estate`` with ``config``."""
    folder = REPO_ROOT / ".local" / "bench" / name
    inventory = estate.write(folder / "inventory.json")
    config_file = folder / "emulator-config.json"
    config_file.write_text(json.dumps(dict(config)), encoding="utf-8")
    return LocalStack(
        name,
        emulator_args=["--inventory", str(inventory), "--config", str(config_file)],
        host_env=dict(app_settings),
        host_args=["--no-settings", *host_args],
        ready_timeout=90.0,
    )


def remove_state(stack: LocalStack, *, logs: bool = True) -> None:
    """Delete what a finished run left under .local/ (Azurite data, emulator state, inventory, logs)."""
    for folder in (stack.azurite.data_dir, stack.emulator_state_dir, REPO_ROOT / ".local" / "bench" / stack.name):
        shutil.rmtree(folder, ignore_errors=True)
    if logs:
        for process in ("azurite", "emulator", "host"):
            stack.log_path(process).unlink(missing_ok=True)


@dataclass(frozen=True)
class Invocation:
    function: str
    message_id: str
    dequeue_count: int
    outcome: str
    duration_ms: int


class HostLog:
    """The host's log from a mark on: the log is appended to across host restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.mark()

    def mark(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode("utf-8", "replace")

    def invocations(self) -> list[Invocation]:
        return [
            Invocation(m["function"], m["message"], int(m["dequeue"]), m["outcome"], int(m["duration"]))
            for m in _EXECUTED.finditer(self.text())
        ]

    def outcomes(self) -> dict[str, int]:
        return dict(Counter(f"{i.function}:{i.outcome}" for i in self.invocations()))

    def count(self, needle: str) -> int:
        return self.text().count(needle)


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM) in MiB, on Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far, on Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


_IDENTITY_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE", "ARM_ENDPOINT")


def use_stack_identity(stack: LocalStack) -> None:
    """Point this process's DefaultAzureCredential and requests at the stack's emulator (benchmark only).

    The baselines and the in-process runs build their credentials as the app does, from the
    environment; the developer's own sign-in variables are removed so the token always comes
    from the emulator.
    """
    environment = stack.host_environment()
    for name in _IDENTITY_VARIABLES:
        os.environ[name] = environment[name]
    for name in list(os.environ):
        if name.startswith(("AZURE_CLIENT", "AZURE_TENANT", "AZURE_USERNAME", "AZURE_PASSWORD", "MSI_")):
            del os.environ[name]
