"""What the chaos scenario found, replayed one step at a time: a request run twice after a host died.

The queues deliver at least once. A host killed after an invocation queued its follow-up but before
the request message was deleted runs the request again; the app then has two chains for one request.
The design copes when both chains look before they POST; this pins the case where one does not.
"""

from __future__ import annotations

import json
from datetime import timedelta

from shared.followup import FollowUp, Phase
from shared.workflow import Delivery, handle_follow_up, handle_request
from tests.fakes import FakeTransport, Reply
from tests.functions.harness import (
    JOB_LIST,
    POST_BACKUP,
    VM_NAMES,
    accepted,
    cloud_error,
    job_list,
    listed_job,
)
from tests.unit.builders import NOW, services

BUSY = cloud_error(400, "UserErrorBackupOperationInProgress", "Backup cannot be triggered: another is in progress.")


def test_a_retried_trigger_looks_for_the_job_a_redelivered_request_started() -> None:
    body = json.dumps({**VM_NAMES, "correlationId": "twice"}).encode()
    friendly = VM_NAMES["protectedItemName"].rsplit(";", 1)[-1]
    started = (NOW + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    transport = (
        FakeTransport()
        .on("POST", POST_BACKUP, Reply(429, headers={"Retry-After": "1"}), accepted(), BUSY)
        .on("GET", JOB_LIST, job_list(), job_list(listed_job("job-1", friendly_name=friendly, start_time=started)))
    )
    svc, sender, _ = services(transport)

    # 1. The first run is throttled and queues its retry; the host dies before deleting the request.
    assert handle_request(body, Delivery("req-1", 1, NOW), svc) is None
    retry = sender.take()
    assert FollowUp.from_document(json.loads(retry.text)).phase is Phase.TRIGGER
    # 2. The host runs the request again: it looks (nothing yet), triggers, and follows the operation.
    assert handle_request(body, Delivery("req-1", 2, NOW), svc) is None
    assert FollowUp.from_document(json.loads(sender.take().text)).phase is Phase.OPERATION
    # 3. The retry from step 1 comes due.
    outcome = handle_follow_up(retry.text.encode(), Delivery("fu-1", 1, NOW + timedelta(seconds=2)), svc)

    assert len(transport.calls("POST", POST_BACKUP)) == 2, "the retry triggered the item a second time"
    assert outcome is None, f"the retry ended the request while the backup runs: {outcome}"
