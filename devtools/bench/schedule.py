"""The emulated schedule of one backup, and the fewest ARM calls it allows.

A trigger starts an operation of ``operation_seconds`` whose answers say ``Retry-After:
retry_after``, and a job that ends ``job_seconds`` after the trigger (emulated seconds). The
emulator runs ``time_scale`` emulated seconds per real second; the app's timing settings are in
real seconds (see ``devtools.bench.stackrun.app_timing``).

The minimum, for a client that honours Retry-After and polls jobs on the app's schedule:

* 1 POST;
* ceil(operation / Retry-After) operation GETs: polls at RA, 2*RA, …, the first one at or after
  the operation's end sees it done;
* job GETs: the job phase starts at that poll, t0 = ceil(operation / RA)*RA, and the job has
  job - t0 left; the app waits JOB_POLL_INITIAL before the first job GET and then
  min(JOB_POLL_MAX, JOB_POLL_INITIAL*2^(k-1)) after the k-th, so the minimum is the smallest k with
  JOB_POLL_INITIAL + sum_{j=1..k-1} min(JOB_POLL_MAX, JOB_POLL_INITIAL*2^(j-1)) ≥ job - t0
  (at least 1: the end must be seen).

This is the count of a client that looks exactly when it is allowed to. It is the fewest looks
that learn each outcome as early as the schedule lets anyone learn it. It is not a floor for a
client that looks *late*. A look made well after Retry-After covers more of the run, so it needs
fewer looks and learns the outcome later. The app looks late by the time its host takes to pick
up a follow-up once the follow-up becomes visible. In Azure, and in the local host, that delay
can grow to ``maxPollingInterval`` (10 s in host.json) when the queue is otherwise idle.

That is small beside a real Retry-After of 60 s. In a run compressed 30 times it stands for up to
300 emulated seconds, five Retry-Afters. A fresh benchmark run measured 1.8 operation GETs
against a minimum of 2. An operation's status is a pure function of the emulated clock, so one
GET instead of two means that the first look came at least one Retry-After (2 real seconds) late,
for a fifth of the backups. The formula was right and the measurement was distorted.
``app_timing`` now scales the host's polling interval with the clock, as it scales the app's own
timings, so the looks are as punctual as at full scale.

The fewest request-ledger table transactions (``shared.ledger_rules``) for the same backup, with
P = operation GETs + job GETs, the poll_status invocations:

* the request (trigger_backup): 4. One conditional create makes the key known (it fails when
  the key exists, so no read is needed before it) and, holding ``posting_since``, is also the
  baton taken before the POST; the item record is read (which key's backup runs) and claimed in
  a guarded write; one write records the POST's answer and the follow-up it promises;
* every poll but the last: 1, the guarded write of the next follow-up (the follow-up carries
  the ETag it was written with, so no read);
* the last poll: 2, the result's write and, once it is sent, the sent mark.

minimum = 4 + (P - 1) + 2 = P + 5. The retention sweep (one query at most every ten minutes
per instance) is no cost of a backup and is counted apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    time_scale: float = 30.0
    operation_seconds: float = 120.0
    retry_after: float = 60.0
    job_seconds: float = 600.0

    def emulator_patch(self) -> dict[str, Any]:
        return {
            "time_scale": self.time_scale,
            "defaults": {
                "operation_seconds": self.operation_seconds,
                "operation_retry_after": self.retry_after,
                "job_seconds": self.job_seconds,
            },
        }

    @property
    def real_retry_after(self) -> int:
        """What the emulator sends: ceil(emulated ÷ scale), at least 1 (devtools/emulator/README.md)."""
        return max(1, math.ceil(self.retry_after / self.time_scale))

    def operation_gets(self) -> int:
        return max(1, math.ceil(self.operation_seconds / self.retry_after))

    def job_gets(self, job_poll_initial: float, job_poll_max: float) -> int:
        """``job_poll_*`` in real seconds, as the app's settings are."""
        started = self.operation_gets() * self.retry_after
        left = self.job_seconds - started
        initial, cap = job_poll_initial * self.time_scale, job_poll_max * self.time_scale
        waited, polls = initial, 1
        while waited < left:
            waited += min(cap, initial * 2 ** (polls - 1))
            polls += 1
        return polls

    def minimum(self, app_settings: dict[str, str]) -> dict[str, int]:
        job = self.job_gets(float(app_settings["JOB_POLL_INITIAL_SECONDS"]),
                            float(app_settings["JOB_POLL_MAX_SECONDS"]))
        return {"post": 1, "operation_get": self.operation_gets(), "job_get": job,
                "total": 1 + self.operation_gets() + job}

    def ledger_minimum(self, app_settings: dict[str, str]) -> dict[str, int]:
        """The fewest table transactions per backup, by function (see the module docstring)."""
        polls = self.minimum(app_settings)["total"] - 1
        return {"trigger_backup": 4, "poll_status": polls - 1 + 2, "total": polls + 5}

    def fixed_polling_calls(self, interval: float) -> int:
        """ARM calls of a loop that polls the operation, then the job, every ``interval`` emulated seconds."""
        operation_polls = max(1, math.ceil(self.operation_seconds / interval))
        job_polls = max(1, math.ceil((self.job_seconds - operation_polls * interval) / interval))
        return 1 + operation_polls + job_polls

    def describe(self) -> str:
        return (f"operation {self.operation_seconds:g} s with Retry-After {self.retry_after:g} s, job "
                f"{self.job_seconds:g} s (emulated; time scale {self.time_scale:g})")
