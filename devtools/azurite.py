"""Azurite's queue and table services for the local stack and the integration tests.

Runs the combined ``azurite`` from ``devtools/node_modules/.bin`` as one process on 127.0.0.1,
its data in ``.local/azurite/<name>``: the queues on ``port``, the request ledger's table on
``table_port``. It can be stopped and started again on the same ports and data, as the chaos
tests do. One process rather than ``azurite-queue`` plus ``azurite-table`` keeps a restart one
step (both services go down and come back together, as a storage account's outage would) and
costs one Node runtime instead of two on a small machine. The combined binary always serves
blobs too (on a free port of its own); only the template test, which plays the Functions host's
identity-based storage, uses them.
``--disableTelemetry`` keeps it offline; ``--skipApiVersionCheck`` lets azure-storage-queue
12.18 (service version 2026-10-06) and azure-data-tables 12.7 talk to Azurite 3.35.

``Azurite(..., tls=Tls(cert, key))`` serves all three over https with ``--oauth basic``: it then
accepts bearer tokens (the emulator's managed identity issues suitable ones) as well as the
account key, which is how the template test runs the app with identity-based storage only.

``python -m devtools.azurite [--name N] [--port P] [--table-port T]`` runs one until Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from devtools.funchost.processes import ManagedProcess, wait_until

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "Azurite", "AzuriteNotInstalled", "Tls", "connection_string", "free_port"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOST = "127.0.0.1"


class AzuriteNotInstalled(RuntimeError):
    """``devtools/node_modules/.bin/azurite`` is missing: run devtools/bootstrap.sh."""


def connection_string(port: int, host: str = HOST, *, table_port: int | None = None) -> str:
    """Azurite's account with its queue endpoint, and its table endpoint when ``table_port`` is given."""
    text = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint=http://{host}:{port}/{ACCOUNT_NAME};"
    )
    if table_port is not None:
        text += f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT_NAME};"
    return text


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Tls:
    """PEM files of the certificate Azurite serves https with, and of its key."""

    cert: Path
    key: Path


def executable(root: Path = REPO_ROOT) -> Path:
    path = root / "devtools" / "node_modules" / ".bin" / "azurite"
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
    """One Azurite with queues on ``port`` and tables on ``table_port``; ``start()`` returns its connection string."""

    def __init__(
        self,
        name: str = "dev",
        *,
        port: int | None = None,
        table_port: int | None = None,
        root: Path = REPO_ROOT,
        fresh: bool = False,
        log_path: Path | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.name = name
        self.root = root
        self.tls = tls
        self.data_dir = root / ".local" / "azurite" / name
        self.port = port or free_port()
        self.table_port = table_port or free_port()
        while self.table_port == self.port:
            self.table_port = free_port()
        blob_port = free_port()
        while blob_port in {self.port, self.table_port}:
            blob_port = free_port()
        self.ports = {"blob": blob_port, "queue": self.port, "table": self.table_port}
        self._fresh = fresh
        self._log_path = log_path or root / ".local" / "logs" / f"{name}-azurite.log"
        self._process: ManagedProcess | None = None

    @property
    def connection_string(self) -> str:
        if self.tls is None:
            return connection_string(self.port, table_port=self.table_port)
        endpoints = "".join(f"{service.capitalize()}Endpoint={self.endpoint(service)};" for service in self.ports)
        return f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};{endpoints}"

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
            shutil.rmtree(self.data_dir)  # only on the first start: a restart keeps the queues and tables
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(executable(self.root))]
        for service, port in self.ports.items():
            argv += [f"--{service}Host", HOST, f"--{service}Port", str(port)]
        argv += ["--location", str(self.data_dir), "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"]
        if self.tls is not None:
            argv += ["--cert", str(self.tls.cert), "--key", str(self.tls.key), "--oauth", "basic"]
        self._process = ManagedProcess("azurite", argv, log_path=self._log_path, cwd=self.root)
        self._process.start()
        process = self._process
        for port in (self.port, self.table_port):
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
        """Stop and start again on the same ports and data folder."""
        self.stop()
        return self.start(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.azurite", description=__doc__)
    parser.add_argument("--name", default="dev", help="data folder .local/azurite/NAME")
    parser.add_argument("--port", type=int, help="queue port (default: a free one)")
    parser.add_argument("--table-port", type=int, help="table port (default: a free one)")
    parser.add_argument("--fresh", action="store_true", help="start with empty queues and tables")
    args = parser.parse_args(argv)
    try:
        azurite = Azurite(args.name, port=args.port, table_port=args.table_port, fresh=args.fresh)
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
