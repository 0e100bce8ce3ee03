"""The whole local stack as child processes: Azurite, the Recovery Services emulator, the local host.

Each piece can be stopped, killed and started again on its own (chaos tests SIGKILL the host and
restart Azurite); logs go to ``.local/logs/<name>-<azurite|emulator|host>.log``. The host gets an
environment that points the app at Azurite and at the emulator's ARM and managed identity
endpoints; credential-chain variables from the caller's shell are removed so that the token
always comes from the emulator, never from a developer's real Azure sign-in.

The quick start that runs all of it for a person (``devtools/up``) is ``devtools.quickstart``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from devtools.funchost.processes import ManagedProcess, wait_until

__all__ = ["DEFAULT_QUEUES", "REPO_ROOT", "EmulatorEndpoints", "LocalStack"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUEUES = {
    "BACKUP_REQUESTS_QUEUE": "backup-requests",
    "BACKUP_STATUS_QUEUE": "backup-status",
    "BACKUP_RESULTS_QUEUE": "backup-results",
}
# DefaultAzureCredential tries these before managed identity; left in, a developer's own sign-in
# (or another identity endpoint) would be used instead of the emulator's.
_CREDENTIAL_VARIABLES = frozenset(
    {
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_USERNAME",
        "AZURE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
    }
)


@dataclass(frozen=True)
class EmulatorEndpoints:
    """The emulator's ``endpoints.json``, written once it serves."""

    arm_endpoint: str
    identity_endpoint: str
    identity_header: str
    ca_bundle: str
    admin_url: str

    @classmethod
    def read(cls, path: Path) -> EmulatorEndpoints | None:
        """The endpoints, or None while the file is absent or not complete yet."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        names = [field.name for field in fields(cls)]
        if not isinstance(document, dict) or not all(isinstance(document.get(name), str) for name in names):
            return None
        return cls(**{name: document[name] for name in names})


class LocalStack:
    """Start with ``with LocalStack("name") as stack:``; every piece is a restartable child process."""

    def __init__(
        self,
        name: str = "dev",
        *,
        app_root: Path = REPO_ROOT,
        with_emulator: bool = True,
        with_host: bool = True,
        azurite_port: int | None = None,
        emulator_args: Sequence[str] = (),
        host_env: Mapping[str, str] | None = None,
        host_args: Sequence[str] = (),
        http_port: int = 0,
        fresh: bool = True,
        ready_timeout: float = 60.0,
    ) -> None:
        """``http_port`` is where the host serves HTTP triggers; 0 picks a free port each start."""
        self.name = name
        self.app_root = app_root.resolve()
        self.with_emulator = with_emulator
        self.with_host = with_host
        self.ready_timeout = ready_timeout
        self._host_overrides = dict(host_env or {})
        self._local = REPO_ROOT / ".local"
        self.emulator_state_dir = self._local / "emulator" / name
        self._ready_file = self._local / "funchost" / f"{name}.ready.json"
        self._fresh_emulator = fresh
        self.azurite = Azurite(name, port=azurite_port, root=REPO_ROOT, fresh=fresh, log_path=self.log_path("azurite"))
        self.emulator = ManagedProcess(
            "emulator",
            [sys.executable, "-m", "devtools.emulator", "--state-dir", str(self.emulator_state_dir), *emulator_args],
            log_path=self.log_path("emulator"),
            cwd=REPO_ROOT,
        )
        host_argv = ["-m", "devtools.funchost", "--app-root", str(self.app_root), "--ready-file", str(self._ready_file),
                     "--http-port", str(http_port)]
        self.host = ManagedProcess(
            "host", [sys.executable, *host_argv, *host_args], log_path=self.log_path("host"), cwd=REPO_ROOT
        )
        self._endpoints: EmulatorEndpoints | None = None
        self.http_port: int | None = None
        """The port the running host serves HTTP triggers on (``http://127.0.0.1:{http_port}/api/…``)."""

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the whole stack -------------------------------------------------------------------------

    def start(self) -> None:
        self.start_azurite()
        if self.with_emulator:
            self.start_emulator()
        if self.with_host:
            self.start_host()

    def stop(self) -> None:
        """Stop in dependency order: the host finishes its invocations while storage is still up."""
        self.stop_host()
        self.stop_emulator()
        self.stop_azurite()

    def log_path(self, process: str) -> Path:
        return self._local / "logs" / f"{self.name}-{process}.log"

    @property
    def connection_string(self) -> str:
        return self.azurite.connection_string

    @property
    def endpoints(self) -> EmulatorEndpoints:
        if self._endpoints is None:
            raise RuntimeError("the emulator has not been started")
        return self._endpoints

    def queue_service(self) -> QueueServiceClient:
        return QueueServiceClient.from_connection_string(self.connection_string)

    @staticmethod
    def base_environment() -> dict[str, str]:
        """This process's environment less credential-chain variables and storage settings."""
        return {
            name: value
            for name, value in os.environ.items()
            if name not in _CREDENTIAL_VARIABLES and not name.lower().startswith("azurewebjobsstorage")
        }

    def host_environment(self) -> dict[str, str]:
        """The environment the host process gets (also usable for running the app's code in-process)."""
        env = self.base_environment()
        env.update(DEFAULT_QUEUES)
        env.update(AzureWebJobsStorage=self.connection_string, FUNCTIONS_WORKER_RUNTIME="python", PYTHONUNBUFFERED="1")
        if self._endpoints is not None:
            endpoints = self._endpoints
            env.update(ARM_ENDPOINT=endpoints.arm_endpoint, IDENTITY_ENDPOINT=endpoints.identity_endpoint)
            env.update(IDENTITY_HEADER=endpoints.identity_header, REQUESTS_CA_BUNDLE=endpoints.ca_bundle)
        env.update(self._host_overrides)
        return env

    # -- Azurite ---------------------------------------------------------------------------------

    def start_azurite(self) -> str:
        return self.azurite.start(self.ready_timeout)

    def stop_azurite(self) -> None:
        self.azurite.stop()

    def kill_azurite(self) -> None:
        self.azurite.kill()

    def restart_azurite(self) -> str:
        """Same ports, same data: the queues, their messages and the tables survive."""
        return self.azurite.restart(self.ready_timeout)

    # -- the emulator ----------------------------------------------------------------------------

    def start_emulator(self) -> EmulatorEndpoints:
        if self._fresh_emulator:  # only on the first start: a restart keeps the emulator's jobs
            shutil.rmtree(self.emulator_state_dir, ignore_errors=True)
            self._fresh_emulator = False
        endpoints_file = self.emulator_state_dir / "endpoints.json"
        endpoints_file.unlink(missing_ok=True)  # a stale file would announce an emulator that is not up
        self.emulator_state_dir.mkdir(parents=True, exist_ok=True)
        self.emulator.start()
        self._endpoints = wait_until(
            lambda: EmulatorEndpoints.read(endpoints_file),
            timeout=self.ready_timeout,
            what=f"the emulator writing {endpoints_file}",
            process=self.emulator,
        )
        return self._endpoints

    def stop_emulator(self) -> None:
        self.emulator.stop()

    def restart_emulator(self) -> EmulatorEndpoints:
        self.stop_emulator()
        return self.start_emulator()

    # -- the local host --------------------------------------------------------------------------

    @property
    def host_pid(self) -> int | None:
        return self.host.pid if self.host.alive else None

    def start_host(self, settings: Mapping[str, str] | None = None) -> None:
        """``settings`` are added to the host's app settings for this start only (a benchmark variant)."""
        self._ready_file.unlink(missing_ok=True)
        self.host.env = {**self.host_environment(), **(settings or {})}
        self.host.start()
        ready = wait_until(
            lambda: _ready(self._ready_file),
            timeout=self.ready_timeout,
            what="the local host listening",
            process=self.host,
        )
        port = ready.get("http_port")
        self.http_port = port if isinstance(port, int) else None

    def stop_host(self, timeout: float = 40.0) -> int | None:
        """SIGTERM (the host drains its invocations), SIGKILL after ``timeout``; the exit status."""
        status = self.host.stop(timeout)
        self._ready_file.unlink(missing_ok=True)
        return status

    def kill_host(self) -> None:
        self.host.kill()
        self._ready_file.unlink(missing_ok=True)

    def restart_host(self, *, kill: bool = False) -> None:
        if kill:
            self.kill_host()
        else:
            self.stop_host()
        self.start_host()


def _ready(path: Path) -> dict[str, object] | None:
    """The host's ready file once it is written (atomically), else None."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
