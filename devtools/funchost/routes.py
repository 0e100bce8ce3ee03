"""HTTP trigger routes as the Functions host reads them: ``{routePrefix}/{route}``, methods, authLevel.

A template is literal segments and parameters: ``{name}``, ``{name?}`` (optional, last segments
only) and ``{*name}`` (catch-all, last). Literals match case-insensitively, as ASP.NET routing
does; constraints (``{id:int}``) and defaults (``{id=1}``) are refused rather than half-supported.
A function without ``route`` is served at its own name.

Matching works on the raw path, split at ``/`` before anything is decoded; each parameter is then
percent-decoded once (RFC 3986), so ``a%2Fb`` arrives as ``a/b`` in one parameter. Core Tools
decodes everything but ``%2F`` and Azure's front ends refuse ``%2F`` in a segment altogether
(404): an app that must work there keeps slashes out of path parameters (``backup_api`` puts
such keys in the query).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from devtools.funchost.errors import ConfigError

__all__ = ["AUTH_LEVELS", "NoMatch", "Route", "RouteTemplate", "match_route", "parse_route"]

AUTH_LEVELS = frozenset({"anonymous", "function", "admin"})
_PARAMETER = re.compile(r"^\{(?P<catch_all>\*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<optional>\?)?\}$")
_ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")


class NoMatch(Exception):
    """The path matches, but a parameter is not percent-encoded UTF-8: the host answers 400."""


class SegmentKind(Enum):
    LITERAL = "literal"
    PARAMETER = "parameter"
    OPTIONAL = "optional"
    CATCH_ALL = "catch-all"


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    text: str
    """The literal, or the parameter's name."""


@dataclass(frozen=True)
class RouteTemplate:
    segments: tuple[Segment, ...]

    def match(self, raw_segments: Sequence[str]) -> dict[str, str] | None:
        """The parameters if ``raw_segments`` (split, still encoded) fit the template, else None."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.kind is SegmentKind.CATCH_ALL:
                rest = "/".join(raw_segments[index:])
                if rest:
                    values[segment.text] = _decoded(rest)
                return values
            if index >= len(raw_segments):
                return values if segment.kind is SegmentKind.OPTIONAL else None
            raw = raw_segments[index]
            if segment.kind is SegmentKind.LITERAL:
                if raw.lower() != segment.text.lower():
                    return None
            elif raw:
                values[segment.text] = _decoded(raw)
            else:
                return None
        return values if len(raw_segments) == len(self.segments) else None


@dataclass(frozen=True)
class Route:
    function: str
    path: str
    """The template as written, prefix included: ``api/backups/{id?}``."""
    template: RouteTemplate
    methods: tuple[str, ...]
    auth_level: str

    def allows(self, method: str) -> bool:
        return method.upper() in self.methods


def parse_route(
    function: str, route: object, methods: object, auth_level: object, prefix: str
) -> Route:
    """The route of an ``httpTrigger`` binding, or ConfigError naming what is wrong with it."""
    where = f"{function}/function.json httpTrigger"
    text = function if route is None else route
    if not isinstance(text, str):
        raise ConfigError(f"{where}: route must be a string")
    parts = [part for part in prefix.strip("/").split("/") if part] + [part for part in text.strip("/").split("/")]
    segments = tuple(_segment(where, part, index == len(parts) - 1) for index, part in enumerate(parts))
    _check_optional_tail(where, segments)
    return Route(
        function, "/".join(parts), RouteTemplate(segments), _methods(where, methods), _auth_level(where, auth_level)
    )


def _segment(where: str, part: str, last: bool) -> Segment:
    if not part:
        raise ConfigError(f"{where}: route has an empty segment")
    if "{" not in part and "}" not in part:
        return Segment(SegmentKind.LITERAL, part)
    match = _PARAMETER.match(part)
    if match is None:
        raise ConfigError(
            f"{where}: route segment {part!r} is not supported by this host (a literal, {{name}}, {{name?}} or "
            "{*name}; no constraints, defaults or parameters mixed with text)"
        )
    if match["catch_all"]:
        if not last:
            raise ConfigError(f"{where}: the catch-all {part!r} must be the last segment")
        return Segment(SegmentKind.CATCH_ALL, match["name"])
    kind = SegmentKind.OPTIONAL if match["optional"] else SegmentKind.PARAMETER
    return Segment(kind, match["name"])


def _check_optional_tail(where: str, segments: tuple[Segment, ...]) -> None:
    seen_optional = False
    for segment in segments:
        if segment.kind is SegmentKind.OPTIONAL:
            seen_optional = True
        elif seen_optional:
            raise ConfigError(f"{where}: an optional parameter may only be followed by other optional ones")


def _methods(where: str, raw: object) -> tuple[str, ...]:
    if raw is None:
        return _ALL_METHODS
    if not isinstance(raw, list) or not raw or not all(isinstance(method, str) and method for method in raw):
        raise ConfigError(f"{where}: methods must be a non-empty list of method names")
    return tuple(method.upper() for method in raw)


def _auth_level(where: str, raw: object) -> str:
    level = "function" if raw is None else raw
    if not isinstance(level, str) or level.lower() not in AUTH_LEVELS:
        raise ConfigError(f"{where}: authLevel must be one of {', '.join(sorted(AUTH_LEVELS))}, not {raw!r}")
    return level.lower()


def _decoded(raw: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise NoMatch(f"{raw[:40]!r} is not percent-encoded UTF-8") from None


def match_route(routes: Sequence[Route], raw_path: str) -> list[tuple[Route, Mapping[str, str]]]:
    """Every route whose template fits the path, with its parameters, in the order given."""
    raw_segments = raw_path.strip("/").split("/") if raw_path.strip("/") else []
    found: list[tuple[Route, Mapping[str, str]]] = []
    for route in routes:
        values = route.template.match(raw_segments)
        if values is not None:
            found.append((route, values))
    return found
