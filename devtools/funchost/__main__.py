"""``python -m devtools.funchost``: run an app's queue and HTTP triggers until SIGTERM or Ctrl-C.

HTTP triggers are served on ``http://127.0.0.1:{--http-port}/api/…`` (7071, as Core Tools; 0 picks
a free port, which the ready file names), without enforcing keys, as Core Tools does.

Exit status: 0 after a clean stop, 2 when the app cannot start (the reason on stderr),
3 when invocations were still running at the shutdown deadline and were abandoned.
A second Ctrl-C or SIGTERM during shutdown exits at once.

host.json values can be overridden by app settings, as in Azure:
``AzureFunctionsJobHost__extensions__queues__maxPollingInterval=00:00:00.5`` (tests use this to
poll idle queues faster than host.json's 10 s, and ``…__visibilityTimeout=00:00:00`` to retry a
failed message at once). Only this host reads these settings; the app never does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devtools.clihelp import parser as cli_parser
from devtools.funchost.errors import HostError
from devtools.funchost.host import DEFAULT_DRAIN_SECONDS, FunctionHost
from devtools.funchost.inflight import DEFAULT_LEASE_SECONDS
from devtools.funchost.logcontext import LOG_FORMAT, InvocationFilter

DEFAULT_HTTP_PORT = 7071
"""Core Tools' default, so that URLs in guides for ``func start`` work here too."""

# Libraries that narrate every HTTP request at INFO; a poll every 100 ms would drown the host's log.
_CHATTY_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "urllib3")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _configure_logging(args.log_level)
    host = FunctionHost(
        args.app_root,
        settings_file=args.settings,
        load_local_settings=not args.no_settings,
        functions=[name.strip() for name in args.functions.split(",") if name.strip()] if args.functions else None,
        drain_seconds=args.drain_seconds,
        lease_seconds=args.lease_seconds,
        http_port=args.http_port,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            logging.getLogger(__name__).warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(130)
        logging.getLogger(__name__).info("%s received; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        host.start()
    except HostError as exc:
        print(f"funchost: {exc}", file=sys.stderr)
        return 2
    if args.ready_file is not None:
        _write_ready_file(args.ready_file, host)
    stop.wait()
    abandoned = host.stop()
    logging.shutdown()
    if abandoned:
        # Their threads cannot be interrupted; the messages are already back on the queue.
        os._exit(3)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("devtools.funchost", __doc__)
    parser.add_argument("--app-root", type=Path, default=Path.cwd(), metavar="DIR",
                        help="the function app's folder, with host.json (default: the working folder)")
    settings = parser.add_mutually_exclusive_group()
    settings.add_argument("--settings", type=Path, metavar="FILE",
                          help="local.settings.json to read (default: the app folder's, if there is one)")
    settings.add_argument("--no-settings", action="store_true", help="read no local.settings.json")
    parser.add_argument("--functions", metavar="NAMES", help="comma-separated function names to run (default: all)")
    parser.add_argument("--drain-seconds", type=float, default=DEFAULT_DRAIN_SECONDS, metavar="SECONDS",
                        help="how long shutdown waits for running invocations")
    parser.add_argument("--lease-seconds", type=float, default=DEFAULT_LEASE_SECONDS, metavar="SECONDS",
                        help="visibility lease of a received message, renewed at half-time (tests shorten it)")
    parser.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT, metavar="PORT",
                        help=f"loopback port for HTTP triggers (default {DEFAULT_HTTP_PORT}; 0: any free port)")
    parser.add_argument("--ready-file", type=Path, metavar="FILE",
                        help="write {pid, functions, http_port} here once listening")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="the log's threshold")
    return parser.parse_args(argv)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(InvocationFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _write_ready_file(path: Path, host: FunctionHost) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    ready = {"pid": os.getpid(), "functions": list(host.function_names), "http_port": host.http_port}
    partial.write_text(json.dumps(ready), encoding="utf-8")
    partial.replace(path)  # atomic: a watcher never reads half a file


if __name__ == "__main__":
    sys.exit(main())
