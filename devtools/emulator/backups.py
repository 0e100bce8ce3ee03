"""The backup service's state: operations and jobs created by triggers, and how they progress on the emulated clock.

Everything is decided when the trigger is accepted (outcome, durations, errors); a status is then a pure function
of the emulated time, so polling never changes state and time can run at any speed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from .config import Behaviour
from .errors import ArmError
from .inventory import Item, Vault, Workload

IN_PROGRESS_CODE = "UserErrorBackupOperationInProgress"
IN_PROGRESS_MESSAGE = (
    "Backup cannot be triggered because another backup or restore operation is in progress on this item."
)
# The documented limit codes (Azure Backup troubleshooting docs): the day's on-demand backups are spent, or
# the item's trigger attempts in the last 24 hours are (retryable once the oldest leaves the window).
DAILY_LIMIT_CODE = "CloudDosAbsoluteLimitReached"
ATTEMPT_LIMIT_CODE = "CloudDosAbsoluteLimitReachedWithRetry"
LIMIT_MESSAGE = "Operation is blocked as you have reached the limit on number of operations permitted in 24 hours."
_ATTEMPT_WINDOW = timedelta(hours=24)
# A cancelled job spends the last quarter of its run in Cancelling.
_CANCELLING_SHARE = 0.25

_DEFAULT_ERRORS: dict[Workload, tuple[str, str]] = {
    Workload.VM: ("UserErrorVmNotInDesirableState", "VM is not in a state that allows backups."),
    Workload.FILE_SHARE: ("UserErrorFileShareEndpointUnreachable", "Storage account or file share is not reachable."),
}
_DEFAULT_WORKLOAD_ERROR = ("UserErrorWorkloadBackupFailed", "The database backup failed in the workload extension.")


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    number: int


@dataclass(frozen=True)
class _Stamped:
    """``start`` and ``end`` are emulated; ``stamped`` is the caller's clock at the start (see ``EmulatedClock``)."""

    start: datetime
    end: datetime
    stamped: datetime

    def reported(self, moment: datetime) -> datetime:
        """An emulated instant of this run as the service reports it: the stamp plus the emulated time since."""
        return self.stamped + (moment - self.start)


@dataclass(frozen=True)
class Operation(_Stamped):
    id: str
    item: Item
    outcome: str
    retry_after: float
    job_id: str | None
    failure: Failure | None

    def status(self, now: datetime) -> str:
        return "InProgress" if now < self.end else self.outcome


@dataclass(frozen=True)
class Job(_Stamped):
    id: str
    item: Item
    outcome: str
    activity_id: str
    backup_type: str | None
    failure: Failure | None

    def status(self, now: datetime) -> str:
        if now >= self.end:
            return self.outcome
        cancelling_from = self.end - (self.end - self.start) * _CANCELLING_SHARE
        return "Cancelling" if self.outcome == "Cancelled" and now >= cancelling_from else "InProgress"

    def finished(self, now: datetime) -> bool:
        return now >= self.end


def _failure(item: Item, behaviour: Behaviour) -> Failure:
    code, message = _DEFAULT_ERRORS.get(item.workload, _DEFAULT_WORKLOAD_ERROR)
    return Failure(behaviour.error_code or code, behaviour.error_message or message, behaviour.error_number)


