"""The whole local stack as child processes: Azurite, the Recovery Services emulator, the local host.

Each piece can be stopped, killed and started again on its own (chaos tests SIGKILL the host and
restart Azurite); logs go to ``.local/logs/<name>-<azurite|emulator|host>.log``. The host gets an
environment that points the app at Azurite and at the emulator's ARM and managed identity
endpoints; credential-chain variables from the caller's shell are removed so that the token
always comes from the emulator, never from a developer's real Azure sign-in.

``python -m devtools.stack up`` is the quick start (see ``devtools/up``): everything, the bundled
sample requests, and each result printed as it lands, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import FrameType

from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite, AzuriteNotInstalled
from devtools.funchost.processes import ManagedProcess, ProcessExited, wait_until
from devtools.queuectl import follow, send_files, summarize

__all__ = ["EmulatorEndpoints", "LocalStack", "main"]

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
        fresh: bool = True,
        ready_timeout: float = 60.0,
    ) -> None:
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
        host_argv = ["-m", "devtools.funchost", "--app-root", str(self.app_root), "--ready-file", str(self._ready_file)]
        self.host = ManagedProcess(
            "host", [sys.executable, *host_argv, *host_args], log_path=self.log_path("host"), cwd=REPO_ROOT
        )
        self._endpoints: EmulatorEndpoints | None = None

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

    def host_environment(self) -> dict[str, str]:
        """The environment the host process gets (also usable for running the app's code in-process)."""
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in _CREDENTIAL_VARIABLES and not name.lower().startswith("azurewebjobsstorage")
        }
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
        wait_until(
            lambda: self._ready_file.is_file() or None,
            timeout=self.ready_timeout,
            what="the local host listening",
            process=self.host,
        )

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


# -- python -m devtools.stack up -----------------------------------------------------------------

SAMPLES = REPO_ROOT / "devtools" / "samples"
# Short waits so a demo backup ends in seconds; the app's own names (see shared/settings.py).
DEMO_TIMING = {
    "MIN_DELAY_SECONDS": "1",
    "POLL_INTERVAL_SECONDS": "2",
    "JOB_POLL_INITIAL_SECONDS": "2",
    "JOB_POLL_MAX_SECONDS": "5",
    "RETRY_BASE_SECONDS": "1",
    "RETRY_MAX_SECONDS": "5",
}
# Emulated durations are divided by this: a 2 min operation plus a 10 min job take 12 s.
DEMO_TIME_SCALE = 60.0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start everything, send the samples, print results until Ctrl-C")
    up.add_argument("--name", default="dev", help="names the data folders and logs under .local/")
    up.add_argument("--keep", action="store_true", help="keep the queues and emulator state of the last run")
    up.add_argument("--no-samples", action="store_true", help="do not send devtools/samples/*.json")
    up.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="an app setting for the host")
    up.add_argument("--time-scale", type=float, default=DEMO_TIME_SCALE, help="emulated seconds per real second")
    up.add_argument("--azurite-port", type=int, help="default: a free port")
    return parser.parse_args(argv)


def _up(args: argparse.Namespace) -> int:
    overrides = dict(DEMO_TIMING)
    for assignment in args.set:
        name, separator, value = assignment.partition("=")
        if not separator:
            raise SystemExit(f"--set wants NAME=VALUE, not {assignment!r}")
        overrides[name] = value
    stack = LocalStack(
        args.name,
        azurite_port=args.azurite_port,
        emulator_args=["--time-scale", str(args.time_scale)],
        host_env=overrides,
        fresh=not args.keep,
    )

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with stack:
            _banner(stack)
            service = stack.queue_service()
            if not args.no_samples:
                samples = sorted(SAMPLES.glob("*.json"))
                send_files(service.get_queue_client(DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"]), samples)
                print(f"sent {len(samples)} sample requests: {', '.join(path.name for path in samples)}\n", flush=True)
            results = service.get_queue_client(overrides.get("BACKUP_RESULTS_QUEUE", "backup-results"))
            follow(results, lambda text: print(summarize(text), flush=True), should_stop=lambda: not stack.host.alive)
            print(f"the local host exited; its log ends:\n{stack.host.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping the local stack…", flush=True)
        return 0
    except (AzuriteNotInstalled, ProcessExited, TimeoutError) as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2


def _banner(stack: LocalStack) -> None:
    print(
        f"local stack '{stack.name}' is up\n"
        f"  storage   {stack.connection_string}\n"
        f"  ARM       {stack.endpoints.arm_endpoint}  (admin {stack.endpoints.admin_url})\n"
        f"  logs      {stack.log_path('host').parent}/{stack.name}-{{azurite,emulator,host}}.log\n"
        f"  send more AzureWebJobsStorage='{stack.connection_string}' "
        f"python -m devtools.queuectl send FILE.json\n"
        "results (status, correlationId, jobId, error code) as they land; Ctrl-C stops everything:\n",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.command == "up":
        return _up(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
