"""shared.httpcall: what the front door reads off a call before any I/O (size, content type, key, Location)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, unquote, urlsplit

import azure.functions as func
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import ErrorInfo
from shared.httpcall import MAX_BODY_BYTES, HttpCall, body_problem, requested_key, status_location

URL = "https://app.azurewebsites.net/api/backups"


def call(url: str = URL, *, method: str = "POST", headers: dict[str, str] | None = None, body: bytes = b"{}",
         route_key: str | None = None) -> HttpCall:
    query = {name: values[-1] for name, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    return HttpCall(method, url, {k.lower(): v for k, v in (headers or {}).items()}, query, route_key, body)


def test_of_reads_an_azure_functions_request() -> None:
    request = func.HttpRequest("post", f"{URL}/k?code=c", headers={"Content-Type": "application/json"},
                               params={"code": "c"}, route_params={"id": "k"}, body=b"{}")

    read = HttpCall.of(request)

    assert (read.method, read.url, read.route_key, read.body) == ("POST", f"{URL}/k?code=c", "k", b"{}")
    assert read.headers == {"content-type": "application/json"}
    assert read.query == {"code": "c"}


def test_of_takes_an_empty_route_parameter_as_none() -> None:
    request = func.HttpRequest("GET", URL, route_params={"id": ""}, body=b"")

    assert HttpCall.of(request).route_key is None


# -- body -----------------------------------------------------------------------------------------


def test_body_size_limit_is_a_queue_messages() -> None:
    assert body_problem(call(body=b" " * MAX_BODY_BYTES)) is None
    refusal = body_problem(call(body=b" " * (MAX_BODY_BYTES + 1)))
    assert refusal is not None and refusal.status == 413
    assert refusal.error.code == "PayloadTooLarge"


@pytest.mark.parametrize("content_type", [
    "application/json", "APPLICATION/JSON", "application/json;charset=utf-8", "application/json; charset=UTF8",
    'application/json; charset="utf-8"', "text/json", "application/cloudevents+json", "application/vnd.x+json",
    "application/json; odata=verbose", "", "   ",
])
def test_json_content_types_are_read(content_type: str) -> None:
    assert body_problem(call(headers={"Content-Type": content_type})) is None


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data", "json",
    "application/json; charset=utf-16", "application/json;charset=latin1", "text/plain+json", "*/*",
    "application/jsonx", "application/json\r\nX-Evil: 1",
])
def test_other_content_types_are_refused_415(content_type: str) -> None:
    refusal = body_problem(call(headers={"Content-Type": content_type}))

    assert refusal is not None and refusal.status == 415
    assert refusal.error.target == "Content-Type"


def test_a_415_shows_at_most_a_bounded_part_of_the_content_type() -> None:
    refusal = body_problem(call(headers={"Content-Type": "text/" + "x" * 5000}))

    assert refusal is not None and len(refusal.error.message) < 200


def test_size_is_judged_before_the_content_type() -> None:
    refusal = body_problem(call(headers={"Content-Type": "text/plain"}, body=b" " * (MAX_BODY_BYTES + 1)))

    assert refusal is not None and refusal.status == 413


# -- the key of a GET -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "route_key", "expected"), [
    (f"{URL}/k1", "k1", "k1"),
    (f"{URL}?key=a%2Fb", None, "a/b"),
    (f"{URL}/a%2Fb?key=a%2Fb", "a/b", "a/b"),
    (f"{URL}?key=k&code=x", None, "k"),
])
def test_the_key_comes_from_the_path_or_the_query(url: str, route_key: str | None, expected: str) -> None:
    assert requested_key(call(url, method="GET", route_key=route_key)) == expected


@pytest.mark.parametrize(("url", "route_key"), [
    (URL, None), (f"{URL}?key=", None), (f"{URL}/a?key=b", "a"), (f"{URL}/x", "has space"),
    (f"{URL}?key={'k' * 201}", None), (f"{URL}?key=%C3%A9", None), (f"{URL}?key=a%0Ab", None),
])
def test_no_key_two_keys_or_a_key_no_request_can_have_is_an_error(url: str, route_key: str | None) -> None:
    found = requested_key(call(url, method="GET", route_key=route_key))

    assert isinstance(found, ErrorInfo)
    assert found.target == "key"


# -- Location ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "expected"), [
    ("change-4711", f"{URL}/change-4711"),
    ("A.b_c~d-0", f"{URL}/A.b_c~d-0"),
    ("a/b", f"{URL}?key=a%2Fb"),
    ("a;b", f"{URL}?key=a%3Bb"),
    ("50%", f"{URL}?key=50%25"),
    ("urn:x", f"{URL}?key=urn%3Ax"),
    ("..", f"{URL}?key=.."),
    (".", f"{URL}?key=."),
    ("a?b#c&d=e+f", f"{URL}?key=a%3Fb%23c%26d%3De%2Bf"),
])
def test_path_safe_keys_go_in_the_path_and_every_other_in_the_query(key: str, expected: str) -> None:
    assert status_location(call(), key) == expected


def test_a_get_by_path_answers_with_the_collection_of_its_own_url() -> None:
    got = call(f"{URL}/a%2Fb", method="GET", route_key="a/b")

    assert status_location(got, "a/b") == f"{URL}?key=a%2Fb"
    assert status_location(call(f"{URL}/k1/", method="GET", route_key="k1"), "k1") == f"{URL}/k1"


def test_the_function_key_of_the_query_is_carried_and_nothing_else() -> None:
    posted = call(f"{URL}?code=s3cr%2Bt%3D%3D&other=1&key=zzz")

    assert status_location(posted, "k") == f"{URL}/k?code=s3cr%2Bt%3D%3D"
    assert status_location(posted, "a/b") == f"{URL}?key=a%2Fb&code=s3cr%2Bt%3D%3D"


def test_a_function_key_in_a_header_is_not_carried() -> None:
    assert status_location(call(headers={"x-functions-key": "secret"}), "k") == f"{URL}/k"


@pytest.mark.parametrize(("forwarded", "expected_scheme"), [
    (None, "http"), ("https", "https"), (" HTTPS ", "https"), ("https, http", "https"), ("http,https", "http"),
    ("ftp", "http"), ("https\r\nX: y", "http"), ("", "http"),
])
def test_x_forwarded_proto_names_the_scheme_when_it_is_http_or_https(
    forwarded: str | None, expected_scheme: str
) -> None:
    headers = {} if forwarded is None else {"X-Forwarded-Proto": forwarded}

    location = status_location(call("http://app.azurewebsites.net/api/backups", headers=headers), "k")

    assert location == f"{expected_scheme}://app.azurewebsites.net/api/backups/k"


def test_the_host_and_port_are_the_urls_and_user_info_is_dropped() -> None:
    assert status_location(call("http://127.0.0.1:7071/api/backups"), "k") == "http://127.0.0.1:7071/api/backups/k"
    assert status_location(call("https://u:p@h.example/api/backups"), "k") == "https://h.example/api/backups/k"


def test_a_route_prefix_other_than_api_is_kept() -> None:
    assert status_location(call("https://h.example/v2/backups"), "k") == "https://h.example/v2/backups/k"


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=200))
def test_every_key_round_trips_through_its_location(key: str) -> None:
    location = urlsplit(status_location(call(), key))

    query = parse_qs(location.query)
    if "key" in query:
        assert query["key"] == [key]
        assert location.path == "/api/backups"
    else:
        assert unquote(location.path.rsplit("/", 1)[1]) == key == quote(key, safe="")
    assert "%2F" not in location.path and "%2f" not in location.path
