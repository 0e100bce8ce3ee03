"""Route templates of HTTP triggers: parsing function.json's route, methods and authLevel, and matching paths."""

from __future__ import annotations

import pytest

from devtools.funchost import ConfigError
from devtools.funchost.routes import NoMatch, match_route, parse_route


def route(template: str, prefix: str = "api", methods: object = None, auth_level: object = None) -> object:
    return parse_route("fn", template, methods, auth_level, prefix)


def match(template: str, path: str, prefix: str = "api") -> dict[str, str] | None:
    parsed = parse_route("fn", template, None, None, prefix)
    found = match_route([parsed], path)
    return dict(found[0][1]) if found else None


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/backups", {}),
    ("/api/backups/", {}),
    ("/API/Backups/k1", {"id": "k1"}),
    ("/api/backups/a%2Fb%3Bc%25d%3Ae", {"id": "a/b;c%d:e"}),
    ("/api/backups/%E2%9C%93", {"id": "\u2713"}),
    ("/api/backups/a+b", {"id": "a+b"}),
    ("/api/backups/k1/more", None),
    ("/api/backup", None),
    ("/backups/k1", None),
    ("/api", None),
    ("/", None),
])
def test_an_optional_last_parameter(path: str, expected: dict[str, str] | None) -> None:
    assert match("backups/{id?}", path) == expected


def test_a_required_parameter_needs_its_segment() -> None:
    assert match("items/{id}", "/api/items") is None
    assert match("items/{id}", "/api/items/7") == {"id": "7"}
    assert match("items/{id}/parts", "/api/items/7/parts") == {"id": "7"}
    assert match("items/{id}/parts", "/api/items//parts") is None


def test_a_catch_all_takes_the_rest_of_the_path() -> None:
    assert match("files/{*path}", "/api/files/a/b%20c/d") == {"path": "a/b c/d"}
    assert match("files/{*path}", "/api/files") == {}


def test_the_route_prefix_may_be_empty_or_nested() -> None:
    assert match("backups/{id?}", "/backups/k", prefix="") == {"id": "k"}
    assert match("backups/{id?}", "/v1/x/backups/k", prefix="/v1/x/") == {"id": "k"}


def test_no_route_means_the_function_name() -> None:
    parsed = parse_route("myFunction", None, None, None, "api")

    assert parsed.path == "api/myFunction"
    assert match_route([parsed], "/api/MYFUNCTION")


def test_a_segment_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(NoMatch):
        match("backups/{id?}", "/api/backups/%FF")


@pytest.mark.parametrize("template", [
    "backups/{id:int}", "backups/{id=1}", "backups/x{id}", "backups/{*rest}/more", "backups//x",
    "backups/{id?}/{other}", 42,
])
def test_templates_this_host_cannot_serve_are_refused_at_start(template: object) -> None:
    with pytest.raises(ConfigError):
        parse_route("fn", template, None, None, "api")


def test_methods_are_upper_cased_and_default_to_all() -> None:
    parsed = parse_route("fn", "x", ["get", "Post"], "function", "api")

    assert parsed.methods == ("GET", "POST")
    assert parsed.allows("post") and not parsed.allows("PUT")
    assert parse_route("fn", "x", None, None, "api").allows("DELETE")


@pytest.mark.parametrize("methods", [[], "get", [1], [""]])
def test_malformed_methods_are_refused(methods: object) -> None:
    with pytest.raises(ConfigError):
        parse_route("fn", "x", methods, None, "api")


def test_auth_levels_are_read_case_insensitively_and_default_to_function() -> None:
    assert parse_route("fn", "x", None, "Anonymous", "api").auth_level == "anonymous"
    assert parse_route("fn", "x", None, None, "api").auth_level == "function"
    with pytest.raises(ConfigError):
        parse_route("fn", "x", None, "system", "api")
