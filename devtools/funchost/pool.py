"""The worker's thread pool: sync functions run on threads, as the Python worker runs them.

Unlike ``concurrent.futures``, tasks not yet started can be taken back at shutdown (their
messages are handed back to the queue), and the threads are daemons, so a function stuck past
the shutdown deadline cannot keep the process alive.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Task", "WorkerPool"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    run: Callable[[], None]
    cancel: Callable[[], None]
    """Called instead of ``run`` when the task is taken back before it started."""


class WorkerPool:
    def __init__(self, size: int, name: str = "funchost-worker") -> None:
        self._pending: deque[Task] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True) for n in range(size)]
        for thread in self._threads:
            thread.start()

    @property
    def size(self) -> int:
        return len(self._threads)

    def submit(self, task: Task) -> bool:
        """Queue ``task``; False (and not queued) once the pool is closed."""
        with self._ready:
            if self._closed:
                return False
            self._pending.append(task)
            self._ready.notify()
            return True

    def take_back(self) -> list[Task]:
        """Remove and return the tasks no thread has started yet."""
        with self._ready:
            tasks = list(self._pending)
            self._pending.clear()
            return tasks

    def close(self) -> None:
        """Let the threads end once idle; running tasks finish on their own."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return
                task = self._pending.popleft()
            try:
                task.run()
            except Exception:  # a task must never take its thread down with it
                logger.exception("a worker task failed")
