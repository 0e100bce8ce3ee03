"""Azurite's queue service for the local stack and the integration tests.

Runs ``azurite-queue`` from ``devtools/node_modules/.bin`` on 127.0.0.1 with its data in
``.local/azurite/<name>``, and can be stopped and started again on the same port and data, as
the chaos tests do. ``--disableTelemetry`` keeps it offline; ``--skipApiVersionCheck`` lets
azure-storage-queue 12.18 (service version 2026-10-06) talk to Azurite 3.35.

``Azurite(..., services=("blob", "queue", "table"), tls=Tls(cert, key))`` runs the whole of
Azurite over https with ``--oauth basic``: it then accepts bearer tokens (the emulator's managed
identity issues suitable ones) as well as the account key, which is how the template test runs
the app with identity-based storage only.

``python -m devtools.azurite [--name N] [--port P]`` runs one until Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.funchost.processes import ManagedProcess, wait_until

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "Azurite", "AzuriteNotInstalled", "Tls", "connection_string", "free_port"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"


class AzuriteNotInstalled(RuntimeError):
    """``devtools/node_modules/.bin/azurite-queue`` is missing: run devtools/bootstrap.sh."""


def connection_string(port: int, host: str = HOST) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint=http://{host}:{port}/{ACCOUNT_NAME};"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Tls:
    """PEM files of the certificate Azurite serves https with, and of its key."""

    cert: Path
    key: Path


def executable(root: Path = REPO_ROOT, program: str = "azurite-queue") -> Path:
    path = root / "devtools" / "node_modules" / ".bin" / program
    if not path.exists():
        raise AzuriteNotInstalled(f"{path} is missing: run devtools/bootstrap.sh (npm ci in devtools/)")
    return path


def _accepts_connections(port: int) -> bool | None:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return None


class Azurite:
    """One Azurite (by default its queue service alone); ``start()`` returns its connection string."""

    def __init__(
        self,
        name: str = "dev",
        *,
        port: int | None = None,
        root: Path = REPO_ROOT,
        fresh: bool = False,
        log_path: Path | None = None,
        services: Sequence[str] = ("queue",),
        tls: Tls | None = None,
    ) -> None:
        self.name = name
        self.services = tuple(services)
        self.tls = tls
        self.root = root
        self.data_dir = root / ".local" / "azurite" / name
        self.port = port or free_port()
        """The queue service's port."""
        self.ports = {service: self.port if service == "queue" else free_port() for service in self.services}
        self._fresh = fresh
        self._log_path = log_path or root / ".local" / "logs" / f"{name}-azurite.log"
        self._process: ManagedProcess | None = None

    @property
    def connection_string(self) -> str:
        if self.services == ("queue",) and self.tls is None:
            return connection_string(self.port)
        scheme = "https" if self.tls else "http"
        endpoints = "".join(f"{service.capitalize()}Endpoint={self.endpoint(service)};" for service in self.services)
        return f"DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};{endpoints}"

    def endpoint(self, service: str) -> str:
        """The service URL of the development account, e.g. ``https://127.0.0.1:PORT/devstoreaccount1``."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{HOST}:{self.ports[service]}/{ACCOUNT_NAME}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.alive

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> str:
        if self._fresh and self._process is None and self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # only on the first start: a restart keeps the queues
        self.data_dir.mkdir(parents=True, exist_ok=True)
        program = "azurite-queue" if self.services == ("queue",) else "azurite"
        argv = [str(executable(self.root, program))]
        for service, port in self.ports.items():
            argv += [f"--{service}Host", HOST, f"--{service}Port", str(port)]
        argv += ["--location", str(self.data_dir), "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"]
        if self.tls is not None:
            argv += ["--cert", str(self.tls.cert), "--key", str(self.tls.key), "--oauth", "basic"]
        self._process = ManagedProcess("azurite", argv, log_path=self._log_path, cwd=self.root)
        self._process.start()
        process = self._process
        for port in self.ports.values():
            wait_until(
                functools.partial(_accepts_connections, port),
                timeout=timeout,
                what=f"Azurite listening on {HOST}:{port}",
                process=process,
            )
        return self.connection_string

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is not None:
            self._process.stop(timeout)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def restart(self, timeout: float = 30.0) -> str:
        """Stop and start again on the same port and data folder."""
        self.stop()
        return self.start(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.azurite", description=__doc__)
    parser.add_argument("--name", default="dev", help="data folder .local/azurite/NAME")
    parser.add_argument("--port", type=int, help="queue port (default: a free one)")
    parser.add_argument("--fresh", action="store_true", help="start with empty queues")
    args = parser.parse_args(argv)
    try:
        azurite = Azurite(args.name, port=args.port, fresh=args.fresh)
        print(azurite.start(), flush=True)
    except AzuriteNotInstalled as exc:
        print(f"azurite: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
