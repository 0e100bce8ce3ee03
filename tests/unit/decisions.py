"""Reading the rules' decisions in tests: a Continue or a Finish, and a phase entered afresh."""

from __future__ import annotations

from datetime import datetime

from shared.backup import Continue, Decision, Finish
from shared.followup import FollowUp, Phase


def continued(decision: Decision) -> Continue:
    assert isinstance(decision, Continue), decision
    return decision


def ended(decision: Decision) -> Finish:
    assert isinstance(decision, Finish), decision
    return decision


def assert_entered(decision: Decision, phase: Phase, before: FollowUp, now: datetime, delay: int) -> FollowUp:
    """``phase`` begun at ``now`` after ``delay`` seconds: counters, deadline and what was waited for reset;
    the request, its age and its ledger step kept."""
    following = continued(decision)
    assert following.delay_seconds == delay
    after = following.follow_up
    assert (after.phase, after.phase_started_at) == (phase, now)
    assert (after.attempt, after.polls, after.throttled, after.last_error, after.deadline) == (0, 0, 0, None, None)
    assert (after.waiting_for_key, after.waiting_for_job, after.joining) == (None, None, False)
    assert (after.request, after.requested_at, after.step) == (before.request, before.requested_at, before.step)
    return after
