"""Azure Resource Manager events from Event Grid: which ones ask for a backup, and of what.

A system topic of an Azure subscription or resource group publishes ``Microsoft.Resources.*``
events whose ``subject`` (and ``data.resourceUri``) is the resource id and whose
``data.operationName`` names the operation. A VM written (``ResourceWriteSuccess``) or acted on
(``ResourceActionSuccess``) asks for a backup of that VM. Every other ARM event is never acted on
and ends ``Rejected`` with ``EventIgnored``:

* deletions, failures and cancellations;
* anything of ``Microsoft.RecoveryServices``: this app's own triggers and Backup Status calls
  raise such events, and acting on them would loop;
* events about anything but a VM itself (its extensions, its disks, a lock scoped to it).

Custom events (any other type) are not ARM events: their ``data`` is the request as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.envelopes import Envelope
from shared.errors import RequestRejected
from shared.resourceid import ResourceId, VirtualMachineRef

__all__ = ["ACTED_ON", "EVENT_IGNORED", "ArmEvent"]

EVENT_IGNORED = "EventIgnored"
ACTED_ON = ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceActionSuccess")
_ARM_EVENT_PREFIX = "microsoft.resources."
_RECOVERY_SERVICES = "Microsoft.RecoveryServices"


@dataclass(frozen=True)
class ArmEvent:
    """The parts of an ARM event this app reads, as they arrived (nothing is trusted yet)."""

    event_type: str
    subject: str | None
    resource_uri: object
    operation_name: object

    @classmethod
    def of(cls, envelope: Envelope) -> ArmEvent | None:
        """The ARM event ``envelope`` carries, or None when it carries another kind of message."""
        event_type = envelope.event_type
        if event_type is None or not event_type.lower().startswith(_ARM_EVENT_PREFIX):
            return None
        data = envelope.document
        return cls(event_type, envelope.subject, data.get("resourceUri"), data.get("operationName"))

    def summary(self) -> dict[str, Any]:
        """What a result echoes of the event: its type, resource and operation, never its claims."""
        document = {"eventType": self.event_type, "subject": self.subject, "resourceUri": self.resource_uri,
                    "operationName": self.operation_name}
        return {key: value for key, value in document.items() if value is not None}

    def backup_request(self) -> dict[str, Any]:
        """The request the event makes: ``{"resourceId": the VM}``.

        ``RequestRejected`` with ``EventIgnored`` for an event not worth acting on, or with
        ``InvalidRequest`` when the event does not name its resource as an ARM id.
        """
        resource, field_name = self._resource()
        operation = self._operation()
        if resource.is_under(_RECOVERY_SERVICES) or operation.lower().startswith(_RECOVERY_SERVICES.lower() + "/"):
            raise _ignored(
                "data.operationName",
                f"{_shown(operation) or resource.resource_type} is a Recovery Services operation (this app's own "
                "triggers raise such events); acting on it would loop",
            )
        if self.event_type.lower() not in {acted.lower() for acted in ACTED_ON}:
            raise _ignored("eventType", f"{_shown(self.event_type)} is not acted on; only {' and '.join(ACTED_ON)} are")
        if operation.lower().endswith("/delete"):
            raise _ignored("data.operationName", f"{_shown(operation)} deletes the resource: nothing to back up")
        if not resource.is_virtual_machine:
            raise _ignored(field_name, f"the event is about a {resource.resource_type}, not a virtual machine")
        return {"resourceId": VirtualMachineRef.of(resource, field_name).id}

    def _resource(self) -> tuple[ResourceId, str]:
        uri = self.resource_uri
        if uri is None:
            if self.subject is None:
                raise RequestRejected("subject", "the ARM event names no resource (no subject, no data.resourceUri)")
            return ResourceId.parse(self.subject, "subject"), "subject"
        if not isinstance(uri, str):
            raise RequestRejected("data.resourceUri", "must be a string")
        if self.subject is not None and self.subject.strip().lower() != uri.strip().lower():
            raise RequestRejected("data.resourceUri", "names another resource than the event's subject")
        return ResourceId.parse(uri, "data.resourceUri"), "data.resourceUri"

    def _operation(self) -> str:
        operation = self.operation_name
        if operation is None:
            return ""
        if not isinstance(operation, str):
            raise RequestRejected("data.operationName", "must be a string")
        return operation.strip()


def _shown(text: str) -> str:
    # Event fields come from outside: a result quotes no more of them than a reader needs.
    return text if len(text) <= 200 else text[:200] + "…"


def _ignored(field_name: str, reason: str) -> RequestRejected:
    return RequestRejected(field_name, reason, code=EVENT_IGNORED)
