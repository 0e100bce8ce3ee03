"""Loading an app without storage: host.json, settings, discovery, and the worker's signature checks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from devtools.funchost import ConfigError, FunctionHost, FunctionLoadError
from devtools.funchost.appsettings import AppSettings, read_local_settings
from devtools.funchost.connections import resolve_connection
from devtools.funchost.hostconfig import MessageEncoding, load_host_config, parse_timespan
from devtools.funchost.invocation import Delivery, invoke
from devtools.funchost.loader import load_function
from devtools.funchost.metadata import discover
from tests.funchost.support import App, queue_function

UNREACHABLE = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/a;"
OK_SOURCE = """
import azure.functions as func

def main(msg: func.QueueMessage, out: func.Out[str]) -> None:
    out.set(msg.get_body().decode())
"""


def start_error(app: App, **settings: str) -> str:
    host = FunctionHost(app.root, app.settings(UNREACHABLE, **settings), load_local_settings=False)
    with pytest.raises((FunctionLoadError, ConfigError)) as caught:
        host.start()
    return str(caught.value)


def test_parameter_names_must_equal_binding_names(make_app: Callable[..., App]) -> None:
    source = OK_SOURCE.replace("msg: func.QueueMessage", "message: func.QueueMessage").replace("msg.", "message.")
    app = make_app({"echo": (queue_function(), source)})
    error = start_error(app)
    assert "cannot load the echo function" in error
    assert "declared in Python but not in function.json: {'message'}" in error


def test_binding_without_parameter_is_refused(make_app: Callable[..., App]) -> None:
    source = "def main(msg) -> None:\n    pass\n"
    error = start_error(make_app({"echo": (queue_function(), source)}))
    assert "declared in function.json but not in Python: {'out'}" in error


def test_out_binding_must_be_annotated_out(make_app: Callable[..., App]) -> None:
    source = OK_SOURCE.replace("out: func.Out[str]", "out: str").replace("out.set(", "print(")
    error = start_error(make_app({"echo": (queue_function(), source)}))
    assert 'binding out is declared to have the "out" direction' in error


def test_trigger_must_not_be_annotated_out(make_app: Callable[..., App]) -> None:
    source = OK_SOURCE.replace("msg: func.QueueMessage", "msg: func.Out[str]")
    error = start_error(make_app({"echo": (queue_function(), source)}))
    assert 'binding msg is declared to have the "in" direction' in error


def test_trigger_annotation_must_be_a_queue_message_str_or_bytes(make_app: Callable[..., App]) -> None:
    source = OK_SOURCE.replace("msg: func.QueueMessage", "msg: int").replace("msg.get_body().decode()", "str(msg)")
    error = start_error(make_app({"echo": (queue_function(), source)}))
    assert 'does not match its Python annotation "int"' in error


def test_return_annotation_must_be_a_class_as_the_worker_demands(make_app: Callable[..., App]) -> None:
    function_json = queue_function(out=False)
    function_json["bindings"].append({"name": "$return", "type": "queue", "direction": "out", "queueName": "x-out"})
    source = "def main(msg) -> list[str]:\n    return [str(msg)]\n"
    error = start_error(make_app({"echo": (function_json, source)}))
    assert "has invalid non-type return annotation list[str]" in error


def test_function_returning_a_value_needs_a_return_binding(make_app: Callable[..., App]) -> None:
    source = "def main(msg) -> str:\n    return 'x'\n"
    app = make_app({"echo": (queue_function(out=False), source)})
    (metadata,) = discover(app.root, AppSettings(app.settings(UNREACHABLE)))
    function = load_function(metadata, app.root)
    delivery = Delivery("id", b"body", "receipt", 1, None, None, None)
    with pytest.raises(TypeError, match="without a \\$return binding returned a non-None value"):
        invoke(function, delivery, "invocation", 5)


def test_entry_point_must_exist(make_app: Callable[..., App]) -> None:
    function_json = {**queue_function(), "entryPoint": "run"}
    error = start_error(make_app({"echo": (function_json, OK_SOURCE)}))
    assert "function run() is not present" in error


def test_unresolved_setting_in_a_binding_is_refused(make_app: Callable[..., App]) -> None:
    function_json = queue_function()
    function_json["bindings"][1]["queueName"] = "%NOT_SET_ANYWHERE%"
    error = start_error(make_app({"echo": (function_json, OK_SOURCE)}))
    assert "'%NOT_SET_ANYWHERE%' does not resolve to a value" in error


def test_setting_resolves_and_queue_name_is_lower_cased(tmp_path: Path) -> None:
    folder = tmp_path / "echo"
    folder.mkdir()
    (folder / "function.json").write_text(json.dumps(queue_function()))
    (folder / "__init__.py").write_text(OK_SOURCE)
    (function,) = discover(tmp_path, AppSettings({"IN_QUEUE": "Orders-In", "out_queue": "orders-out"}))
    assert function.trigger.queue_name == "orders-in"  # setting names are case-insensitive, like the host's
    assert function.outputs[0].queue_name == "orders-out"


def test_disabled_functions_and_other_triggers_are_not_run(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    http = {"bindings": [{"name": "req", "type": "httpTrigger", "direction": "in"}]}
    blob = {"bindings": [{"name": "blob", "type": "blobTrigger", "direction": "in", "path": "c/{name}"}]}
    app = make_app(
        {
            "echo": (queue_function(), OK_SOURCE),
            "off": ({**queue_function(), "disabled": True}, OK_SOURCE),
            "off2": (queue_function(), OK_SOURCE),
            "web": (http, "def main(req):\n    return None\n"),
            "files": (blob, "def main(blob):\n    return None\n"),
        }
    )
    settings = AppSettings(app.settings(UNREACHABLE, **{"AzureWebJobs.off2.Disabled": "true"}))
    with caplog.at_level(logging.INFO):
        names = [function.name for function in discover(app.root, settings)]
    assert names == ["echo", "files", "web"]
    assert "function off is disabled" in caplog.text
    runnable = [function.name for function in discover(app.root, settings) if function.runnable]
    assert runnable == ["echo", "web"]


def test_host_json_defaults_are_the_hosts(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    config = load_host_config(tmp_path, processor_count=4)
    assert config.queues.batch_size == 16
    assert config.queues.new_batch_threshold == 32  # batchSize / 2 per processor
    assert config.queues.max_dequeue_count == 5
    assert config.queues.visibility_timeout == 0
    assert config.queues.max_polling_interval == 60
    assert config.queues.message_encoding is MessageEncoding.BASE64


def test_host_json_of_this_repository_loads() -> None:
    config = load_host_config(Path(__file__).resolve().parents[2], processor_count=2)
    assert config.queues.message_encoding is MessageEncoding.NONE
    assert config.function_timeout == 300


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, '"version": "2.0" is required'),
        ({"version": "2.0", "extensions": {"queues": {"batchSize": 33}}}, "batchSize must be between 1 and 32"),
        ({"version": "2.0", "extensions": {"queues": {"messageEncoding": "utf8"}}}, "base64 or none"),
        ({"version": "2.0", "extensions": {"queues": {"visibilityTimeout": "30"}}}, "not a time span"),
    ],
)
def test_host_json_mistakes_are_refused(tmp_path: Path, document: dict[str, object], message: str) -> None:
    (tmp_path / "host.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match=message):
        load_host_config(tmp_path)


def test_timespans() -> None:
    assert parse_timespan("00:00:30", "t") == 30
    assert parse_timespan("00:01:00.5", "t") == 60.5
    assert parse_timespan("1.02:00:00", "t") == 93600
    assert parse_timespan("00:10", "t") == 600  # hh:mm, as .NET reads it


def test_connection_lookup_follows_the_host() -> None:
    dev = resolve_connection(AppSettings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}), "")
    assert (
        dev.connection_string is not None
        and "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in dev.connection_string
    )
    prefixed = resolve_connection(AppSettings({"AzureWebJobsOther": "A=1", "Other": "B=2"}), "Other")
    assert prefixed.connection_string == "A=1"
    identity = resolve_connection(
        AppSettings({"Store__queueServiceUri": "https://acct.queue.core.windows.net/", "Store__clientId": "cid"}),
        "Store",
    )
    assert identity.queue_service_uri == "https://acct.queue.core.windows.net"
    assert identity.client_id == "cid"
    by_account = resolve_connection(AppSettings({"AzureWebJobsStorage__accountName": "acct"}), "AzureWebJobsStorage")
    assert by_account.queue_service_uri == "https://acct.queue.core.windows.net"
    with pytest.raises(ConfigError, match="'Missing' is not configured"):
        resolve_connection(AppSettings({}), "Missing")


def test_local_settings_lie_under_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file"}}))
    settings = AppSettings.layered(read_local_settings(path), {"A": "from-env"})
    assert (settings.get("A"), settings.get("B")) == ("from-env", "from-file")
    path.write_text(json.dumps({"Values": {"A": True}}))
    with pytest.raises(ConfigError, match="Values must be strings"):
        read_local_settings(path)
