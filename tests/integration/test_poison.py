"""A message whose function raises is tried maxDequeueCount times, then parked in <queue>-poison as it was sent.

The follow-up queue is named ``Bad_Queue`` for a host that runs only trigger_backup: Storage refuses
the name, so the follow-up send fails (``QueueUnavailable``), the only failure the app raises on.
The retry of a redelivered request must not trigger a second backup: it lists the vault's jobs and
adopts the one the first try started.
"""

from __future__ import annotations

import re

import pytest

from devtools.funchost.processes import wait_until
from tests.integration.conftest import (
    APP_TIMING,
    FAST_POLLING,
    RETRY_AT_ONCE,
    AppQueues,
    Suite,
    item_id,
    receive_all,
    request_text,
    unique,
    vm_names,
)

pytestmark = pytest.mark.integration

MAX_DEQUEUE_COUNT = 5  # host.json


def test_a_request_whose_follow_up_cannot_be_queued_lands_in_poison_after_five_tries(suite: Suite) -> None:
    prefix = unique("it-poison")
    queues = AppQueues(f"{prefix}-requests", "Bad_Queue", f"{prefix}-results")
    poison = suite.queue(f"{queues.requests}-poison")
    names = vm_names("vault-it", "poison")
    text = request_text(names, unique("poison"))
    settings = {**APP_TIMING, **FAST_POLLING, **RETRY_AT_ONCE}

    with suite.extra_host("poison", queues, env=settings, functions="trigger_backup") as host:
        message_id = suite.send(text, queues)
        parked = wait_for_messages(suite, poison.queue_name)
        log = host.log_path.read_text(encoding="utf-8")

    assert parked == [text]
    executed = re.findall(rf"Executed trigger_backup message={message_id} dequeue=(\d) outcome=(\w+)", log)
    assert executed == [(str(n), "Failed") for n in range(1, MAX_DEQUEUE_COUNT)] + [
        (str(MAX_DEQUEUE_COUNT), "Poisoned")
    ]
    assert log.count("QueueUnavailable: cannot send to queue 'Bad_Queue'") == MAX_DEQUEUE_COUNT
    assert suite.queue(queues.requests).peek_messages(max_messages=1) == []
    assert suite.queue(queues.results).peek_messages(max_messages=1) == []

    # One backup only, and one call to ARM: the first try recorded the POST's answer in the
    # ledger before the send failed; each later try only sent the recorded follow-up again.
    stats = suite.admin.stats()
    assert stats["triggers_by_item"] == {item_id(names): 1}
    kinds = [entry["kind"] for entry in suite.admin.requests() if entry["kind"] != "token"]
    assert kinds == ["trigger"]


def wait_for_messages(suite: Suite, queue_name: str, timeout: float = 30) -> list[str]:
    found: list[str] = []

    def arrived() -> list[str] | None:
        found.extend(receive_all(suite.queue(queue_name)))
        return found or None

    return wait_until(arrived, timeout=timeout, what=f"a message on {queue_name}", interval=0.1)
