"""One local stack for the whole session: Azurite, the emulator and the local host, over real sockets.

The emulator runs 120 emulated seconds per real second (a default 2 min operation plus 10 min job
take 6 s) with an inventory made of the bundled one plus items of our own (``vault-it``, 200
VMs in ``vault-burst``, and ``vault-batch``: 300 VMs, file shares and databases over seven list
pages), so that tests do not share items. The host gets the app's short timings
and, through the ``AzureFunctionsJobHost__`` override the local host honours, a 0.5 s idle poll
instead of host.json's 10 s. Tests that need other app settings run a second host on queues of
their own (``Suite.extra_host``). Before each test the emulator is reset and the main queues are
cleared, so no test sees another's results.

Without Azurite installed these tests are skipped with the reason, unless ``REQUIRE_INTEGRATION=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from devtools.emulator.config import STARTUP_ONLY
from devtools.funchost.processes import ManagedProcess, wait_until
from devtools.queuectl import message_count
from devtools.stack import DEFAULT_QUEUES, REPO_ROOT, LocalStack

AZURITE_QUEUE = REPO_ROOT / "devtools" / "node_modules" / ".bin" / "azurite-queue"
BUNDLED_INVENTORY = REPO_ROOT / "devtools" / "emulator" / "inventory.json"
RESULT_SCHEMA = REPO_ROOT / "schemas" / "backup-result.schema.json"

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-backup"
TIME_SCALE = 120
BURST_ITEMS = 200
BATCH_VMS = 300
BATCH_SHARES = 12
BATCH_DATABASES = 8
# The app's own settings (shared/settings.py), short enough that a request ends in seconds.
APP_TIMING = {
    "MIN_DELAY_SECONDS": "1",
    "POLL_INTERVAL_SECONDS": "1",
    "JOB_POLL_INITIAL_SECONDS": "1",
    "JOB_POLL_MAX_SECONDS": "2",
    "RETRY_BASE_SECONDS": "1",
    "RETRY_MAX_SECONDS": "3",
}
# Read by the local host only, as the Functions host reads AzureFunctionsJobHost__* app settings.
FAST_POLLING = {"AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:00:00.5"}
RETRY_AT_ONCE = {"AzureFunctionsJobHost__extensions__queues__visibilityTimeout": "00:00:00"}

# tests/integration/test_ledger.py: one item per scenario, so that no ledger item record is shared.
LEDGER_PURPOSES = (
    "redelivered", "at-once", "after-result", "killed", "copied-trigger", "copied-operation", "down", "off",
    "off-twice",
)
# Items of our own in vault-it, one purpose each; behaviours in emulated seconds.
IT_ITEMS: dict[str, dict[str, Any]] = {
    "conflict": {"operation_seconds": 60, "job_seconds": 360},
    "op-timeout": {"operation_seconds": 3600},
    "job-timeout": {"operation_seconds": 60, "job_seconds": 36000},
    "poison": {},
    "http-endpoint": {},
    "trust": {"operation_seconds": 60, "job_seconds": 60},
    **{f"front-{n}": {} for n in ("vm", "dup", "keys", "path")},
    "front-broken": {"job_outcome": "Failed", "error_code": "UserErrorVmNotInDesirableState"},
    **{f"ledger-{purpose}": {"operation_seconds": 60, "job_seconds": 120} for purpose in LEDGER_PURPOSES},
    # Backed up by resource id or ARM event (their VMs are rg-it/<name>, in the vault's region).
    **{f"target-{n}": {"operation_seconds": 60, "job_seconds": 60} for n in range(1, 5)},
    **{f"token-{n}": {} for n in range(1, 5)},
}


# -- names ---------------------------------------------------------------------------------------


def vm_names(vault: str, name: str, resource_group: str = RESOURCE_GROUP) -> dict[str, str]:
    """The six URI names of a VM item of ours (container rg-it)."""
    return {
        "subscriptionId": SUBSCRIPTION,
        "resourceGroupName": resource_group,
        "vaultName": vault,
        "fabricName": "Azure",
        "containerName": f"IaasVMContainer;iaasvmcontainerv2;rg-it;{name}",
        "protectedItemName": f"VM;iaasvmcontainerv2;rg-it;{name}",
    }


def item_id(names: Mapping[str, str]) -> str:
    """The protected item's ARM id, as the emulator keys ``triggers_by_item``."""
    return (
        f"/subscriptions/{names['subscriptionId']}/resourceGroups/{names['resourceGroupName']}"
        f"/providers/Microsoft.RecoveryServices/vaults/{names['vaultName']}/backupFabrics/{names['fabricName']}"
        f"/protectionContainers/{names['containerName']}/protectedItems/{names['protectedItemName']}"
    )


