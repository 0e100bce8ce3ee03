"""Drives trigger_backup and poll_status the way the host and the queues would, one message at a time.

``App`` wires a real ``Services`` (settings from a test environment, the real ``ArmClient`` on a
``FakeTransport``, a ``RecordingSender``, a ``Clock``) and installs it with ``runtime.override``,
so each function's ``main`` runs exactly as the worker calls it: a ``QueueMessage`` in, a
``func.Out[str]`` to set. ``App.run`` follows the queue: request -> trigger_backup -> follow-up
(delay recorded, clock advanced by it) -> poll_status -> ... until one result is written.

Replies are built from the official REST examples in tests/fixtures/azure-rest-api-examples.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
import azure.functions.queue as func_queue
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

import poll_status
import trigger_backup
from shared import runtime
from shared.arm import ArmClient
from shared.settings import Settings
from shared.workflow import Services
from tests.fakes import (
    ARM,
    FAKE_TOKEN,
    Clock,
    FakeCredential,
    FakeTransport,
    RecordingSender,
    Reply,
    SentMessage,
    env,
    headers_of,
    load_example,
    session_with,
)

ROOT = Path(__file__).resolve().parents[2]
RESULT_SCHEMA = ROOT / "schemas" / "backup-result.schema.json"
REQUEST_SCHEMA = ROOT / "schemas" / "backup-request.schema.json"

Main = Callable[[func.QueueMessage, func.Out[str]], None]

# The official examples: the item of TriggerBackup_Post.json, and its answers.
TRIGGER_EXAMPLE = load_example("TriggerBackup_Post.json")
OPERATION_EXAMPLE = load_example("ProtectedItemOperationStatus.json")
JOB_EXAMPLE = load_example("GetJobDetails.json")
JOB_LIST_EXAMPLE = load_example("ListJobs.json")
EXAMPLE_JOB_ID = OPERATION_EXAMPLE["responses"]["200"]["body"]["properties"]["jobId"]

SUBSCRIPTION = TRIGGER_EXAMPLE["parameters"]["subscriptionId"]
VM_NAMES: dict[str, str] = {
    name: TRIGGER_EXAMPLE["parameters"][name]
    for name in ("subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName",
                 "protectedItemName")
}
VAULT_PATH = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{VM_NAMES['resourceGroupName']}"
    f"/providers/Microsoft.RecoveryServices/vaults/{VM_NAMES['vaultName']}"
)

POST_BACKUP = r"/backup\?"
OPERATION_STATUS = r"/operationsStatus/"
OPERATION_RESULT = r"/operationResults/"
JOB_GET = r"/backupJobs/[^/?]+\?"
JOB_LIST = r"/backupJobs\?"


# --- messages -------------------------------------------------------------------------------------


class OutCapture(func.Out[str]):
    """A ``func.Out[str]`` that keeps every value set, so a second ``set`` is visible."""

    def __init__(self) -> None:
        self.values: list[str] = []

    def set(self, val: str) -> None:
        self.values.append(val)

    def get(self) -> str:
        if not self.values:
            raise LookupError("nothing was set")
        return self.values[-1]


def queue_message(
    body: str | bytes, *, message_id: str, dequeue_count: int, insertion_time: datetime
) -> func.QueueMessage:
    """A message as the worker builds it from the trigger's metadata."""
    message: func.QueueMessage = func_queue.QueueMessage(  # type: ignore[no-untyped-call]
        id=message_id,
        body=body,
        dequeue_count=dequeue_count,
        insertion_time=insertion_time,
        expiration_time=insertion_time + timedelta(days=7),
        time_next_visible=insertion_time + timedelta(seconds=30),
        pop_receipt="pop-" + message_id,
    )
    return message


