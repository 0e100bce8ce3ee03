"""ARM identity of a protected item: name rules, id parsing, and safe URL paths.

A protected item is parsed once into a ``ProtectedItemRef``; nothing else splits ARM ids.
Every name becomes exactly one percent-encoded path segment (``;`` kept, as Azure spells
container and item names), so no input can add, remove or climb path segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, unquote, urlsplit

from shared.errors import ErrorInfo, RequestRejected, UntrustedUrl

__all__ = ["ProtectedItemRef", "VaultRef", "encode_segment", "ensure_followable", "is_valid_name", "validate_name"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Resource groups: letters (any script), digits, underscore, hyphen, period, parentheses; no trailing period.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")
# Recovery Services vaults: 2-50 characters, a letter first, then letters, digits and hyphens.
_VAULT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,49}$")
_FABRIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Container and item names carry ';'-separated parts ("VM;iaasvmcontainerv2;rg;vm"); characters that
# could change a URL's structure or smuggle an encoding are refused outright rather than escaped.
_FORBIDDEN_IN_NAME = set('/\\?#%"<>|*&:@+') | {chr(code) for code in range(32)} | {"\x7f"}
_MAX_NAME_LENGTH = 260

_ITEM_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.RecoveryServices/vaults/(?P<vault>[^/]+)"
    r"/backupFabrics/(?P<fabric>[^/]+)/protectionContainers/(?P<container>[^/]+)"
    r"/protectedItems/(?P<item>[^/]+)/?$",
    re.IGNORECASE,
)


def encode_segment(name: str) -> str:
    """One path segment: everything but unreserved characters and ';' percent-encoded."""
    return quote(name, safe=";")


def is_valid_name(value: str) -> bool:
    """Whether ``value`` passes the rules for container, item and job names."""
    try:
        validate_name("name", value)
    except RequestRejected:
        return False
    return True


def validate_name(field_name: str, value: object) -> str:
    """The value of one name field, or ``RequestRejected`` naming the field and the rule broken."""
    if not isinstance(value, str) or not value.strip():
        raise RequestRejected(field_name, "must be a non-empty string")
    if value != value.strip():
        raise RequestRejected(field_name, "must not start or end with white space")
    rule = _RULES.get(field_name)
    if rule is not None:
        pattern, description = rule
        if not pattern.match(value) or (field_name == "resourceGroupName" and value.endswith(".")):
            raise RequestRejected(field_name, description)
        return value
    if len(value) > _MAX_NAME_LENGTH:
        raise RequestRejected(field_name, f"must be at most {_MAX_NAME_LENGTH} characters")
    bad = sorted(set(value) & _FORBIDDEN_IN_NAME)
    if bad:
        raise RequestRejected(field_name, f"must not contain {', '.join(repr(char) for char in bad)}")
    if not _is_utf8_encodable(value):
        raise RequestRejected(field_name, "must be valid Unicode text (it holds a lone surrogate)")
    if value in {".", ".."} or any(part in {".", ".."} for part in value.split(";")):
        raise RequestRejected(field_name, "must not be '.' or '..'")
    return value


_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "subscriptionId": (_GUID, "must be a subscription GUID"),
    "resourceGroupName": (
        _RESOURCE_GROUP,
        "must be 1-90 letters, digits, '_', '-', '.', '(' or ')' and not end with '.'",
    ),
    "vaultName": (_VAULT, "must be 2-50 letters, digits or hyphens, starting with a letter"),
    "fabricName": (_FABRIC, "must be letters, digits, '_', '-' or '.'"),
}


@dataclass(frozen=True)
class VaultRef:
    """A Recovery Services vault; the names are validated on construction by ``of``."""

    subscription_id: str
    resource_group: str
    vault: str

    @classmethod
    def of(cls, subscription_id: object, resource_group: object, vault: object) -> VaultRef:
        return cls(
            subscription_id=validate_name("subscriptionId", subscription_id).lower(),
            resource_group=validate_name("resourceGroupName", resource_group),
            vault=validate_name("vaultName", vault),
        )

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.RecoveryServices/vaults/{self.vault}"
        )

    @property
    def path(self) -> str:
        """The vault's URL path, each name one encoded segment."""
        return (
            f"/subscriptions/{encode_segment(self.subscription_id)}"
            f"/resourceGroups/{encode_segment(self.resource_group)}"
            f"/providers/Microsoft.RecoveryServices/vaults/{encode_segment(self.vault)}"
        )

    def to_json(self) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id, "resourceGroupName": self.resource_group, "vaultName": self.vault,
        }


