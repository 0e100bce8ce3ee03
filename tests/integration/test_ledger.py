"""The request ledger over real sockets: one trigger and one result per key, whatever the queues and hosts do.

Each scenario makes a duplicate happen for real (the host's own redelivery of a timed-out
invocation, a producer sending twice, a host SIGKILLed while its POST is on the wire, a copied
follow-up) and then reads what happened from the emulator's request log (how many POSTs reached
ARM, how many it accepted), from the results queue once nothing of the request is left in the
queues, and from the ledger table itself. The last two scenarios are the ledger's failure modes:
configured but unreachable (the request is poisoned, ARM never called) and turned off (at least
once, as before the ledger).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage

from devtools.azurite import connection_string, free_port
from devtools.funchost.processes import ManagedProcess, wait_until
from shared.ledger import Ledger, RequestRecord
from shared.ledger_table import ledger_store
from shared.settings import Settings
from tests.integration.conftest import (
    MAIN_QUEUES,
    RETRY_AT_ONCE,
    AppQueues,
    Results,
    Suite,
    item_id,
    request_text,
    unique,
    vm_names,
)
from tests.integration.test_poison import MAX_DEQUEUE_COUNT, wait_for_messages

pytestmark = pytest.mark.integration

POST = r"/backup\?"


# -- what the emulator, the queues, the host and the ledger saw -----------------------------------


def arm_requests(suite: Suite, kind: str) -> list[dict[str, Any]]:
    return [entry for entry in suite.admin.requests() if entry["kind"] == kind]


def accepted_triggers(suite: Suite, names: dict[str, str]) -> int:
    return int(suite.admin.stats()["triggers_by_item"].get(item_id(names), 0))


def all_results(suite: Suite, results: Results, queues: AppQueues, correlation_id: str) -> list[dict[str, Any]]:
    """Every result of the key, taken once no request or follow-up is left to send another."""
    suite.wait_until_idle(queues)
    results.poll()
    return results.by_id.get(correlation_id, [])


def ledger(suite: Suite) -> Ledger:
    store = ledger_store(Settings.from_environment(suite.stack.host_environment()))
    assert store is not None, "the suite's host runs with the ledger on"
    return Ledger(store)


def assert_recorded_and_sent(suite: Suite, result: dict[str, Any]) -> RequestRecord:
    """The ledger keeps the result that went out, marked sent."""
    record = ledger(suite).request(result["correlationId"])
    assert record is not None
    assert record.result is not None and json.loads(record.result) == result
    assert record.status == result["status"]
    assert record.result_sent is True
    assert record.pending is None and record.posting_since is None
    return record


def host_log(host: ManagedProcess) -> str:
    return host.log_path.read_text(encoding="utf-8")


def main_host_lines(suite: Suite, correlation_id: str) -> list[str]:
    text = suite.stack.log_path("host").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if f"[{correlation_id}]" in line]


def peek(queue: QueueClient) -> QueueMessage | None:
    """The first visible message, without taking it; None also while the queue does not exist yet."""
    try:
        found = queue.peek_messages(max_messages=1)
    except ResourceNotFoundError:
        return None
    return found[0] if found else None


def slow_post(suite: Suite, seconds: float) -> None:
    """The next trigger POST takes effect at once and is answered ``seconds`` later."""
    script = [{"method": "POST", "path": POST, "fault": "slow", "seconds": seconds}]
    suite.admin.configure({"faults": {"script": script}})


def wait_for_posts(suite: Suite, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    return wait_until(
        lambda: found if len(found := arm_requests(suite, "trigger")) >= count else None,
        timeout=timeout, what=f"{count} trigger POST(s) in the emulator's log",
    )


# -- one message, delivered twice -----------------------------------------------------------------


FUNCTION_TIMEOUT_SECONDS = 4
SLOW_POST_SECONDS = 12


def test_a_request_redelivered_while_its_first_delivery_still_waits_for_the_post_triggers_once(suite: Suite) -> None:
    """The host gives up on an invocation (functionTimeout) whose POST is still on the wire and delivers
    the message again at once: the second delivery looks for the job instead of posting, and the first,
    when its answer finally comes, finds the ledger moved on and sends nothing."""
    queues = AppQueues.with_prefix(unique("it-redelivered"))
    names = vm_names("vault-it", "ledger-redelivered")
    correlation_id = unique("redelivered")
    slow_post(suite, SLOW_POST_SECONDS)
    settings = {**RETRY_AT_ONCE, "AzureFunctionsJobHost__functionTimeout": f"00:00:0{FUNCTION_TIMEOUT_SECONDS}"}
    with suite.extra_host("redelivered", queues, env=settings) as host:
        message_id = suite.send(request_text(names, correlation_id), queues)
        results = suite.results(queues)
        result = results.one(correlation_id, timeout=60)
        timed_out = wait_until(
            lambda: re.search(
                rf"Executed trigger_backup message={message_id} dequeue=1 outcome=TimedOut .* invocation=(\S+)",
                host_log(host),
            ),
            timeout=10, what="the first invocation's timeout in the host log",
        ).group(1)
        # The timed-out invocation is still waiting for its POST's answer: let it end before counting.
        ended = (f"invocation {timed_out} failed", f"invocation {timed_out} finished after its timeout")
        wait_until(lambda: any(line in host_log(host) for line in ended) or None,
                   timeout=SLOW_POST_SECONDS + 10, what="the timed-out invocation to end")
        every_result = all_results(suite, results, queues, correlation_id)
        log = host_log(host)

    assert result["status"] == "Succeeded", result
    assert every_result == [result]
    assert re.search(rf"Executed trigger_backup message={message_id} dequeue=2 outcome=Succeeded", log)
    assert f"[{correlation_id}] finishing what an earlier delivery of step 0 left undone" in log
    # The late answer of the first POST came to a record another delivery had moved on.
    assert "the ledger record changed while posting" in log
    posts = arm_requests(suite, "trigger")
    assert [(entry["status"], entry["fault"]) for entry in posts] == [(202, "slow")]
    assert accepted_triggers(suite, names) == 1
    assert len(arm_requests(suite, "job_list")) == 1  # the second delivery looked instead of posting
    assert_recorded_and_sent(suite, result)


COPIES_AT_ONCE = 8


def test_the_same_request_sent_several_times_at_once_triggers_once_and_gets_one_result(suite: Suite) -> None:
    """All copies are on the queue before the host starts: its first receive takes them in one batch and
    runs them side by side, racing for the ledger record."""
    queues = AppQueues.with_prefix(unique("it-at-once"))
    names = vm_names("vault-it", "ledger-at-once")
    correlation_id = unique("at-once")
    text = request_text(names, correlation_id)
    message_ids = [suite.send(text, queues) for _ in range(COPIES_AT_ONCE)]
    with suite.extra_host("at-once", queues) as host:
        results = suite.results(queues)
        result = results.one(correlation_id, timeout=30)
        every_result = all_results(suite, results, queues, correlation_id)
        log = host_log(host)

    assert result["status"] == "Succeeded", result
    assert every_result == [result]
    assert len(arm_requests(suite, "trigger")) == 1
    assert accepted_triggers(suite, names) == 1
    assert all(f"Executed trigger_backup message={message_id} dequeue=1 outcome=Succeeded" in log
               for message_id in message_ids)
    assert log.count(f"[{correlation_id}] nothing to do") == COPIES_AT_ONCE - 1
    assert_recorded_and_sent(suite, result)


def test_the_same_request_sent_again_after_its_result_sends_nothing(suite: Suite) -> None:
    names = vm_names("vault-it", "ledger-after-result")
    correlation_id = unique("after-result")
    text = request_text(names, correlation_id)
    suite.send(text)
    results = suite.results()
    result = results.one(correlation_id, timeout=30)
    record = assert_recorded_and_sent(suite, result)
    calls = len(suite.admin.requests())

    suite.send(text)
    every_result = all_results(suite, results, MAIN_QUEUES, correlation_id)

    assert every_result == [result]
    assert len(suite.admin.requests()) == calls  # not even a look at ARM
    assert accepted_triggers(suite, names) == 1
    assert any("nothing to do: the request has its result already" in line
               for line in main_host_lines(suite, correlation_id))
    assert ledger(suite).request(correlation_id) == record  # not written again


# -- a host killed between the POST and the follow-up ---------------------------------------------


LEASE_SECONDS = 3


def test_a_host_killed_while_its_post_is_on_the_wire_gets_one_backup_and_one_result(suite: Suite) -> None:
    """SIGKILL once ARM has taken the POST and before its answer is back: nothing was recorded of the
    answer, so the redelivered request (after the killed host's lease ran out) lists the vault's jobs,
    adopts the one the POST started and follows it to the end."""
    queues = AppQueues.with_prefix(unique("it-killed"))
    names = vm_names("vault-it", "ledger-killed")
    correlation_id = unique("killed")
    slow_post(suite, 30)
    with suite.extra_host("killed", queues, args=["--lease-seconds", str(LEASE_SECONDS)]) as host:
        message_id = suite.send(request_text(names, correlation_id), queues)
        wait_for_posts(suite)
        suite.kill_and_restart(host, "killed")
        results = suite.results(queues)
        result = results.one(correlation_id, timeout=60)
        every_result = all_results(suite, results, queues, correlation_id)
        log = host_log(host)

    assert result["status"] == "Succeeded", result
    assert every_result == [result]
    posts = arm_requests(suite, "trigger")
    assert [(entry["status"], entry["fault"]) for entry in posts] == [(202, "slow")]
    assert accepted_triggers(suite, names) == 1
    assert len(arm_requests(suite, "job_list")) == 1
    # The killed host never reported the first delivery; the restarted one took the second.
    assert not re.search(rf"Executed trigger_backup message={message_id} dequeue=1", log)
    assert re.search(rf"Executed trigger_backup message={message_id} dequeue=2 outcome=Succeeded", log)
    record = assert_recorded_and_sent(suite, result)
    assert record.job_id == result["jobId"]


# -- a follow-up copied on the status queue -------------------------------------------------------


@pytest.mark.parametrize("phase", ["trigger", "operation"])
def test_a_copied_follow_up_causes_no_post_and_no_second_result(suite: Suite, phase: str) -> None:
    """A trigger-phase follow-up (after a 503 on the first POST) or an operation-phase one, peeked off the
    status queue and sent again: the two copies hold the same step, only one moves the request on."""
    queues = AppQueues.with_prefix(unique(f"it-copied-{phase}"))
    names = vm_names("vault-it", f"ledger-copied-{phase}")
    correlation_id = unique(f"copied-{phase}")
    if phase == "trigger":
        suite.admin.configure({"faults": {"script": [
            {"method": "POST", "path": POST, "fault": "503", "retry_after": 1}]}})
    # Only trigger_backup runs at first: the follow-up stays on the status queue to be copied.
    with suite.extra_host(f"copied-{phase}-trigger", queues, functions="trigger_backup"):
        suite.send(request_text(names, correlation_id), queues)
        status = suite.queue(queues.status)
        follow_up = wait_until(lambda: peek(status), timeout=30, what="the follow-up becoming visible")
        assert json.loads(follow_up.content)["phase"] == phase
        status.send_message(follow_up.content)
    with suite.extra_host(f"copied-{phase}", queues, functions="poll_status") as host:
        results = suite.results(queues)
        result = results.one(correlation_id, timeout=60)
        every_result = all_results(suite, results, queues, correlation_id)
        log = host_log(host)

    assert result["status"] == "Succeeded", result
    assert every_result == [result]
    assert accepted_triggers(suite, names) == 1
    posts = [entry["status"] for entry in arm_requests(suite, "trigger")]
    if phase == "trigger":
        # The refused POST, then one look and one POST from whichever copy held the step; the other none.
        assert posts == [503, 202]
        assert len(arm_requests(suite, "job_list")) == 1
    else:
        assert posts == [202]
    assert log.count(f"[{correlation_id}] nothing to do") == 1
    assert_recorded_and_sent(suite, result)


# -- the ledger unreachable, and turned off -------------------------------------------------------


def test_a_configured_ledger_that_cannot_be_reached_poisons_the_request_and_calls_no_arm(suite: Suite) -> None:
    queues = AppQueues.with_prefix(unique("it-ledger-down"))
    names = vm_names("vault-it", "ledger-down")
    text = request_text(names, unique("ledger-down"))
    closed = free_port()  # nothing listens there: the table endpoint refuses every connection
    storage = connection_string(suite.stack.azurite.port, table_port=closed)
    with suite.extra_host("ledger-down", queues, env={**RETRY_AT_ONCE, "AzureWebJobsStorage": storage}) as host:
        message_id = suite.send(text, queues)
        parked = wait_for_messages(suite, f"{queues.requests}-poison")
        log = host_log(host)

    assert parked == [text]
    executed = re.findall(rf"Executed trigger_backup message={message_id} dequeue=(\d) outcome=(\w+)", log)
    assert executed == [(str(n), "Failed") for n in range(1, MAX_DEQUEUE_COUNT)] + [
        (str(MAX_DEQUEUE_COUNT), "Poisoned")
    ]
    # The first delivery creates the record straight away; each redelivery reads it first.
    failures = re.findall(r"LedgerUnavailable: ledger table 'backupledger': (\w+) failed", log)
    assert failures == ["create"] + ["read"] * (MAX_DEQUEUE_COUNT - 1)
    assert suite.admin.requests() == []  # not a token, not a look, not a POST
    assert suite.queue(queues.results).peek_messages(max_messages=1) == []


LEDGER_OFF = {"BACKUP_LEDGER_TABLE": ""}


def test_with_the_ledger_off_a_request_still_succeeds_and_leaves_no_record(suite: Suite) -> None:
    queues = AppQueues.with_prefix(unique("it-ledger-off"))
    names = vm_names("vault-it", "ledger-off")
    correlation_id = unique("ledger-off")
    with suite.extra_host("ledger-off", queues, env=LEDGER_OFF):
        suite.send(request_text(names, correlation_id), queues)
        results = suite.results(queues)
        result = results.one(correlation_id, timeout=30)
        every_result = all_results(suite, results, queues, correlation_id)

    assert result["status"] == "Succeeded", result
    suite.check_schema(result)
    assert every_result == [result]
    assert accepted_triggers(suite, names) == 1
    assert ledger(suite).request(correlation_id) is None


def test_with_the_ledger_off_a_request_sent_twice_runs_twice(suite: Suite) -> None:
    """What the ledger buys, shown by its absence: the same two messages that the ledger turns into one
    backup and one result (above) are two backups and two results without it (README, "Ledger off")."""
    queues = AppQueues.with_prefix(unique("it-ledger-off-twice"))
    names = vm_names("vault-it", "ledger-off-twice")
    correlation_id = unique("ledger-off-twice")
    text = request_text(names, correlation_id)
    with suite.extra_host("ledger-off-twice", queues, env=LEDGER_OFF):
        suite.send(text, queues)
        suite.send(text, queues)
        results = suite.results(queues)

        def two_results() -> bool | None:
            results.poll()
            return True if len(results.by_id.get(correlation_id, [])) >= 2 else None

        wait_until(two_results, timeout=60, what="two results")
        every_result = all_results(suite, results, queues, correlation_id)

    assert [result["status"] for result in every_result] == ["Succeeded", "Succeeded"]
    assert accepted_triggers(suite, names) == 2