def as_base64(document: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def as_event_grid(document: dict[str, Any], event_id: str = "eg-event-1") -> str:
    return json.dumps([{
        "id": event_id,
        "eventType": "Contoso.Backup.Requested",
        "subject": "backups/vm",
        "eventTime": "2026-11-26T11:59:58Z",
        "dataVersion": "1.0",
        "data": document,
    }])


def as_cloud_event(document: dict[str, Any], event_id: str = "ce-event-1") -> str:
    return json.dumps({
        "specversion": "1.0",
        "id": event_id,
        "source": "/contoso/backups",
        "type": "Contoso.Backup.Requested",
        "datacontenttype": "application/json",
        "data": document,
    })


# --- ARM replies from the official examples --------------------------------------------------------


def accepted(*, retry_after: int | None = 60, async_operation: bool = True, location: bool = True,
             urls: dict[str, str] | None = None) -> Reply:
    """TriggerBackup_Post's 202, optionally without some of its headers or with other URLs."""
    headers = headers_of(TRIGGER_EXAMPLE, "202")
    if not async_operation:
        del headers["Azure-AsyncOperation"]
    if not location:
        del headers["Location"]
    if retry_after is None:
        del headers["Retry-After"]
    else:
        headers["Retry-After"] = str(retry_after)
    headers.update(urls or {})
    headers.setdefault("x-ms-request-id", "post-request-id")
    return Reply(202, headers=headers)


def operation(status: str, *, error: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Reply:
    """ProtectedItemOperationStatus with another status; only a success names the job."""
    body = copy.deepcopy(OPERATION_EXAMPLE["responses"]["200"]["body"])
    body["status"] = status
    if status != "Succeeded":
        body.pop("properties", None)
    if status == "InProgress":
        body.pop("endTime", None)
    if error is not None:
        body["error"] = error
    return Reply(200, body, headers=dict(headers or {}))


def job(status: str, *, headers: dict[str, str] | None = None, **properties: Any) -> Reply:
    """GetJobDetails with its status (and any other properties) changed."""
    body = copy.deepcopy(JOB_EXAMPLE["responses"]["200"]["body"])
    body["properties"]["status"] = status
    if status not in {"InProgress", "Cancelling"}:
        body["properties"]["endTime"] = "2017-08-03T05:41:07.014604Z"
    body["properties"].update(properties)
    return Reply(200, body, headers=dict(headers or {}))


def job_list(*jobs: dict[str, Any]) -> Reply:
    """ListJobs with its jobs replaced."""
    body = copy.deepcopy(JOB_LIST_EXAMPLE["responses"]["200"]["body"])
    body["value"] = list(jobs)
    return Reply(200, body)


def listed_job(name: str, *, friendly_name: str, start_time: str, operation: str = "Backup") -> dict[str, Any]:
    """One entry of ListJobs' value, renamed and re-timed."""
    entry: dict[str, Any] = copy.deepcopy(JOB_LIST_EXAMPLE["responses"]["200"]["body"]["value"][0])
    entry["name"] = name
    entry["id"] = entry["id"].rsplit("/", 1)[0] + "/" + name
    entry["properties"].update(entityFriendlyName=friendly_name, startTime=start_time, operation=operation)
    return entry


def cloud_error(status: int, code: str, message: str, *, request_id: str = "arm-request-1",
                retry_after: str | None = None, **extra: Any) -> Reply:
    headers = {"x-ms-request-id": request_id, "x-ms-correlation-request-id": f"corr-{request_id}"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(status, {"error": {"code": code, "message": message, **extra}}, headers=headers)


def script_success(transport: FakeTransport) -> FakeTransport:
    """The happy path: 202, operation InProgress then Succeeded, job InProgress then Completed."""
    return (
        transport.on("POST", POST_BACKUP, accepted())
        .on("GET", OPERATION_STATUS, operation("InProgress"), operation("Succeeded"))
        .on("GET", JOB_GET, job("InProgress"), job("Completed"))
    )


# --- schema -----------------------------------------------------------------------------------------


def schema_errors(schema_path: Path, document: object) -> list[str]:
    """What a published schema says is wrong with ``document``; a missing schema is an error, not a pass."""
    assert schema_path.is_file(), f"the published schema {schema_path.relative_to(ROOT)} is missing"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]


def check_result_schema(document: dict[str, Any]) -> None:
    """Validate against schemas/backup-result.schema.json."""
    errors = schema_errors(RESULT_SCHEMA, document)
    assert not errors, errors


def require_result_schema() -> dict[str, Any]:
    assert RESULT_SCHEMA.is_file(), f"the published schema {RESULT_SCHEMA.relative_to(ROOT)} is missing"
    schema: dict[str, Any] = json.loads(RESULT_SCHEMA.read_text(encoding="utf-8"))
    return schema


# --- the app ------------------------------------------------------------------------------------------


@dataclass
class Invocation:
    function: str
    message: func.QueueMessage
    result: str | None
    follow_ups: list[SentMessage] = field(default_factory=list)


class App:
    """Both functions behind one set of fakes; ``run`` follows a request to its one result."""

    def __init__(self, *, credential: FakeCredential | None = None, **settings: str) -> None:
        self.clock = Clock()
        self.transport = FakeTransport()
        self.sender = RecordingSender()
        self.credential = credential or FakeCredential()
        self.settings = Settings.from_environment(env(**settings))
        self.services = Services(
            settings=self.settings,
            arm=ArmClient(self.settings, self.credential, session_with(self.transport), self.clock),
            sender=self.sender,
            clock=self.clock,
            rng=random.Random(20261126),
        )
        self.invocations: list[Invocation] = []
        self.delays: list[int] = []
        self.follow_ups: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def deliver(
        self, main: Main, body: str | bytes, *, dequeue_count: int = 1, insertion_time: datetime | None = None
    ) -> str | None:
        """One invocation of ``main``; it must write a result or queue one follow-up, never both."""
        message = queue_message(
            body, message_id=f"message-{next(self._ids)}", dequeue_count=dequeue_count,
            insertion_time=insertion_time or self.clock(),
        )
        out = OutCapture()
        already_sent = len(self.sender.messages)
        with runtime.override(self.services):
            main(message, out)
        sent = self.sender.messages[already_sent:]
        assert len(out.values) <= 1, f"result set {len(out.values)} times in one invocation"
        result = out.values[0] if out.values else None
        assert (result is None) == (len(sent) == 1), f"expected a result or one follow-up, got {out.values} {sent}"
        self.invocations.append(Invocation(main.__module__, message, result, list(sent)))
        return result

    def run(
        self, body: str | bytes, *, dequeue_count: int = 1, insertion_time: datetime | None = None, max_steps: int = 40
    ) -> dict[str, Any]:
        """Request -> trigger_backup -> follow-ups through poll_status -> the one result."""
        result = self.deliver(trigger_backup.main, body, dequeue_count=dequeue_count, insertion_time=insertion_time)
        while result is None:
            assert len(self.follow_ups) < max_steps, f"no result after {max_steps} follow-ups: {self.delays}"
            follow_up = self.sender.take()
            assert follow_up.queue == self.settings.status_queue
            assert follow_up.text.startswith("{"), "follow-ups are plain JSON"
            self.delays.append(follow_up.delay_seconds)
            self.follow_ups.append(json.loads(follow_up.text))
            sent_at = self.clock()
            self.clock.advance(follow_up.delay_seconds)
            result = self.deliver(poll_status.main, follow_up.text, insertion_time=sent_at)
        assert self.sender.messages == [], "a follow-up is still queued after the result"
        document: dict[str, Any] = json.loads(result)
        check_result_schema(document)
        self._check_correlation(document)
        self.check_http_hygiene()
        return document

    def _check_correlation(self, result: dict[str, Any]) -> None:
        correlation_id = result["correlationId"]
        assert isinstance(correlation_id, str) and correlation_id
        for follow_up in self.follow_ups:
            assert follow_up["correlationId"] == correlation_id
            # While resolving a resource id the follow-up names its target; afterwards its request.
            assert (follow_up.get("request") or follow_up["target"])["correlationId"] == correlation_id

    def check_http_hygiene(self) -> None:
        """Every call: https to the ARM host under the subscription, bearer token, a fresh client request id."""
        client_ids = []
        arm_host = urlsplit(ARM).netloc
        for sent in self.transport.sent:
            parts = urlsplit(sent.url)
            assert (parts.scheme, parts.netloc) == ("https", arm_host), sent.url
            assert parts.path.lower().startswith(f"/subscriptions/{SUBSCRIPTION}/"), sent.url
            assert sent.headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
            client_ids.append(sent.headers["x-ms-client-request-id"])
        assert len(set(client_ids)) == len(client_ids)

    @property
    def posts(self) -> list[str]:
        return [sent.url for sent in self.transport.calls("POST")]
