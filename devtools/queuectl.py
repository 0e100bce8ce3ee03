"""Put request files on a queue and follow the results queue, locally or against real Azure Storage.

    .venv/bin/python -m devtools.queuectl send devtools/samples/vm-by-names.json
    .venv/bin/python -m devtools.queuectl follow --count 1 --json

Run it from the repository's folder with the .venv's Python: a bare python in a fresh shell
cannot import azure.

Storage: --connection or the AzureWebJobsStorage variable (a connection string;
UseDevelopmentStorage=true means Azurite's default port), or --account-url
https://ACCOUNT.queue.core.windows.net signed in with DefaultAzureCredential (needs Storage Queue
Data Contributor). While devtools/up runs, `source .local/dev.env` sets AzureWebJobsStorage for
it: its ports are new on every run.

Messages are sent as plain text, as the app's host.json (messageEncoding: none) expects. follow
deletes what it prints, so it competes with devtools/up, which prints the same results (and keeps
each full document in .local/dev-results.jsonl).

Exit status: 0 when done, 1 when storage cannot be reached or follow saw fewer than --count
messages, 2 for a bad command line or a file that cannot be read.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import LinearRetry, QueueClient, QueueServiceClient

from devtools.clihelp import HelpFormatter, parser

__all__ = ["follow", "main", "message_count", "queue_service", "read_files", "send_files", "summarize"]

DEFAULT_REQUESTS_QUEUE = "backup-requests"
DEFAULT_RESULTS_QUEUE = "backup-results"
_IDLE_MAX_SECONDS = 2.0
# A command line retries once after a second, not for the minute of the SDK's default, before it gives up.
_CLI_CLIENT = {"retry_policy": LinearRetry(backoff=1, retry_total=1, random_jitter_range=0), "connection_timeout": 5}
_SUMMARY_WIDTH = 22


def queue_service(
    connection: str | None = None, account_url: str | None = None, **client_options: Any
) -> QueueServiceClient:
    if account_url:
        from azure.identity import DefaultAzureCredential

        return QueueServiceClient(account_url, credential=DefaultAzureCredential(), **client_options)
    connection = connection or os.environ.get("AzureWebJobsStorage", "")  # noqa: SIM112  # the setting's real name
    if not connection:
        raise SystemExit(
            "queuectl: no storage named: give --connection or --account-url, or set AzureWebJobsStorage "
            "(while devtools/up runs: source .local/dev.env)"
        )
    if connection.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        from devtools.azurite import connection_string

        connection = connection_string(10001)
    try:
        return QueueServiceClient.from_connection_string(connection, **client_options)
    except ValueError as exc:
        raise SystemExit(f"queuectl: the connection string cannot be read: {exc}") from None


def message_count(queue: QueueClient) -> int:
    """Messages in the queue, visible or not (the service's approximate count; Azurite's is exact)."""
    try:
        return int(queue.get_queue_properties().approximate_message_count or 0)
    except ResourceNotFoundError:
        return 0


def read_files(files: Sequence[Path]) -> list[str]:
    """Every file's text, or ``OSError`` / ``UnicodeDecodeError`` for the first that cannot be read."""
    return [path.read_text(encoding="utf-8") for path in files]


def send_files(queue: QueueClient, files: Sequence[Path], *, encode_base64: bool = False) -> list[str]:
    """Send each file's text as one message (all files are read first); the message ids, in order."""
    return send_texts(queue, read_files(files), encode_base64=encode_base64)


def send_texts(queue: QueueClient, texts: Sequence[str], *, encode_base64: bool = False) -> list[str]:
    with contextlib.suppress(ResourceExistsError):
        queue.create_queue()
    ids = []
    for text in texts:
        body = base64.b64encode(text.encode("utf-8")).decode("ascii") if encode_base64 else text
        ids.append(queue.send_message(body).id)
    return ids


def summarize(text: str) -> str:
    """A result message in a line or two: status, correlation id, job id, error code; then the error's message.

    The second line names the error's target when the message does not already start with it, as
    ARM's messages do not (the app's own Rejected messages do: "protectedItemName: must not …").
    """
    try:
        result = json.loads(text)
    except ValueError:
        return f"(not JSON) {text[:200]}"
    if not isinstance(result, dict):
        return f"(not an object) {text[:200]}"
    error: dict[str, Any] = result["error"] if isinstance(result.get("error"), dict) else {}
    fields = {
        "correlationId": result.get("correlationId"),
        "jobId": result.get("jobId"),
        "error": error.get("code") if error else None,
    }
    shown = " ".join(f"{key}={value}" for key, value in fields.items() if value)
    line = f"{result.get('status', '?')!s:<{_SUMMARY_WIDTH}} {shown}"
    message, target = error.get("message"), error.get("target")
    if isinstance(message, str) and message:
        if isinstance(target, str) and target and not message.startswith(target):
            message = f"{target}: {message}"
        line += "\n" + " " * (_SUMMARY_WIDTH + 1) + " ".join(message.split())[:300]
    return line


