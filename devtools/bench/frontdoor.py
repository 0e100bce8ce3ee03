"""``python -m devtools.bench.frontdoor``: request-to-202 latency of the HTTP front door, beside two baselines.

::

    python -m devtools.bench.frontdoor [--requests 300] [--rounds 2] [--json bench-results/frontdoor.json]

One local stack (Azurite, the emulator, the local host) and, in the same run, in alternating
rounds so that the machine's noise falls on all alike, one client (``requests``, one kept-alive
connection, one request at a time) times, twice: with the host running backup_api alone (what
accepting a request costs), then with the queue functions too, working through the backups the
POSTs start (what a caller sees from one busy instance):

1. ours: ``POST /api/backups`` through the local host until its 202 (validation, one ledger
   insert in Azurite's Table service, one send to the requests queue);
2. echo: a bare loopback HTTP server (``http.server``, as the local host, in its own process)
   answering every POST with 202 and the body: the HTTP round trip alone;
3. storage: the two storage calls the front door cannot do without (a Table insert, a queue
   send) made directly with the same SDKs: the floor of what accepting a request costs.

Each POST is a request for an item of its own, so the backups it starts never wait for each
other. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
from azure.core.exceptions import ResourceNotFoundError

from devtools.stack import DEFAULT_QUEUES, REPO_ROOT

__all__ = ["main"]

ROUTE = "/api/backups"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.frontdoor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="POSTs per round and per subject (default 300)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "bench-results" / "frontdoor.json")
    parser.add_argument("--serve-echo", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the echo baseline, in a process of its own ---------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the local host: no delayed-ACK stall between headers and body

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(202)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Location", f"http://{self.headers.get('Host')}{ROUTE}/echo")
        self.send_header("Retry-After", "5")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve_echo() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


@contextmanager
def _echo_server() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "devtools.bench.frontdoor", "--serve-echo"],
                               stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}{ROUTE}"
    finally:
        process.terminate()
        process.wait(10)


# -- timing ------------------------------------------------------------------------------------------------


def _timed(action: Callable[[int], None], count: int, first: int) -> list[float]:
    samples = []
    for n in range(first, first + count):
        started = time.perf_counter()
        action(n)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _post(session: requests.Session, url: str, body: Callable[[int], bytes]) -> Callable[[int], None]:
    def send(n: int) -> None:
        response = session.post(url, data=body(n), headers={"Content-Type": "application/json"}, timeout=30)
        if response.status_code != 202:
            raise RuntimeError(f"POST {url} answered {response.status_code}: {response.text[:300]}")

    return send


def _storage_floor(connection_string: str, queue_name: str) -> Callable[[int], None]:
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueClient

    table = TableServiceClient.from_connection_string(connection_string).create_table_if_not_exists("benchfloor")
    queue = QueueClient.from_connection_string(connection_string, queue_name)
    queue.create_queue()

    def accept(n: int) -> None:
        table.create_entity({"PartitionKey": f"p-{uuid.uuid4().hex}", "RowKey": "request", "Step": 0})
        queue.send_message(json.dumps({"n": n}), time_to_live=-1)

    return accept


def _figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
            "samples": len(ordered)}


PHASES = {
    "alone": ("front door alone (the host runs backup_api only)", ["--functions", "backup_api"]),
    "with_app": ("with the queue functions running the backups it starts", []),
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from devtools.bench.estate import Estate
    from devtools.bench.stackrun import app_timing, base_config, make_stack, remove_state

    warmup, per_round = 20, max(10, args.requests)
    per_phase = warmup + per_round * args.rounds
    estate = Estate(per_phase * len(PHASES))
    stack = make_stack(f"bench-frontdoor-{uuid.uuid4().hex[:6]}", estate, base_config(60.0), app_timing(60.0))
    base_argv = list(stack.host.argv)
    results: dict[str, Any] = {"requests_per_subject": per_round * args.rounds, "rounds": args.rounds}
    with stack, _echo_server() as echo_url:
        session = requests.Session()
        echo = _post(session, echo_url, lambda n: json.dumps(estate.request(n, f"echo-{n}")).encode())
        storage = _storage_floor(stack.connection_string, "bench-floor")
        requests_queue = stack.queue_service().get_queue_client(DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"])
        for index, (phase, (label, host_args)) in enumerate(PHASES.items()):
            stack.stop_host()
            with contextlib.suppress(ResourceNotFoundError):
                requests_queue.clear_messages()  # no backlog: each phase's load is its own requests
            stack.host.argv = [*base_argv, *host_args]  # the same host, with or without the queue functions
            stack.start_host()
            ours_url = f"http://127.0.0.1:{stack.http_port}{ROUTE}"
            ours = _post(session, ours_url, lambda n: json.dumps(estate.request(n, f"bench-http-{n}")).encode())
            subjects = {"ours": ours, "echo": echo, "storage": storage}
            offset = index * per_phase
            samples: dict[str, list[float]] = {name: [] for name in subjects}
            for action in subjects.values():
                _timed(action, warmup, offset)  # connections, clients and the ledger table made before timing
            for round_number in range(args.rounds):
                first = offset + warmup + round_number * per_round
                for name, action in subjects.items():
                    samples[name] += _timed(action, per_round, first)
            figures = {name: _figures(values) for name, values in samples.items()}
            results[phase] = {"label": label, **figures, **{
                f"ours_over_{name}": {k: round(figures["ours"][k] / figures[name][k], 2) for k in ("p50_ms", "p95_ms")}
                for name in ("echo", "storage")
            }}
    remove_state(stack)
    return results


def render(results: dict[str, Any]) -> str:
    rows = [("", "p50 ms", "p95 ms", "ours / it (p50, p95)")]
    for phase in PHASES:
        figures = results[phase]
        rows.append((f"{figures['label']}:", "", "", ""))
        for name, label in (("ours", "  POST to 202 through the local host"), ("echo", "  bare loopback HTTP echo"),
                            ("storage", "  table insert + queue send, direct")):
            ratio = "" if name == "ours" else (
                f"{figures[f'ours_over_{name}']['p50_ms']:g}x, {figures[f'ours_over_{name}']['p95_ms']:g}x")
            rows.append((label, f"{figures[name]['p50_ms']:g}", f"{figures[name]['p95_ms']:g}", ratio))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve_echo:
        return _serve_echo()
    results = run(args)
    print(render(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\n{results['requests_per_subject']} requests per subject; figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
