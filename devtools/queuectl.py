"""Put request files on a queue and follow the results queue, locally or against real Azure Storage.

::

    python -m devtools.queuectl send devtools/samples/*.json [--queue backup-requests]
    python -m devtools.queuectl follow [--queue backup-results] [--count N] [--timeout S] [--json]

Storage: ``--connection`` or ``AzureWebJobsStorage`` (a connection string, ``UseDevelopmentStorage=true``
included), or ``--account-url https://ACCOUNT.queue.core.windows.net`` signed in with
DefaultAzureCredential (needs Storage Queue Data Contributor). Messages are sent as plain text, as
the app's host.json (``messageEncoding: none``) expects. ``follow`` deletes what it prints.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueServiceClient

__all__ = ["follow", "main", "message_count", "queue_service", "send_files", "summarize"]

DEFAULT_REQUESTS_QUEUE = "backup-requests"
DEFAULT_RESULTS_QUEUE = "backup-results"
_IDLE_MAX_SECONDS = 2.0


def queue_service(connection: str | None = None, account_url: str | None = None) -> QueueServiceClient:
    if account_url:
        from azure.identity import DefaultAzureCredential

        return QueueServiceClient(account_url, credential=DefaultAzureCredential())
    connection = connection or os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112  # the setting's real name
    if not connection:
        raise SystemExit("queuectl: give --connection or --account-url, or set AzureWebJobsStorage")
    if connection.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        from devtools.azurite import connection_string

        connection = connection_string(10001)
    return QueueServiceClient.from_connection_string(connection)


def message_count(queue: QueueClient) -> int:
    """Messages in the queue, visible or not (the service's approximate count; Azurite's is exact)."""
    try:
        return int(queue.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0


def send_files(queue: QueueClient, files: Sequence[Path], *, encode_base64: bool = False) -> list[str]:
    """Send each file's text as one message; the message ids, in order."""
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    ids = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        if encode_base64:
            text = base64.b64encode(text.encode("utf-8")).decode("ascii")
        ids.append(queue.send_message(text).id)
    return ids


def summarize(text: str) -> str:
    """One line for a result message: status, correlation id, job id, error code."""
    try:
        result = json.loads(text)
    except ValueError:
        return f"(not JSON) {text[:200]}"
    if not isinstance(result, dict):
        return f"(not an object) {text[:200]}"
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    fields = {
        "correlationId": result.get("correlationId"),
        "jobId": result.get("jobId"),
        "error": error.get("code") if error else None,
    }
    shown = " ".join(f"{key}={value}" for key, value in fields.items() if value)
    return f"{result.get('status', '?'):<22} {shown}"


def follow(
    queue: QueueClient,
    emit: Callable[[str], None],
    *,
    count: int | None = None,
    timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Receive, emit and delete messages until ``count`` arrived, ``timeout`` passed or ``should_stop()``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    idle = 0.1
    while (count is None or seen < count) and not should_stop():
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            messages = list(queue.receive_messages(max_messages=32, messages_per_page=32, visibility_timeout=30))
        except AzureError as exc:
            print(f"queuectl: receiving from {queue.queue_name} failed: {exc}", file=sys.stderr)
            messages = []
        for message in messages:
            emit(str(message.content))
            queue.delete_message(message)
            seen += 1
        if messages:
            idle = 0.1
            continue
        time.sleep(idle)  # polling back-off while the queue is empty
        idle = min(idle * 2, _IDLE_MAX_SECONDS)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.queuectl", description=__doc__)
    parser.add_argument("--connection", help="storage connection string (default: $AzureWebJobsStorage)")
    parser.add_argument("--account-url", help="queue service URL, signed in with DefaultAzureCredential")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="put request files on a queue")
    send.add_argument("files", nargs="+", type=Path)
    send.add_argument("--queue", default=os.environ.get("BACKUP_REQUESTS_QUEUE", DEFAULT_REQUESTS_QUEUE))
    send.add_argument("--base64", action="store_true", help="base64-encode the text (as some producers do)")
    watch = commands.add_parser("follow", help="print results as they land, and delete them")
    watch.add_argument("--queue", default=os.environ.get("BACKUP_RESULTS_QUEUE", DEFAULT_RESULTS_QUEUE))
    watch.add_argument("--count", type=int, help="stop after this many messages")
    watch.add_argument("--timeout", type=float, help="stop after this many seconds")
    watch.add_argument("--json", action="store_true", help="print each message's text instead of a summary")
    args = parser.parse_args(argv)
    service = queue_service(args.connection, args.account_url)
    queue = service.get_queue_client(args.queue)
    if args.command == "send":
        for path, message_id in zip(args.files, send_files(queue, args.files, encode_base64=args.base64), strict=True):
            print(f"sent {path} as message {message_id} to {args.queue}")
        return 0

    def emit(text: str) -> None:
        print(text if args.json else summarize(text), flush=True)

    try:
        seen = follow(queue, emit, count=args.count, timeout=args.timeout)
    except KeyboardInterrupt:
        return 130
    return 0 if args.count is None or seen >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
