"""Helpers for the local host's tests: throwaway apps, and waiting on queues with a deadline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from azure.storage.queue import QueueClient

from devtools.funchost.processes import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    return wait_until(probe, timeout=timeout, what=what)


def drain(queue: QueueClient) -> list[str]:
    """Receive and delete every visible message; their texts."""
    texts = []
    for message in queue.receive_messages(messages_per_page=32, visibility_timeout=30):
        texts.append(str(message.content))
        queue.delete_message(message)
    return texts


def collect(queue: QueueClient, count: int, timeout: float = 15.0) -> list[str]:
    """Wait until ``count`` messages arrived on ``queue``; their texts (deleted)."""
    seen: list[str] = []

    def enough() -> list[str] | None:
        seen.extend(drain(queue))
        return seen if len(seen) >= count else None

    return wait_for(enough, f"{count} message(s) on {queue.queue_name}", timeout)


@dataclass
class App:
    """A throwaway function app on disk, and the unique queue names its settings point at."""

    root: Path
    prefix: str

    @property
    def in_queue(self) -> str:
        return f"{self.prefix}-in"

    @property
    def out_queue(self) -> str:
        return f"{self.prefix}-out"

    def settings(self, connection_string: str, **extra: str) -> dict[str, str]:
        return {
            "AzureWebJobsStorage": connection_string,
            "IN_QUEUE": self.in_queue,
            "OUT_QUEUE": self.out_queue,
            **extra,
        }


def queue_function(
    *, out: bool = True, trigger_name: str = "msg", out_name: str = "out", extra: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A function.json: a trigger on %IN_QUEUE%, and an output to %OUT_QUEUE%."""
    bindings: list[dict[str, Any]] = [
        {
            "name": trigger_name,
            "type": "queueTrigger",
            "direction": "in",
            "queueName": "%IN_QUEUE%",
            "connection": "AzureWebJobsStorage",
        },
    ]
    if out:
        bindings.append(
            {
                "name": out_name,
                "type": "queue",
                "direction": "out",
                "queueName": "%OUT_QUEUE%",
                "connection": "AzureWebJobsStorage",
            }
        )
    bindings.extend(extra or [])
    return {"scriptFile": "__init__.py", "bindings": bindings}