def follow(
    queue: QueueClient,
    emit: Callable[[str], None],
    *,
    count: int | None = None,
    timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    stop_on_error: bool = False,
) -> int:
    """Receive, emit and delete messages until ``count`` arrived, ``timeout`` passed or ``should_stop()``.

    A failed receive is reported on stderr and tried again, or raised with ``stop_on_error``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    idle = 0.1
    while (count is None or seen < count) and not should_stop():
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            messages = list(queue.receive_messages(max_messages=32, messages_per_page=32, visibility_timeout=30))
        except AzureError as exc:
            if stop_on_error:
                raise
            print(f"queuectl: receiving from {queue.queue_name} failed: {unreachable(exc)}", file=sys.stderr)
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


def unreachable(exc: AzureError) -> str:
    """The reason in one line: the socket error when there is one, else the first line of the SDK's message."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    text = str(getattr(exc, "message", None) or exc).strip()
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip().lower()
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def _parse(argv: list[str] | None) -> Any:
    cli = parser("devtools.queuectl", __doc__)
    cli.add_argument("--connection", metavar="STRING", help="storage connection string (default: $AzureWebJobsStorage)")
    cli.add_argument("--account-url", metavar="URL",
                     help="queue service URL of a storage account, signed in with DefaultAzureCredential")
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    send = commands.add_parser("send", help="put request files on a queue, one message per file",
                               description="Put each file's text on the queue as one message. Every file is read "
                                           "before anything is sent.", formatter_class=HelpFormatter)
    send.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a request message (JSON, as the app reads)")
    send.add_argument("--queue", default=os.environ.get("BACKUP_REQUESTS_QUEUE", DEFAULT_REQUESTS_QUEUE),
                      help="queue to send to; $BACKUP_REQUESTS_QUEUE sets the default")
    send.add_argument("--base64", action="store_true", help="base64-encode the text first, as some producers do")
    watch = commands.add_parser("follow", help="print results as they land, and delete them",
                                description="Print each message of the queue as it lands (a summary, or the "
                                            "document with --json) and delete it.", formatter_class=HelpFormatter)
    watch.add_argument("--queue", default=os.environ.get("BACKUP_RESULTS_QUEUE", DEFAULT_RESULTS_QUEUE),
                       help="queue to follow; $BACKUP_RESULTS_QUEUE sets the default")
    watch.add_argument("--count", type=int, metavar="N", help="stop after N messages; exit 1 if fewer came")
    watch.add_argument("--timeout", type=float, metavar="SECONDS", help="stop after this long (default: never)")
    watch.add_argument("--json", action="store_true", help="print each message's full text instead of a summary")
    return cli.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    service = queue_service(args.connection, args.account_url, **_CLI_CLIENT)
    queue = service.get_queue_client(args.queue)
    try:
        if args.command == "send":
            return _send(queue, args.files, encode_base64=args.base64)
        return _follow(queue, count=args.count, timeout=args.timeout, as_json=args.json)
    except AzureError as exc:
        local = "127.0.0.1" in service.url or "localhost" in service.url
        hint = " Is devtools/up running? Its ports are new on every run: source .local/dev.env again." if local else ""
        print(f"queuectl: cannot reach queue {args.queue} at {service.url}: {unreachable(exc)}.{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _send(queue: QueueClient, files: Sequence[Path], *, encode_base64: bool) -> int:
    try:
        texts = read_files(files)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        name = exc.filename if isinstance(exc, OSError) and exc.filename else "a file"
        print(f"queuectl: cannot read {name}: {reason}; nothing was sent", file=sys.stderr)
        return 2
    for path, text in zip(files, texts, strict=True):  # one at a time: a failure leaves the sent ones printed
        [message_id] = send_texts(queue, [text], encode_base64=encode_base64)
        print(f"sent {path} as message {message_id} to {queue.queue_name}", flush=True)
    return 0


def _follow(queue: QueueClient, *, count: int | None, timeout: float | None, as_json: bool) -> int:
    def emit(text: str) -> None:
        print(text if as_json else summarize(text), flush=True)

    seen = follow(queue, emit, count=count, timeout=timeout, stop_on_error=True)
    return 0 if count is None or seen >= count else 1


if __name__ == "__main__":
    sys.exit(main())
