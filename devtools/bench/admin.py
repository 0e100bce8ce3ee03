"""The emulator's admin API (``{arm_endpoint}/_emulator``): counters, the request log, config patches.

See devtools/emulator/README.md. No token is needed; the CA bundle is the emulator's own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from devtools.emulator.stats import LogEntry

__all__ = ["ArmCounts", "EmulatorAdmin", "LoggedRequest"]

_PAGE = 10000
_TIMEOUT = 30.0


LoggedRequest = LogEntry
"""One entry of the emulator's request log (the token is a hash prefix, never the token)."""


@dataclass(frozen=True)
class ArmCounts:
    """ARM traffic between two ``stats()`` snapshots, by the emulator's kinds."""

    trigger: int
    operation_status: int
    operation_results: int
    job_get: int
    job_list: int
    token_issued: int
    throttled: int
    faults: int
    unauthorized: int
    accepted_triggers: int
    requests: int

    @property
    def operation_gets(self) -> int:
        return self.operation_status + self.operation_results

    @property
    def arm_calls(self) -> int:
        return self.trigger + self.operation_gets + self.job_get + self.job_list

    def as_dict(self) -> dict[str, int]:
        return {
            "trigger": self.trigger, "operation_status": self.operation_status,
            "operation_results": self.operation_results, "job_get": self.job_get, "job_list": self.job_list,
            "token_issued": self.token_issued, "throttled": self.throttled, "faults": self.faults,
            "unauthorized": self.unauthorized, "accepted_triggers": self.accepted_triggers,
            "requests": self.requests, "arm_calls": self.arm_calls,
        }


class EmulatorAdmin:
    def __init__(self, arm_endpoint: str, ca_bundle: str) -> None:
        self.base = arm_endpoint.rstrip("/") + "/_emulator"
        self._session = requests.Session()
        self._verify = ca_bundle  # per call: REQUESTS_CA_BUNDLE in the environment would override Session.verify

    def close(self) -> None:
        self._session.close()

    def stats(self) -> dict[str, Any]:
        return self._get("/stats")

    def configure(self, patch: dict[str, Any]) -> dict[str, Any]:
        response = self._session.post(self.base + "/config", json=patch, timeout=_TIMEOUT, verify=self._verify)
        if response.status_code != 200:
            raise RuntimeError(f"emulator refused the config patch: {response.status_code} {response.text[:500]}")
        document: dict[str, Any] = response.json()
        return document

    def reset(self) -> None:
        self._session.post(self.base + "/reset", timeout=_TIMEOUT, verify=self._verify).raise_for_status()

    def clock(self) -> dict[str, Any]:
        return self._get("/clock")

    def last_seq(self) -> int:
        return int(self.stats()["requests"])

    def requests_since(self, since: int) -> Iterator[LoggedRequest]:
        """Every logged request after ``since``, paging through the log."""
        while True:
            page = self._get(f"/requests?since={since}&limit={_PAGE}")
            entries = page.get("requests") or []
            for entry in entries:
                yield LoggedRequest(**entry)
            if len(entries) < _PAGE:
                return
            since = int(entries[-1]["seq"])

    def counts_since(self, before: dict[str, Any]) -> ArmCounts:
        """What happened since the ``before`` snapshot of ``stats()``."""
        after = self.stats()
        accepted = Counter(after.get("triggers_by_item", {}))
        accepted.subtract(Counter(before.get("triggers_by_item", {})))

        def delta(name: str) -> int:
            return int(after.get(name, 0)) - int(before.get(name, 0))

        return ArmCounts(
            trigger=delta("trigger"), operation_status=delta("operation_status"),
            operation_results=delta("operation_results"), job_get=delta("job_get"), job_list=delta("job_list"),
            token_issued=delta("token_issued"), throttled=delta("throttled"), faults=delta("faults"),
            unauthorized=delta("unauthorized"), accepted_triggers=sum(accepted.values()), requests=delta("requests"),
        )

    def _get(self, path: str) -> dict[str, Any]:
        response = self._session.get(self.base + path, timeout=_TIMEOUT, verify=self._verify)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document