class BackupState:
    """Not thread-safe on its own: the emulator calls it under its state lock."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = {}
        self.jobs: dict[str, Job] = {}
        self._accepted: dict[str, list[datetime]] = {}
        self._attempts: dict[str, list[datetime]] = {}
        self._busy_until: dict[str, datetime] = {}
        self._by_vault: dict[Vault, list[Job]] = {}
        self._by_item: dict[str, list[Job]] = {}

    def reset(self) -> None:
        self.operations.clear()
        self.jobs.clear()
        self._accepted.clear()
        self._attempts.clear()
        self._busy_until.clear()
        self._by_vault.clear()
        self._by_item.clear()

    def busy(self, item: Item, now: datetime) -> bool:
        until = self._busy_until.get(item.id)
        return until is not None and now < until

    def accepted_on_day(self, item: Item, now: datetime) -> int:
        return sum(1 for t in self._accepted.get(item.id, []) if t.date() == now.date())

    def attempts_within_a_day(self, item: Item, now: datetime) -> int:
        return sum(1 for t in self._attempts.get(item.id, []) if now - t < _ATTEMPT_WINDOW)

    def trigger(
        self,
        item: Item,
        behaviour: Behaviour,
        now: datetime,
        *,
        stamped: datetime,
        activity_id: str,
        backup_type: str | None,
        in_progress: str,
        daily_limit: int | None,
        attempt_limit: int | None,
    ) -> Operation:
        """Accept a backup, or raise the ArmError the POST answers with (a limit, in progress).

        The limits are checked first, as a gate before the item is looked at; an attempt is a POST that
        passed the gate, accepted or refused as in progress.
        """
        if daily_limit is not None and self.accepted_on_day(item, now) >= daily_limit:
            raise ArmError(400, DAILY_LIMIT_CODE, f"{LIMIT_MESSAGE} ({daily_limit} on-demand backups a UTC day)")
        if attempt_limit is not None and self.attempts_within_a_day(item, now) >= attempt_limit:
            raise ArmError(400, ATTEMPT_LIMIT_CODE, f"{LIMIT_MESSAGE} ({attempt_limit} attempts in 24 hours)")
        self._attempts.setdefault(item.id, []).append(now)
        conflict = self.busy(item, now)
        if conflict and in_progress == "post":
            raise ArmError(400, IN_PROGRESS_CODE, IN_PROGRESS_MESSAGE)
        self._accepted.setdefault(item.id, []).append(now)
        op_end = now + timedelta(seconds=behaviour.operation_seconds)
        in_progress_failure = Failure(IN_PROGRESS_CODE, IN_PROGRESS_MESSAGE, behaviour.error_number)
        op_outcome, op_failure = behaviour.operation_outcome, None
        if conflict and in_progress == "operation":
            op_outcome, op_failure = "Failed", in_progress_failure
        elif op_outcome == "Failed":
            op_failure = _failure(item, behaviour)
        job = None
        if op_outcome == "Succeeded":
            job = self._new_job(item, behaviour, (now, stamped), activity_id, backup_type, conflict,
                                in_progress_failure, op_end)
        operation = Operation(
            id=str(uuid.uuid4()), item=item, start=now, end=op_end, stamped=stamped, outcome=op_outcome,
            retry_after=behaviour.operation_retry_after, job_id=job.id if job else None,
            failure=op_failure,
        )
        self.operations[operation.id] = operation
        if not conflict:
            self._busy_until[item.id] = max(op_end, job.end if job else op_end)
        return operation

    def _new_job(
        self,
        item: Item,
        behaviour: Behaviour,
        started: tuple[datetime, datetime],
        activity_id: str,
        backup_type: str | None,
        conflict: bool,
        in_progress_failure: Failure,
        op_end: datetime,
    ) -> Job:
        now, stamped = started
        failure: Failure | None
        if conflict:
            # The refused duplicate shows up as a job that fails as soon as its operation completes.
            outcome, end, failure = "Failed", op_end, in_progress_failure
        else:
            outcome = behaviour.job_outcome
            end = now + timedelta(seconds=behaviour.job_seconds)
            failure = _failure(item, behaviour) if outcome == "Failed" else None
        job = Job(
            id=str(uuid.uuid4()), item=item, start=now, end=end, stamped=stamped, outcome=outcome,
            activity_id=activity_id,
            backup_type=backup_type, failure=failure,
        )
        self.jobs[job.id] = job
        self._by_vault.setdefault(item.vault, []).append(job)
        self._by_item.setdefault(item.id, []).append(job)
        return job

    def operation(self, item: Item, operation_id: str) -> Operation | None:
        operation = self.operations.get(operation_id.lower())
        return operation if operation is not None and operation.item.id == item.id else None

    def job(self, vault: Vault, job_id: str) -> Job | None:
        job = self.jobs.get(job_id.lower())
        return job if job is not None and job.item.vault == vault else None

    def jobs_in_vault(self, vault: Vault) -> list[Job]:
        """Newest first: jobs are created in emulated-time order, which never runs backwards."""
        return self._by_vault.get(vault, [])[::-1]

    def last_finished_job(self, item: Item, now: datetime) -> Job | None:
        done = [j for j in self._by_item.get(item.id, []) if j.finished(now)]
        return max(done, key=lambda j: j.end, default=None)
