"""ARM resource ids, parsed once into typed values: above all the virtual machine a request names.

An id is ``/subscriptions/{id}[/resourceGroups/{rg}][/providers/{namespace}/{type}/{name}…]``,
where a resource may itself be the scope of another provider's (``…/virtualMachines/vm1/providers/
Microsoft.Authorization/locks/l1``). It is read segment by segment, every segment checked by the
same rules as any name (no ``/ \\ ? # %``, control characters, ``.`` or ``..``): whatever passes
becomes one encoded path segment and can neither climb nor smuggle a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.armid import encode_segment, validate_name
from shared.errors import RequestRejected

__all__ = ["VIRTUAL_MACHINES", "ResourceId", "VirtualMachineRef"]

VIRTUAL_MACHINES = "Microsoft.Compute/virtualMachines"

_MAX_ID_LENGTH = 2048
_NAMESPACE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+$")
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# Azure's rule for VM names (Linux allows 64, Windows 15): letters, digits, '_', '.', '-'; a letter or
# digit first; a letter, digit or '_' last.
_VM_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?$")
_VM_SHAPE = "/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"

Provider = tuple[str, tuple[tuple[str, str], ...]]
"""A provider namespace and the (type, name) pairs under it, outermost first."""


@dataclass(frozen=True)
class ResourceId:
    """Any ARM resource id; the names are checked on construction by ``parse``."""

    subscription_id: str
    resource_group: str | None
    providers: tuple[Provider, ...]

    @classmethod
    def parse(cls, value: object, field_name: str) -> ResourceId:
        """``value`` as a resource id, or ``RequestRejected`` naming ``field_name`` and what is wrong."""
        if not isinstance(value, str):
            raise RequestRejected(field_name, "must be a string")
        text = value.strip()
        if len(text) > _MAX_ID_LENGTH:
            raise RequestRejected(field_name, f"must be at most {_MAX_ID_LENGTH} characters")
        if not text.startswith("/"):
            raise RequestRejected(field_name, f"must be an ARM resource id such as {_VM_SHAPE}")
        segments = text[1:].split("/")
        if "" in segments:
            raise RequestRejected(field_name, "must not hold empty segments ('//' or a trailing '/')")
        for segment in segments:
            _checked(field_name, "name", segment, "a segment")
        if len(segments) < 2 or segments[0].lower() != "subscriptions":
            raise RequestRejected(field_name, f"must start with /subscriptions/{{id}} ({_VM_SHAPE})")
        subscription = _checked(field_name, "subscriptionId", segments[1], "the subscription").lower()
        rest = segments[2:]
        group = None
        if rest and rest[0].lower() == "resourcegroups":
            if len(rest) < 2:
                raise RequestRejected(field_name, "names no resource group after 'resourceGroups'")
            group = _checked(field_name, "resourceGroupName", rest[1], "the resource group")
            rest = rest[2:]
        return cls(subscription, group, _providers(field_name, rest))

    @property
    def resource_type(self) -> str:
        """``Microsoft.Compute/virtualMachines`` and the like; a child's type names its parents' too."""
        if not self.providers:
            return "Microsoft.Resources/resourceGroups" if self.resource_group else "Microsoft.Resources/subscriptions"
        namespace, pairs = self.providers[-1]
        return "/".join((namespace, *(kind for kind, _ in pairs)))

    def is_under(self, namespace: str) -> bool:
        """Whether any part of the id belongs to provider ``namespace`` (compared case-insensitively)."""
        return any(own.lower() == namespace.lower() for own, _ in self.providers)

    @property
    def name(self) -> str:
        """The resource's own name: the last one in the id."""
        if self.providers:
            return self.providers[-1][1][-1][1]
        return self.resource_group or self.subscription_id

    def is_a(self, resource_type: str) -> bool:
        """Whether this is a top-level resource of ``resource_type`` in a resource group (not a child of
        one, nor a resource scoped to another)."""
        return (
            self.resource_group is not None and len(self.providers) == 1
            and self.resource_type.lower() == resource_type.lower()
        )

    @property
    def is_virtual_machine(self) -> bool:
        return self.is_a(VIRTUAL_MACHINES)


@dataclass(frozen=True)
class VirtualMachineRef:
    """A virtual machine: what ``resourceId`` in a request and the subject of an ARM event name."""

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def parse(cls, value: object, field_name: str = "resourceId") -> VirtualMachineRef:
        resource = ResourceId.parse(value, field_name)
        if not resource.is_virtual_machine:
            kind = resource.resource_type
            raise RequestRejected(field_name, f"must name a virtual machine ({_VM_SHAPE}), not a {kind}")
        return cls.of(resource, field_name)

    @classmethod
    def of(cls, resource: ResourceId, field_name: str = "resourceId") -> VirtualMachineRef:
        """The VM ``resource`` names; ``resource.is_virtual_machine`` must hold."""
        name = resource.name
        if resource.resource_group is None or not _VM_NAME.match(name):
            raise RequestRejected(
                field_name, "the VM name must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        return cls(resource.subscription_id, resource.resource_group, name)

    @property
    def id(self) -> str:
        """The id as Azure spells it, whatever the casing it was given in."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.name}"
        )

    @property
    def path(self) -> str:
        """The VM's URL path, each name one encoded segment."""
        return (
            f"/subscriptions/{encode_segment(self.subscription_id)}/resourceGroups/{encode_segment(self.resource_group)}"
            f"/providers/Microsoft.Compute/virtualMachines/{encode_segment(self.name)}"
        )

    @property
    def label(self) -> str:
        return f"{self.resource_group}/{self.name}"


def _providers(field_name: str, segments: list[str]) -> tuple[Provider, ...]:
    providers: list[Provider] = []
    index = 0
    while index < len(segments):
        if segments[index].lower() != "providers" or index + 1 >= len(segments):
            raise RequestRejected(field_name, f"is not a resource id ({_VM_SHAPE})")
        namespace = segments[index + 1]
        if not _NAMESPACE.match(namespace):
            raise RequestRejected(field_name, f"{namespace!r} is not a resource provider namespace")
        index += 2
        pairs: list[tuple[str, str]] = []
        while index < len(segments) and segments[index].lower() != "providers":
            if index + 1 >= len(segments) or not _TYPE.match(segments[index]):
                raise RequestRejected(field_name, f"is not a resource id ({_VM_SHAPE})")
            pairs.append((segments[index], segments[index + 1]))
            index += 2
        if not pairs:
            raise RequestRejected(field_name, f"names no resource under provider {namespace}")
        providers.append((namespace, tuple(pairs)))
    return tuple(providers)


def _checked(field_name: str, rule: str, value: str, what: str) -> str:
    """``value`` by the rule ``armid`` keeps for ``rule``, refused under ``field_name``."""
    try:
        return validate_name(rule, value)
    except RequestRejected as exc:
        raise RequestRejected(field_name, f"{what} {exc.reason}") from None
