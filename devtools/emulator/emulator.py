"""The emulator's lifecycle and its one lock: wires the servers, the ARM service, identity, faults and stats."""

from __future__ import annotations

import json
import os
import secrets
import threading
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from .admin import ADMIN_PREFIX, handle_admin, is_admin
from .arm import ArmService, RequestIds, bearer_token
from .backups import BackupState
from .clock import EmulatedClock
from .config import STARTUP_ONLY, EmulatorConfig
from .faults import FaultInjector
from .identity import IDENTITY_PATH, TokenStore, answer_token_request
from .inventory import Inventory
from .routes import match
from .server import HttpServer
from .stats import Stats, token_fingerprint
from .throttle import Throttle
from .tls import issue_certificates
from .typed_json import merge_patch
from .wire import Request, Response

ENDPOINTS_FILE = "endpoints.json"
HOST = "127.0.0.1"


class Emulator:
    """ARM (https) and managed identity (http) on 127.0.0.1; `with Emulator(config, dir) as emu: emu.endpoints`."""

    def __init__(self, config: EmulatorConfig | None = None, state_dir: str | Path = ".local/emulator") -> None:
        self.config = config or EmulatorConfig()
        self.state_dir = Path(state_dir)
        self._inventory = Inventory.load(Path(self.config.inventory) if self.config.inventory else None)
        self._check_behaviours(self.config)
        self._clock = EmulatedClock(self.config.time_scale, self._clock_start())
        self._lock = threading.Lock()
        self._tokens = TokenStore()
        self._throttle = Throttle(self.config.throttle)
        self._stats = Stats(self.config.request_log_limit)
        self._faults = FaultInjector(self.config.faults)
        self._state = BackupState()
        self._arm = ArmService(
            self.config, self._inventory, self._state, self._clock, self._tokens, self._throttle, self._stats
        )
        self._identity_header = secrets.token_urlsafe(32)
        self._stopping = threading.Event()
        self._servers: list[HttpServer] = []
        self._threads: list[threading.Thread] = []
        self._endpoints: dict[str, Any] | None = None

    @property
    def endpoints(self) -> dict[str, Any]:
        if self._endpoints is None:
            raise RuntimeError("the emulator is not running")
        return dict(self._endpoints)

    def start(self) -> None:
        if self._servers:
            raise RuntimeError("the emulator is already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tls, ca_path = issue_certificates(self.state_dir)
        self._stopping.clear()
        arm = HttpServer(HOST, self.config.arm_port, self._serve_arm, tls, self._stopping)
        identity = HttpServer(HOST, self.config.identity_port, self._serve_identity, None, self._stopping)
        self._servers = [arm, identity]
        self._arm.base_url = f"https://{HOST}:{arm.port}"
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=f"emulator-{server.port}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._endpoints = {
            "arm_endpoint": self._arm.base_url,
            "identity_endpoint": f"http://{HOST}:{identity.port}{IDENTITY_PATH}",
            "identity_header": self._identity_header,
            "ca_bundle": str(ca_path.resolve()),
            "admin_url": self._arm.base_url + ADMIN_PREFIX,
            "pid": os.getpid(),
        }
        # Written last and atomically: whoever waits for the file finds the servers already listening.
        target = self.state_dir / ENDPOINTS_FILE
        partial = target.with_suffix(".json.tmp")
        partial.write_text(json.dumps(self._endpoints, indent=2), encoding="utf-8")
        partial.replace(target)

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.close_connections()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._endpoints is not None:
            (self.state_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
        self._endpoints = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _serve_arm(self, request: Request) -> Response:
        if is_admin(request.path):
            return handle_admin(request, self)
        route = match(request.path)
        kind = route.kind if route else "unknown"
        ids = RequestIds.of(request)
        token = bearer_token(request)
        fingerprint = token_fingerprint(token) if token else None
        with self._lock:
            response, fault = self._faults.run(
                kind, request.method, request.target, lambda: self._arm.handle(request, route, ids)
            )
            self._record(request, kind, response, fingerprint, fault)
        response.headers.update(ids.headers())
        return response

    def _serve_identity(self, request: Request) -> Response:
        def answer() -> Response:
            response = answer_token_request(
                request, secret=self._identity_header, store=self._tokens,
                lifetime=self.config.token_lifetime_seconds, default_client_id=self.config.client_id,
            )
            if response.status == 200:
                self._stats.counters["token_issued"] += 1
            return response

        with self._lock:
            response, fault = self._faults.run("token", request.method, request.target, answer)
            self._record(request, "token", response, None, fault)
        return response

    def _record(
        self, request: Request, kind: str, response: Response, fingerprint: str | None, fault: str | None
    ) -> None:
        self._stats.record(
            method=request.method, path=request.target, kind=kind,
            status=None if response.drop else response.status, token=fingerprint, fault=fault, delay=response.delay,
        )

    def _clock_start(self) -> datetime | None:
        return datetime.fromisoformat(self.config.clock_start) if self.config.clock_start else None

    def _check_behaviours(self, config: EmulatorConfig) -> None:
        for item in self._inventory:
            config.behaviour_for(item)

    # The AdminTarget protocol: each takes the lock, as the admin API runs on the server's threads.

    def stats(self) -> dict[str, Any]:
        with self._lock:
            snapshot = self._stats.snapshot()
            snapshot["script_remaining"] = self._faults.script_remaining
            return snapshot

    def requests_since(self, since: int, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return self._stats.requests_since(since, limit)

    def current_config(self) -> dict[str, Any]:
        with self._lock:
            return self.config.to_dict()

    def configure(self, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge `patch` (RFC 7396) into the running configuration; a `faults.script` in it re-arms the script."""
        fixed = sorted(STARTUP_ONLY & patch.keys())
        if fixed:
            raise ValueError(f"{', '.join(fixed)} can only be set at start")
        with self._lock:
            config = EmulatorConfig.from_dict(merge_patch(self.config.to_dict(), patch))
            self._check_behaviours(config)
            faults_patch = patch.get("faults")
            self._faults.configure(
                config.faults, rearm_script=isinstance(faults_patch, dict) and "script" in faults_patch
            )
            self._throttle.configure(config.throttle)
            if config.time_scale != self.config.time_scale:
                self._clock.set_scale(config.time_scale)
            self.config = self._arm.config = config
            return config.to_dict()

    def reset(self) -> None:
        """Forget operations, jobs, counters, log and throttle buckets; the script starts over; tokens stay valid.

        The clock starts over too (from `clock_start`, or the real time now): at a high time scale it runs hours
        ahead of real time within minutes, and a client's job-list filter, computed from its real clock, would then
        miss every job. With the jobs forgotten, nothing is left that could see it go backwards.
        """
        with self._lock:
            self._clock.restart(self._clock_start())
            self._state.reset()
            self._stats.reset()
            self._throttle.reset()
            self._faults.load_script(self.config.faults.script)

    def clock(self, advance_seconds: float = 0.0) -> dict[str, Any]:
        with self._lock:
            if advance_seconds:
                self._clock.advance(advance_seconds)
            return {"now": self._clock.now().isoformat().replace("+00:00", "Z"), "time_scale": self._clock.scale}