def vm_resource_id(name: str, resource_group: str = "rg-it") -> str:
    """The ARM id of the VM behind an item of ours (its container names resource group and VM)."""
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
    return f"{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def request_text(names: Mapping[str, str], correlation_id: str, **extra: Any) -> str:
    return json.dumps({**names, "correlationId": correlation_id, **extra})


def batch_vault_items() -> list[dict[str, Any]]:
    """vault-batch: VMs bvm-000… (every third on policy Gold, the rest Silver), then file shares and
    SQL databases between them, so that every list page mixes kinds."""
    quick = {"operation_seconds": 60, "job_seconds": 120}
    vms = [{**{"container": vm_names("-", f"bvm-{n:03d}")["containerName"],
               "item": vm_names("-", f"bvm-{n:03d}")["protectedItemName"]},
            "policy": "Gold" if n % 3 == 0 else "Silver", "behaviour": quick} for n in range(BATCH_VMS)]
    shares = [{"container": "StorageContainer;Storage;rg-it;stbatch", "item": f"AzureFileShare;bshare-{n:02d}",
               "policy": "FileSharePolicy", "behaviour": quick} for n in range(BATCH_SHARES)]
    databases = [{"container": "VMAppContainer;Compute;rg-it;sqlbatch", "item": f"SQLDataBase;mssqlserver;bdb-{n:02d}",
                  "policy": "SqlPolicy", "behaviour": quick} for n in range(BATCH_DATABASES)]
    others = shares + databases
    every = len(vms) // len(others)
    items: list[dict[str, Any]] = []
    for n, entry in enumerate(vms):
        items.append(entry)
        if n % every == every - 1 and others:
            items.append(others.pop(0))
    return items + others


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _inventory(path: Path) -> Path:
    """The bundled inventory plus vault-it and vault-burst."""
    document = json.loads(BUNDLED_INVENTORY.read_text(encoding="utf-8"))
    vaults = document["subscriptions"][SUBSCRIPTION]["resource_groups"][RESOURCE_GROUP]["vaults"]

    def vm(name: str, behaviour: dict[str, Any]) -> dict[str, Any]:
        names = vm_names("-", name)
        return {"container": names["containerName"], "item": names["protectedItemName"], "behaviour": behaviour}

    vaults["vault-it"] = {"items": [vm(name, behaviour) for name, behaviour in IT_ITEMS.items()]}
    burst = {"operation_seconds": 60, "job_seconds": 120}
    vaults["vault-burst"] = {"items": [vm(f"burst-{n:03d}", burst) for n in range(BURST_ITEMS)]}
    vaults["vault-batch"] = {"items": batch_vault_items()}
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


# -- the emulator's admin API ----------------------------------------------------------------------


class Admin:
    """``{arm_endpoint}/_emulator`` over https, trusting the emulator's CA."""

    def __init__(self, url: str, ca_bundle: str) -> None:
        self.url = url
        self._ca_bundle = ca_bundle  # per call: REQUESTS_CA_BUNDLE in the environment would win over Session.verify
        self._session = requests.Session()
        self._baseline: dict[str, Any] | None = None

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.url}/{path}", json=body, timeout=10, verify=self._ca_bundle
        )
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "stats"))

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self._call("GET", f"requests?since={since}&limit=100000")["requests"])

    def config(self) -> dict[str, Any]:
        return dict(self._call("GET", "config"))

    def configure(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "config", patch))

    def clock(self, advance_seconds: float = 0) -> dict[str, Any]:
        if advance_seconds:
            return dict(self._call("POST", "clock", {"advance_seconds": advance_seconds}))
        return dict(self._call("GET", "clock"))

    def reset(self) -> None:
        """Back to the start-up configuration, then forget operations, jobs, counters and log."""
        current = self.config()
        if self._baseline is None:
            self._baseline = current
        # A merge patch cannot empty a map, so every runtime key is first removed, then restored.
        self.configure({key: None for key in current if key not in STARTUP_ONLY})
        self.configure({key: value for key, value in self._baseline.items() if key not in STARTUP_ONLY})
        self._call("POST", "reset")

    def close(self) -> None:
        self._session.close()