@dataclass(frozen=True)
class ProtectedItemRef:
    """Where a backup item lives; the names are validated on construction by ``of``."""

    subscription_id: str
    resource_group: str
    vault: str
    fabric: str
    container: str
    item: str

    @classmethod
    def of(
        cls, subscription_id: object, resource_group: object, vault: object,
        fabric: object, container: object, item: object,
    ) -> ProtectedItemRef:
        return cls(
            subscription_id=validate_name("subscriptionId", subscription_id).lower(),
            resource_group=validate_name("resourceGroupName", resource_group),
            vault=validate_name("vaultName", vault),
            fabric=validate_name("fabricName", fabric),
            container=validate_name("containerName", container),
            item=validate_name("protectedItemName", item),
        )

    @classmethod
    def parse(cls, item_id: object) -> ProtectedItemRef:
        """A full ARM id of a protected item, exactly as Azure prints it."""
        if not isinstance(item_id, str):
            raise RequestRejected("protectedItemId", "must be a string")
        match = _ITEM_ID.match(item_id.strip())
        if match is None:
            raise RequestRejected(
                "protectedItemId",
                "must look like /subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices"
                "/vaults/{vault}/backupFabrics/{fabric}/protectionContainers/{container}/protectedItems/{item}",
            )
        return cls.of(*match.group("sub", "rg", "vault", "fabric", "container", "item"))

    @property
    def id(self) -> str:
        return (
            f"{self.vault_id}/backupFabrics/{self.fabric}"
            f"/protectionContainers/{self.container}/protectedItems/{self.item}"
        )

    @property
    def vault_ref(self) -> VaultRef:
        return VaultRef(self.subscription_id, self.resource_group, self.vault)

    @property
    def vault_id(self) -> str:
        return self.vault_ref.id

    @property
    def vault_path(self) -> str:
        """The vault's URL path, each name one encoded segment."""
        return self.vault_ref.path

    @property
    def item_path(self) -> str:
        return (
            f"{self.vault_path}/backupFabrics/{encode_segment(self.fabric)}"
            f"/protectionContainers/{encode_segment(self.container)}"
            f"/protectedItems/{encode_segment(self.item)}"
        )

    @property
    def label(self) -> str:
        """Short enough for a log line; the correlation id tells requests apart."""
        return f"{self.vault}/{self.item}"

    @property
    def friendly_name(self) -> str:
        """The last ';' part of the item name: what jobs call ``entityFriendlyName``."""
        return self.item.rsplit(";", 1)[-1]

    def to_json(self) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroupName": self.resource_group,
            "vaultName": self.vault,
            "fabricName": self.fabric,
            "containerName": self.container,
            "protectedItemName": self.item,
        }


def ensure_followable(url: object, *, arm_endpoint: str, subscription_id: str) -> str:
    """``url`` if a bearer token may be sent to it; else ``UntrustedUrl``.

    It must be https on exactly the configured ARM host and port, carry no user info, stay
    under the request's own subscription, and hold no '.' or '..' segment (even encoded).
    """
    if not isinstance(url, str) or not url:
        raise UntrustedUrl(_untrusted("the URL is missing", url))
    # urlsplit drops tabs and line breaks and folds some Unicode; ARM's URLs are printable ASCII.
    if not all("!" <= char <= "~" for char in url):
        raise UntrustedUrl(_untrusted("only printable ASCII URLs are followed", url))
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UntrustedUrl(_untrusted("the URL cannot be parsed", url)) from None
    expected = urlsplit(arm_endpoint)
    if parts.scheme.lower() != "https":
        raise UntrustedUrl(_untrusted("only https URLs are followed", url))
    origin = _origin(parts)
    if origin is None or origin != _origin(expected):
        raise UntrustedUrl(_untrusted(f"only URLs on {expected.netloc} are followed", url))
    segments = [unquote(segment) for segment in parts.path.split("/")]
    if any(segment in {".", ".."} or "/" in segment or "\\" in segment for segment in segments):
        raise UntrustedUrl(_untrusted("dot segments and encoded separators are not followed", url))
    if len(segments) < 3 or segments[1].lower() != "subscriptions" or segments[2].lower() != subscription_id.lower():
        raise UntrustedUrl(_untrusted(f"only URLs under subscription {subscription_id} are followed", url))
    return url


def _is_utf8_encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _origin(parts: SplitResult) -> tuple[str, int] | None:
    """Host and effective port, or None when the URL carries user info or a bad port."""
    try:
        port = 443 if parts.port is None else parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    return parts.hostname.lower(), port


def _untrusted(reason: str, url: object) -> ErrorInfo:
    shown = url if isinstance(url, str) else repr(url)
    return ErrorInfo(code="UntrustedFollowUpUrl", message=f"{reason}; refused {shown[:300]!r}")

