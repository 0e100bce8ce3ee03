"""Fixtures: an in-process emulator per test (tmp state dir, fixed clock origin) and a small https client for it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devtools.emulator import Emulator, EmulatorConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "azure-rest-api-examples"
SUB = "00000000-0000-0000-0000-000000000000"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault1"
ARM_RESOURCE = "https://management.azure.com/"
API = "2024-04-01"

VM1 = ("IaasVMContainer;iaasvmcontainerv2;rg-app;vm1", "VM;iaasvmcontainerv2;rg-app;vm1")
VM2 = ("IaasVMContainer;iaasvmcontainerv2;rg-app;vm2", "VM;iaasvmcontainerv2;rg-app;vm2")
SHARE = ("StorageContainer;Storage;rg-data;stdata01", "AzureFileShare;share1")
SQL = ("VMAppContainer;Compute;rg-db;sqlvm", "SQLDataBase;mssqlserver;db1")
HANA = ("VMAppContainer;Compute;rg-db;hanavm", "SAPHanaDatabase;h01;systemdb")
ASE = ("VMAppContainer;Compute;rg-db;asevm", "SAPAseDatabase;ase;db2")

VM_BODY = {"properties": {"objectType": "IaasVMBackupRequest"}}
SHARE_BODY = {"properties": {"objectType": "AzureFileShareBackupRequest"}}
SQL_BODY = {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Full"}}

# Thirty emulated seconds per real one: operations (120 s) take 4 s and jobs (600 s) 20 s unless a test advances
# the clock, so "still running" holds for assertions and outcomes are reached by advancing the clock.
BASE_CONFIG: dict[str, Any] = {"time_scale": 30, "clock_start": "2026-01-01T00:00:00Z"}


class FakeMonotonic:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def item_path(container: str, item: str, vault: str = VAULT) -> str:
    return f"{vault}/backupFabrics/Azure/protectionContainers/{quote(container, safe=';')}/protectedItems/" + quote(
        item, safe=";"
    )


def wait_for(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `probe` (each call is a round trip, so the loop paces itself) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value {value!r}")


class Client:
    """What the app does, by hand: a token from the identity endpoint, then bearer calls over verified TLS."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.endpoints = emulator.endpoints
        self.base: str = self.endpoints["arm_endpoint"]
        # Explicit, because a test may run two emulators (two CAs) while REQUESTS_CA_BUNDLE names only the last.
        self.ca_bundle: str = self.endpoints["ca_bundle"]
        self.session = requests.Session()
        self.token = self.fetch_token()

    def fetch_token(self, resource: str = ARM_RESOURCE) -> str:
        response = self.session.get(
            self.endpoints["identity_endpoint"],
            params={"api-version": "2019-08-01", "resource": resource},
            headers={"X-IDENTITY-HEADER": self.endpoints["identity_header"]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def url(self, path: str, api_version: str | None = API, **query: str) -> str:
        params = ([f"api-version={api_version}"] if api_version else []) + [
            f"{k}={quote(v, safe='')}" for k, v in query.items()
        ]
        return self.base + path + ("?" + "&".join(params) if params else "")

    def request(
        self, method: str, url: str, *, token: str | None = "", headers: dict[str, str] | None = None, **kw: Any
    ) -> requests.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token or self.token}"
        full = url if url.startswith("https://") else self.url(url)
        kw.setdefault("timeout", 10)
        return self.session.request(method, full, headers=all_headers, verify=self.ca_bundle, **kw)

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.request("GET", url, **kw)

    def trigger(
        self, target: tuple[str, str], body: object = VM_BODY, *, vault: str = VAULT, **kw: Any
    ) -> requests.Response:
        return self.request("POST", self.url(item_path(*target, vault=vault) + "/backup"), json=body, **kw)

    def admin(self, method: str, action: str, body: object = None) -> requests.Response:
        url = f"{self.endpoints['admin_url']}/{action}"
        return self.session.request(method, url, json=body, timeout=10, verify=self.ca_bundle)

    def configure(self, patch: dict[str, Any]) -> dict[str, Any]:
        response = self.admin("POST", "config", patch)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def advance(self, seconds: float) -> None:
        assert self.admin("POST", "clock", {"advance_seconds": seconds}).status_code == 200

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats").json()  # type: ignore[no-any-return]


@pytest.fixture
def make_arm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Client]]:
    """Start an emulator with BASE_CONFIG merged with the given settings; the CA is trusted as the app trusts it."""
    started: list[Emulator] = []

    def start(**settings: Any) -> Client:
        emulator = Emulator(EmulatorConfig.from_dict({**BASE_CONFIG, **settings}), tmp_path / f"emu{len(started)}")
        emulator.start()
        started.append(emulator)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.endpoints["ca_bundle"])
        return Client(emulator)

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def arm(make_arm: Callable[..., Client]) -> Client:
    return make_arm()
