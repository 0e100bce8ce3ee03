"""Several local hosts on the same queues: the stack's own host and more, each killable on its own.

In Azure a busy app scales out to several instances that take messages from the same queues;
the request ledger is what keeps them from triggering or reporting a request twice. Here each
instance is one more ``python -m devtools.funchost`` process with the stack's app settings and
command line (its own ready file and log), so a chaos run can SIGKILL any of them while the
others keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from devtools.bench.stackrun import HostLog
from devtools.funchost.processes import ManagedProcess, wait_until
from devtools.stack import REPO_ROOT, LocalStack

__all__ = ["HostGroup", "host_group"]

_READY_TIMEOUT = 90.0
_AT = r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_FINISHED_AT = re.compile(_AT + r" \S+ +\[\w+ (?P<invocation>\w+)\] shared\.carry: \[[^\]]*\] finished ")
_EXECUTED_AT = re.compile(_AT + r" .*Executed \w+ .* outcome=Succeeded .* invocation=(?P<invocation>[\w-]+)")


def _instant(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


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

    def failed_senders(
        self, keys: Sequence[str], outages: Sequence[tuple[float, float]] = ()
    ) -> dict[str, dict[str, int]]:
        """For each key, its result's senders that may have sent it without marking it sent, by cause.

        A sender is an invocation that logged "finished" or "finishing what an earlier delivery …
        left undone" for the key. ``killed``: no "Executed" line (its host died); ``failed``: an
        outcome other than Succeeded (storage gone before the mark); ``outage``: it succeeded but
        ran across a storage outage (``outages``, epoch seconds), where a send whose answer was
        lost is sent again by the storage client's own retry.
        """
        text = [log.text() for log in self.logs]
        found: dict[str, dict[str, int]] = {}
        for key in keys:
            sender = re.compile(_AT + rf" \S+ +\[(?P<function>\w+) (?P<invocation>\w+)\] shared\.carry: "
                                rf"\[{re.escape(key)}\] (?:finished |finishing what)")
            causes = {"killed": 0, "failed": 0, "outage": 0}
            for log in text:
                for sent in sender.finditer(log):
                    ended = re.search(_AT + rf" .*Executed {sent['function']} .* outcome=(?P<outcome>\w+) .* "
                                      rf"invocation={sent['invocation']}", log)
                    if ended is None:
                        causes["killed"] += 1
                    elif ended["outcome"] != "Succeeded":
                        causes["failed"] += 1
                    elif any(_instant(sent["at"]) <= until and begin <= _instant(ended["at"])
                             for begin, until in outages):
                        causes["outage"] += 1
            found[key] = causes
        return found

    def result_window_ms(self) -> list[int]:
        """Per finishing invocation that ended Succeeded: ms from recording its result to settling its message.

        That span holds the result's send and its sent mark, so it bounds the window in which a kill
        leaves a result sent and unmarked (its redelivery sends it again).
        """
        spans = []
        for log in self.logs:
            text = log.text()
            ended = {m["invocation"][:8]: m["at"] for m in _EXECUTED_AT.finditer(text)}
            for m in _FINISHED_AT.finditer(text):
                if m["invocation"] in ended:
                    spans.append(round((_instant(ended[m["invocation"]]) - _instant(m["at"])) * 1000))
        return spans

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