# -- queues ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppQueues:
    """The app's three queue names, as its settings give them."""

    requests: str
    status: str
    results: str

    @classmethod
    def with_prefix(cls, prefix: str) -> AppQueues:
        return cls(f"{prefix}-requests", f"{prefix}-status", f"{prefix}-results")

    @property
    def settings(self) -> dict[str, str]:
        return {
            "BACKUP_REQUESTS_QUEUE": self.requests,
            "BACKUP_STATUS_QUEUE": self.status,
            "BACKUP_RESULTS_QUEUE": self.results,
        }

    @property
    def all(self) -> tuple[str, ...]:
        return (self.requests, self.status, self.results, f"{self.requests}-poison", f"{self.status}-poison")


MAIN_QUEUES = AppQueues(
    DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"],
    DEFAULT_QUEUES["BACKUP_STATUS_QUEUE"],
    DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"],
)


def receive_all(queue: QueueClient) -> list[str]:
    """Receive and delete every visible message; their texts."""
    texts = []
    try:
        for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
            texts.append(str(message.content))
            queue.delete_message(message)
    except ResourceNotFoundError:
        return []
    return texts


@dataclass
class Results:
    """Collects result messages from one results queue, by correlationId."""

    queue: QueueClient
    by_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def poll(self) -> None:
        for text in receive_all(self.queue):
            document = json.loads(text)
            self.by_id.setdefault(str(document.get("correlationId")), []).append(document)

    def wait_for(self, correlation_ids: Iterable[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The first result of each id, once all are in; TimeoutError naming the missing ones."""
        wanted = set(correlation_ids)

        def complete() -> bool | None:
            self.poll()
            return True if wanted <= self.by_id.keys() else None

        try:
            wait_until(complete, timeout=timeout, what=f"{len(wanted)} result(s) on {self.queue.queue_name}",
                       interval=0.1)
        except TimeoutError as exc:
            missing = sorted(wanted - self.by_id.keys())
            raise TimeoutError(f"{exc}; {len(missing)} missing, e.g. {missing[:5]}") from None
        return {cid: self.by_id[cid][0] for cid in wanted}

    def one(self, correlation_id: str, timeout: float = 30) -> dict[str, Any]:
        return self.wait_for([correlation_id], timeout)[correlation_id]


# -- the suite -------------------------------------------------------------------------------------


@dataclass
class Suite:
    stack: LocalStack
    admin: Admin
    service: QueueServiceClient
    schema: Draft202012Validator

    def queue(self, name: str) -> QueueClient:
        return self.service.get_queue_client(name)

    @property
    def api_url(self) -> str:
        """Where the local host serves backup_api: ``http://127.0.0.1:{port}/api/backups``."""
        assert self.stack.http_port is not None, "the host serves no HTTP triggers"
        return f"http://127.0.0.1:{self.stack.http_port}/api/backups"

    def results(self, queues: AppQueues = MAIN_QUEUES) -> Results:
        return Results(self.queue(queues.results))

    def send(self, text: str, queues: AppQueues = MAIN_QUEUES) -> str:
        """Put one request on the requests queue; its message id."""
        client = self.queue(queues.requests)
        try:
            return str(client.send_message(text).id)
        except ResourceNotFoundError:
            self.create(queues.requests)
            return str(client.send_message(text).id)

    def create(self, *names: str) -> None:
        for name in names:
            with suppress(ResourceExistsError):
                self.queue(name).create_queue()

    def clear(self, queues: AppQueues) -> None:
        """Delete every message, invisible ones too (Clear Messages)."""
        for name in queues.all:
            with suppress(ResourceNotFoundError):
                self.queue(name).clear_messages()

    def wait_until_idle(self, queues: AppQueues, timeout: float = 20) -> None:
        """No request and no follow-up left, visible or not: no further result can come."""
        names = (queues.requests, queues.status)
        wait_until(
            lambda: True if all(message_count(self.queue(name)) == 0 for name in names) else None,
            timeout=timeout,
            what=f"{' and '.join(names)} to be empty",
            interval=0.1,
        )

    def check_schema(self, result: Mapping[str, Any]) -> None:
        errors = [f"{list(error.absolute_path)}: {error.message}" for error in self.schema.iter_errors(result)]
        assert not errors, (errors, result)

    @contextmanager
    def extra_host(
        self,
        label: str,
        queues: AppQueues,
        *,
        env: Mapping[str, str | None] | None = None,
        functions: str | None = None,
        args: Iterable[str] = (),
    ) -> Iterator[ManagedProcess]:
        """A second local host on ``queues`` with other app settings (None removes a setting).

        ``args`` go to the host's command line (e.g. ``--lease-seconds``).
        """
        environment: dict[str, str] = self.stack.host_environment()
        environment.update(queues.settings)
        for key, value in (env or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        with self.host(label, environment, functions=functions, args=args) as host:
            yield host

    def ready_file(self, label: str) -> Path:
        """Where the host of ``label`` writes ``{pid, functions}`` once it listens."""
        return REPO_ROOT / ".local" / "funchost" / f"{self.stack.name}-{label}.ready.json"

    @contextmanager
    def host(
        self, label: str, environment: Mapping[str, str], *, functions: str | None = None, args: Iterable[str] = ()
    ) -> Iterator[ManagedProcess]:
        """A local host with exactly ``environment``, stopped on exit."""
        ready = self.ready_file(label)
        argv = [sys.executable, "-m", "devtools.funchost", "--app-root", str(REPO_ROOT), "--ready-file", str(ready)]
        if functions:
            argv += ["--functions", functions]
        argv += list(args)
        log = self.stack.log_path(f"host-{label}")
        log.unlink(missing_ok=True)
        host = ManagedProcess(f"host-{label}", argv, log_path=log, env=dict(environment), cwd=REPO_ROOT)
        try:
            self._start_host(host, label)
            yield host
        finally:
            host.stop(20)
            ready.unlink(missing_ok=True)

    def kill_and_restart(self, host: ManagedProcess, label: str) -> None:
        """SIGKILL an extra host, as a crash would, and start it again with the same settings."""
        host.kill()
        self._start_host(host, label)

    def _start_host(self, host: ManagedProcess, label: str) -> None:
        ready = self.ready_file(label)
        ready.unlink(missing_ok=True)
        host.start()
        wait_until(lambda: ready.is_file() or None, timeout=30, what=f"host {label} listening", process=host)


def _require_azurite() -> None:
    if not AZURITE_QUEUE.exists():
        reason = f"Azurite is not installed ({AZURITE_QUEUE} is missing): run devtools/bootstrap.sh"
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def suite_session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    _require_azurite()
    inventory = _inventory(tmp_path_factory.mktemp("emulator") / "inventory.json")
    stack = LocalStack(
        f"pytest-integration-{os.getpid()}",
        emulator_args=["--time-scale", str(TIME_SCALE), "--inventory", str(inventory)],
        host_env={**APP_TIMING, **FAST_POLLING},
    )
    with stack:
        admin = Admin(stack.endpoints.admin_url, stack.endpoints.ca_bundle)
        schema = json.loads(RESULT_SCHEMA.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        try:
            yield Suite(stack, admin, stack.queue_service(), validator)
        finally:
            admin.close()
    # Kept for the post-mortem when something failed; removed otherwise.
    if request.session.testsfailed == 0:
        shutil.rmtree(stack.azurite.data_dir, ignore_errors=True)
        shutil.rmtree(stack.emulator_state_dir, ignore_errors=True)
        for log in stack.log_path("host").parent.glob(f"{stack.name}-*.log"):
            log.unlink(missing_ok=True)


@pytest.fixture
def suite(suite_session: Suite) -> Suite:
    """The session's stack with the emulator reset and the main queues empty."""
    suite_session.clear(MAIN_QUEUES)
    suite_session.admin.reset()
    return suite_session

