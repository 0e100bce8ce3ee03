"""Several local hosts on the same queues: the stack's own host and more, each killable on its own.

In Azure a busy app scales out to several instances that take messages from the same queues;
the request ledger is what keeps them from triggering or reporting a request twice. Here each
instance is one more ``python -m devtools.funchost`` process with the stack's app settings and
command line (its own ready file and log), so a chaos run can SIGKILL any of them while the
others keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.bench.stackrun import HostLog
from devtools.funchost.processes import ManagedProcess, wait_until
from devtools.stack import REPO_ROOT, LocalStack

__all__ = ["HostGroup", "host_group"]

_READY_TIMEOUT = 90.0


class HostGroup:
    """Host 0 is the stack's own; hosts 1 … count-1 are started here with the same settings."""

    def __init__(self, stack: LocalStack, count: int) -> None:
        if count < 1:
            raise ValueError("a host group has at least the stack's own host")
        self.stack = stack
        self._extra = [self._process(n) for n in range(1, count)]
        self.logs = [HostLog(stack.log_path("host")), *(HostLog(host.log_path) for host in self._extra)]

    def __len__(self) -> int:
        return 1 + len(self._extra)

    def start(self) -> None:
        for n in range(1, len(self)):
            self._start(n)

    def stop(self) -> None:
        for host in self._extra:
            host.stop(20)

    def kill_and_restart(self, n: int) -> None:
        """SIGKILL host ``n`` (a crashed instance) and start it again; the others keep running."""
        if n == 0:
            self.stack.restart_host(kill=True)
            return
        self._extra[n - 1].kill()
        self._start(n)

    def remove_logs(self) -> None:
        for host in self._extra:
            host.log_path.unlink(missing_ok=True)

    def unexplained_copies(self, copies: dict[str, int]) -> dict[str, int]:
        """Keys with more result copies than the ledger's one window explains, with their copy counts.

        A result goes out again only when the delivery that sent it did not live to mark it sent:
        killed (no "Executed" line) or failed (storage gone before the mark). So each copy beyond
        the first needs one sender (an invocation that logged "finished" or "finishing what an
        earlier delivery … left undone" for the key) that did not end Succeeded.
        """
        text = [log.text() for log in self.logs]
        unexplained = {}
        for key, count in copies.items():
            line = re.compile(rf"\[(\w+) (\w+)\] shared\.carry: \[{re.escape(key)}\] (?:finished |finishing what)")
            failed_senders = 0
            for log in text:
                for function, invocation in line.findall(log):
                    if not re.search(rf"Executed {function} .* outcome=Succeeded .* invocation={invocation}", log):
                        failed_senders += 1
            if count - 1 > failed_senders:
                unexplained[key] = count
        return unexplained

    def outcomes(self) -> dict[str, int]:
        """Invocations by function and outcome, over every host's log."""
        counted: dict[str, int] = {}
        for log in self.logs:
            for name, count in log.outcomes().items():
                counted[name] = counted.get(name, 0) + count
        return counted

    def _ready_file(self, n: int) -> Path:
        return REPO_ROOT / ".local" / "funchost" / f"{self.stack.name}-host-{n}.ready.json"

    def _process(self, n: int) -> ManagedProcess:
        argv = list(self.stack.host.argv)
        # The stack's host names its own ready file; this one gets another.
        argv[argv.index("--ready-file") + 1] = str(self._ready_file(n))
        log = self.stack.log_path(f"host-{n}")
        log.unlink(missing_ok=True)
        return ManagedProcess(f"host-{n}", argv, log_path=log, cwd=REPO_ROOT)

    def _start(self, n: int) -> None:
        host, ready = self._extra[n - 1], self._ready_file(n)
        ready.unlink(missing_ok=True)
        host.env = self.stack.host_environment()
        host.start()
        wait_until(lambda: ready.is_file() or None, timeout=_READY_TIMEOUT, what=f"host {n} listening", process=host)


@contextmanager
def host_group(stack: LocalStack, count: int) -> Iterator[HostGroup]:
    """``count`` hosts on the stack's queues while the block runs (the stack's own host already runs)."""
    group = HostGroup(stack, count)
    try:
        group.start()
        yield group
    finally:
        group.stop()
