"""Child processes of the local stack: start with a log file, stop with a deadline, wait with one.

Shared by ``devtools/azurite.py`` and ``devtools/stack.py``. Children get a session of their
own (so the terminal's Ctrl-C reaches only the stack, which then stops them in order) and, on
Linux, SIGTERM when the thread that started them dies, so a crashed test run leaves no Azurite
holding a port.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TypeVar

__all__ = ["ManagedProcess", "ProcessExited", "wait_until"]

T = TypeVar("T")
_PR_SET_PDEATHSIG = 1


class ProcessExited(RuntimeError):
    """A child died while we waited for it to become ready."""


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def set_parent_death_signal() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_parent_death_signal


class ManagedProcess:
    """One restartable child process, its output appended to a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None, cwd: Path
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._close_log()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self._log.write(f"=== {stamp} starting {self.name}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # noqa: PLW1509  # only calls prctl, which is async-signal-safe
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit status."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._close_log()
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL at once: a crash, for chaos tests."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._close_log()

    def signal(self, signum: int) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signum)

    def wait(self, timeout: float) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._process.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until it returns something other than None, within a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if process is not None and not process.alive:
            raise ProcessExited(
                f"{process.name} exited with status {process.returncode} while waiting for {what}; "
                f"its log ({process.log_path}) ends:\n{process.log_tail()}"
            )
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(interval)
