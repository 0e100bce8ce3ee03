"""The quick start, what devtools/up runs: the whole local stack, the sample requests, the results.

Starts Azurite, the Recovery Services emulator and a local Functions host (``devtools.stack``),
sends the requests in devtools/samples/ and prints a summary of each result as it lands, until
Ctrl-C, which stops everything it started.

While it runs:

- .local/NAME.env holds the storage connection string (ports are new on every run): in another
  shell, `source .local/dev.env` and send requests of your own with devtools.queuectl.
- .local/NAME-results.jsonl gets each full result document, one per line: this command drains the
  results queue, so `queuectl follow` sees nothing while it runs.
- .local/logs/NAME-{azurite,emulator,host}.log hold the three processes' logs.

NAME is --name, dev by default.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from devtools.azurite import AzuriteNotInstalled
from devtools.clihelp import parser
from devtools.funchost.processes import ProcessExited
from devtools.queuectl import follow, send_files, summarize
from devtools.stack import DEFAULT_QUEUES, REPO_ROOT, LocalStack

__all__ = ["DEMO_TIME_SCALE", "DEMO_TIMING", "SAMPLES", "main"]

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
# The samples' subscription, so that the sample from another subscription shows the allow-list at work.
DEMO_ALLOWED = {"ALLOWED_SUBSCRIPTIONS": "00000000-0000-0000-0000-000000000000"}
# Emulated durations are divided by this: a 2 min operation plus a 10 min job take 12 s.
DEMO_TIME_SCALE = 60.0
EXAMPLE_SAMPLE = "devtools/samples/vm-by-names.json"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    cli = parser("devtools.quickstart", __doc__)
    cli.add_argument("--name", default="dev", help="names the files under .local/ (data, logs, NAME.env)")
    cli.add_argument("--keep", action="store_true",
                     help="keep the queues, the emulator's jobs and the results file of the last run")
    cli.add_argument("--no-samples", action="store_true", help="send none of devtools/samples/*.json")
    cli.add_argument("--json", action="store_true", help="print each result's full document instead of a summary")
    cli.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                     help="an app setting for the host, e.g. --set TRACK_BACKUP_JOBS=false (repeatable)")
    cli.add_argument("--time-scale", type=float, default=DEMO_TIME_SCALE, metavar="N",
                     help="emulated seconds per real second")
    cli.add_argument("--azurite-port", type=int, metavar="PORT", help="Azurite's queue port (default: a free one)")
    return cli.parse_args(argv)


def env_file(name: str) -> Path:
    return REPO_ROOT / ".local" / f"{name}.env"


def results_file(name: str) -> Path:
    return REPO_ROOT / ".local" / f"{name}-results.jsonl"


def _run(args: argparse.Namespace) -> int:
    overrides = {**DEMO_TIMING, **DEMO_ALLOWED}
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
    environment, results = env_file(args.name), results_file(args.name)
    try:
        with stack:
            _write_env_file(environment, stack)
            if not args.keep:
                results.unlink(missing_ok=True)
            _banner(stack, environment, results)
            service = stack.queue_service()
            queues = {setting: overrides.get(setting, default) for setting, default in DEFAULT_QUEUES.items()}
            if not args.no_samples:
                samples = sorted(SAMPLES.glob("*.json"))
                send_files(service.get_queue_client(queues["BACKUP_REQUESTS_QUEUE"]), samples)
                print(f"sent {len(samples)} sample requests: {', '.join(path.name for path in samples)}\n", flush=True)
            queue = service.get_queue_client(queues["BACKUP_RESULTS_QUEUE"])
            with results.open("a", encoding="utf-8") as kept:

                def emit(text: str) -> None:
                    kept.write(" ".join(text.splitlines()) + "\n")
                    kept.flush()
                    print(text if args.json else summarize(text), flush=True)

                follow(queue, emit, should_stop=lambda: not stack.host.alive)
            print(f"the local host exited; its log ends:\n{stack.host.log_tail()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping the local stack…", flush=True)
        return 0
    except (AzuriteNotInstalled, ProcessExited, TimeoutError) as exc:
        print(f"quickstart: {exc}", file=sys.stderr)
        return 2
    finally:
        environment.unlink(missing_ok=True)  # its ports die with the stack


def _write_env_file(path: Path, stack: LocalStack) -> None:
    endpoints = stack.endpoints
    lines = [
        f"# The local stack '{stack.name}' (devtools/up), started {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC.",
        "# Removed when it stops; its ports are new on every run. Use: source " + _shown(path),
        f"export AzureWebJobsStorage={shlex.quote(stack.connection_string)}",
        f"export EMULATOR_ADMIN_URL={shlex.quote(endpoints.admin_url)}",
        f"export EMULATOR_CA_BUNDLE={shlex.quote(endpoints.ca_bundle)}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _shown(path: Path) -> str:
    """A path as a person types it from the repository's folder."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _banner(stack: LocalStack, environment: Path, results: Path) -> None:
    python = _shown(Path(sys.executable))  # after the cd: .venv/bin/python, the project's own
    print(
        f"local stack '{stack.name}' is up (ports are new on every run)\n"
        f"  storage   {stack.connection_string}\n"
        f"  ARM       {stack.endpoints.arm_endpoint}  (admin {stack.endpoints.admin_url})\n"
        f"  HTTP      http://127.0.0.1:{stack.http_port}/api/backups  (function keys are not enforced locally)\n"
        f"  logs      {_shown(stack.log_path('host').parent)}/{stack.name}-{{azurite,emulator,host}}.log\n"
        f"  results   {_shown(results)} (each full document, one per line)\n"
        f"send your own request, from another shell:\n"
        f"  cd {shlex.quote(str(REPO_ROOT))} && source {_shown(environment)}\n"
        f"  {python} -m devtools.queuectl send {EXAMPLE_SAMPLE}\n"
        "  (item names: devtools/emulator/inventory.json)\n"
        "results (status, correlationId, jobId, error code; then the error) as they land; Ctrl-C stops everything:\n",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return _run(_parse(argv))


if __name__ == "__main__":
    sys.exit(main())
