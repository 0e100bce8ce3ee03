"""The rule of ``Phase.RESOLVE``: what a Backup Status - Get answer means for a request by resource id.

Pure: a follow-up, the answer and the time in; a ``backup.Decision`` out. A protected VM becomes
an ordinary request in ``Phase.TRIGGER``, checked against the allow-lists like any other, and the
trigger follows as a step of its own in the same invocation (everything that guards a trigger,
guards this one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.backup import Decision, Finish
from shared.errors import PermanentError, RequestRejected
from shared.followup import FollowUp, Phase
from shared.messages import check_allowed
from shared.results import ResultStatus
from shared.settings import Settings
from shared.targeting import BackupStatus, resolve

__all__ = ["Proceed", "after_backup_status"]


@dataclass(frozen=True)
class Proceed:
    """Go on with the next step in this invocation: the item is found, so trigger it now.

    Not a queued follow-up: a redelivered request then resolves and looks before posting again,
    exactly as a request by names does, and no second follow-up can race the first.
    """

    follow_up: FollowUp


def after_backup_status(
    follow_up: FollowUp, location: str, status: BackupStatus, now: datetime, settings: Settings
) -> Decision | Proceed:
    target = follow_up.target
    if target is None:
        raise ValueError("only a follow-up with a target is resolved")
    try:
        request = resolve(target, location, status)
    except PermanentError as exc:
        return Finish(ResultStatus.FAILED, follow_up.advance(last_error=exc.info), error=exc.info)
    try:
        check_allowed(request.item, settings)
    except RequestRejected as exc:
        # Nothing was triggered: a Rejected result that names the item it refused.
        return Finish(ResultStatus.REJECTED, follow_up.advance(request=request), error=exc.info)
    return Proceed(
        follow_up.enter(Phase.TRIGGER, now, request=request, raw_message=None, raw_message_truncated=False)
    )
