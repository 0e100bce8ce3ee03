"""The binding contract: function.json and ``main`` agree, as the Python worker itself decides.

The three functions are loaded through ``azure_functions_runtime_v1.handle_event`` (the worker's own
``worker_init_request`` and ``function_load_request``: ``loader.load_function`` imports the
script as ``__app__.<folder>``, then ``functions.Registry.add_function`` checks parameter names
against binding names, ``func.Out`` against directions and annotations against binding types).
The host sends protobuf messages; the handlers only read attributes off them, so plain stand-ins
with the protobuf enum values are enough. A deliberately broken copy of each function, in
tmp_path, must be refused by the same loader. Two invocations through the worker's
``invocation_request`` show that its QueueMessage (built from the trigger metadata) and its
``Out`` objects carry a request in and a result out; two more through backup_api show its
HttpRequest (built from the host's RpcHttp) coming in and its HttpResponse going back as RpcHttp.

host.json, function.json and local.settings.sample.json are also checked against the
SchemaStore schemas the Functions tooling uses.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest
from azure_functions_runtime_v1 import handle_event, loader
from azure_functions_runtime_v1.functions import FunctionInfo
from jsonschema import Draft4Validator, Draft7Validator  # type: ignore[import-untyped]

from shared import runtime
from tests.functions.harness import JOB_LIST, VM_NAMES, App, job_list, listed_job

ROOT = Path(__file__).resolve().parents[2]
SCHEMASTORE = ROOT / "tests" / "fixtures" / "schemastore"
FUNCTIONS = ("trigger_backup", "poll_status")
"""The queue-triggered functions."""
HTTP_FUNCTION = "backup_api"
TRIGGER_QUEUES = {"trigger_backup": "%BACKUP_REQUESTS_QUEUE%", "poll_status": "%BACKUP_STATUS_QUEUE%"}


# --- stand-ins for the host's protobuf messages ----------------------------------------------------


class _Message(SimpleNamespace):
    """A protobuf message stand-in: keyword fields become attributes."""


class _BindingInfo(_Message):
    # FunctionRpc.proto, BindingInfo.Direction and BindingInfo.DataType ("in" = 0 is a Python keyword)
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


class _StatusResult(_Message):
    Failure = 0
    Success = 1
    Cancelled = 2


class _TypedData:
    """TypedData: exactly one field of its ``data`` oneof is set."""

    def __init__(self, **field: Any) -> None:
        ((self.kind, value),) = field.items()
        setattr(self, self.kind, value)

    def WhichOneof(self, group: str) -> str:
        assert group == "data"
        return self.kind


class _ParameterBinding(_Message):
    def WhichOneof(self, group: str) -> str:
        assert group == "rpc_data"
        return "data"


PROTOS = SimpleNamespace(
    RpcHttp=_Message,
    BindingInfo=_BindingInfo,
    StatusResult=_StatusResult,
    RpcException=_Message,
    WorkerMetadata=_Message,
    WorkerInitResponse=_Message,
    FunctionLoadResponse=_Message,
    InvocationResponse=_Message,
    ParameterBinding=_ParameterBinding,
    TypedData=_TypedData,
)
_DIRECTIONS = {"in": 0, "out": 1, "inout": 2}
_DATA_TYPES = {None: 0, "string": 1, "binary": 2, "stream": 3}


def rpc_metadata(function_dir: Path) -> _Message:
    """RpcFunctionMetadata as the host builds it from a function folder's function.json."""
    config = json.loads((function_dir / "function.json").read_text(encoding="utf-8"))
    return _Message(
        name=function_dir.name,
        directory=str(function_dir),
        script_file=str(function_dir / config.get("scriptFile", "__init__.py")),
        entry_point=config.get("entryPoint", ""),
        bindings={
            binding["name"]: _BindingInfo(
                type=binding["type"],
                direction=_DIRECTIONS[binding["direction"]],
                data_type=_DATA_TYPES[binding.get("dataType")],
            )
            for binding in config["bindings"]
        },
    )


def load(function_dir: Path) -> tuple[Any, FunctionInfo | None]:
    """The worker's FunctionLoadResponse for this folder, and what it registered."""
    function_id = str(uuid.uuid4())
    request = _Message(
        request=_Message(function_load_request=_Message(function_id=function_id, metadata=rpc_metadata(function_dir))),
        properties={"protos": PROTOS},
    )
    response = asyncio.run(handle_event.function_load_request(request))
    assert response.function_id == function_id
    info: FunctionInfo | None = handle_event._functions.get_function(function_id)
    return response, info


@pytest.fixture(scope="module")
def worker() -> Iterator[None]:
    """The worker initialised as the host does it (binding registry, the ``__app__`` namespace)."""
    saved_dirs = list(loader._submodule_dirs)
    saved_modules = set(sys.modules)
    request = _Message(
        request=_Message(worker_init_request=_Message(capabilities={})),
        properties={"host": "127.0.0.1:0", "protos": PROTOS},
    )
    response = asyncio.run(handle_event.worker_init_request(request))
    assert response.result.status == _StatusResult.Success
    yield
    loader._submodule_dirs[:] = saved_dirs
    for name in set(sys.modules) - saved_modules:
        if name == "__app__" or name.startswith("__app__."):
            del sys.modules[name]


# --- the real functions load -------------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("name", FUNCTIONS)
def test_worker_loads_the_function_with_the_expected_bindings(name: str) -> None:
    response, info = load(ROOT / name)

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    assert info is not None
    assert info.name == name
    assert info.func.__module__ == f"__app__.{name}"
    assert not info.is_async
    assert not info.requires_context
    assert not info.has_return
    assert set(info.input_types) == {"msg"}
    assert info.input_types["msg"].binding_name == "queueTrigger"
    assert info.input_types["msg"].pytype is func.QueueMessage
    assert set(info.output_types) == {"result"}
    # the worker sends an Out[str] through its generic converter: the host writes the string as is
    assert info.output_types["result"].binding_name == "generic"
    assert info.output_types["result"].pytype is str


def invoke(function_id: str, body: str, *, dequeue_count: int, insertion_time: str) -> Any:
    """An InvocationRequest for a queue trigger, with the trigger metadata the host sends along."""
    invocation = _Message(
        invocation_id=str(uuid.uuid4()),
        function_id=function_id,
        input_data=[_ParameterBinding(name="msg", data=_TypedData(string=body))],
        trigger_metadata={
            "Id": _TypedData(string="host-message-1"),
            "DequeueCount": _TypedData(json=str(dequeue_count)),
            "InsertionTime": _TypedData(json=json.dumps(insertion_time)),
            "PopReceipt": _TypedData(string="pop"),
        },
        trace_context=_Message(trace_parent="", trace_state="", attributes={}),
        retry_context=_Message(retry_count=0, max_retry_count=0, exception=None),
    )
    return asyncio.run(handle_event.invocation_request(_Message(request=_Message(invocation_request=invocation))))


def _loaded_id(name: str) -> str:
    response, info = load(ROOT / name)
    assert response.result.status == _StatusResult.Success
    assert info is not None
    return str(info.function_id)


@pytest.mark.usefixtures("worker")
def test_worker_invocation_turns_a_rejected_request_into_the_result_binding() -> None:
    app = App()
    function_id = _loaded_id("trigger_backup")

    with runtime.override(app.services):
        response = invoke(function_id, "not json", dequeue_count=1, insertion_time="2026-11-26T12:00:00+00:00")

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    assert [binding.name for binding in response.output_data] == ["result"]
    result = json.loads(response.output_data[0].data.string)
    assert result["status"] == "Rejected"
    assert result["messageId"] == "host-message-1"
    assert result["rawMessage"] == "not json"
    assert app.transport.sent == []


@pytest.mark.usefixtures("worker")
def test_worker_invocation_passes_the_dequeue_count_and_insertion_time_through() -> None:
    app = App()
    app.transport.on("GET", JOB_LIST, job_list(
        listed_job("worker-job", friendly_name="v1win2012r", start_time="2026-11-26T11:59:00Z"),
    ))
    function_id = _loaded_id("trigger_backup")

    with runtime.override(app.services):
        response = invoke(function_id, json.dumps(VM_NAMES), dequeue_count=2,
                          insertion_time="2026-11-26T11:58:00.1234567+00:00")

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    assert response.output_data == [], "a follow-up was queued instead of a result"
    assert [sent.method for sent in app.transport.sent] == ["GET"], "redelivered: the job is looked for first"
    follow_up = json.loads(app.sender.take().text)
    assert follow_up["jobId"] == "worker-job"
    assert follow_up["correlationId"] == "host-message-1"


# --- broken copies are refused ------------------------------------------------------------------------


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, f"the function no longer contains {old!r}: update this test"
    return text.replace(old, new)


BROKEN: dict[str, tuple[str, str, str, str]] = {
    # case: (file, old, new, what the worker says)
    "trigger-renamed-in-json": ("function.json", '"name": "msg"', '"name": "message"',
                                "declared in Python but not in function.json"),
    "result-renamed-in-json": ("function.json", '"name": "result"', '"name": "results"',
                               "declared in Python but not in function.json"),
    "parameter-renamed-in-python": ("__init__.py", "def main(msg: func.QueueMessage",
                                    "def main(message: func.QueueMessage",
                                    "declared in Python but not in function.json"),
    "extra-binding-in-json": ("function.json", '"bindings": [',
                              '"bindings": [{"name": "extra", "type": "queue", "direction": "out", '
                              '"queueName": "x", "connection": "AzureWebJobsStorage"},',
                              "declared in function.json but not in Python"),
    "out-binding-declared-in": ("function.json", '"direction": "out"', '"direction": "in"',
                                'declared to have the "in" direction'),
    "out-binding-not-annotated-out": ("__init__.py", "result: func.Out[str]", "result: str",
                                      'declared to have the "out" direction'),
    "trigger-annotated-out": ("__init__.py", "msg: func.QueueMessage", "msg: func.Out[str]",
                              'declared to have the "in" direction'),
    "trigger-wrong-type": ("__init__.py", "msg: func.QueueMessage", "msg: func.HttpRequest",
                           "does not match its Python annotation"),
    "trigger-wrong-binding-type": ("function.json", '"type": "queueTrigger"', '"type": "blobTrigger"',
                                   "does not match its Python annotation"),
    "inout-direction": ("function.json", '"direction": "out"', '"direction": "inout"',
                        '"inout" bindings are not supported'),
    "no-main": ("__init__.py", "def main(", "def handler(", "is not present"),
}


def _copy_function(source: str, target: Path, edit: tuple[str, str, str] | None) -> Path:
    target.mkdir(parents=True)
    for file_name in ("__init__.py", "function.json"):
        text = (ROOT / source / file_name).read_text(encoding="utf-8")
        if edit is not None and edit[0] == file_name:
            text = _edit(text, edit[1], edit[2])
        (target / file_name).write_text(text, encoding="utf-8")
    return target


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("source", FUNCTIONS)
def test_unchanged_copy_loads(source: str, tmp_path: Path) -> None:
    """The control for the broken copies: copying alone does not make the loader refuse."""
    copy_dir = _copy_function(source, tmp_path / f"copy_{source}_{uuid.uuid4().hex[:8]}", None)

    response, info = load(copy_dir)

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    assert info is not None


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("source", FUNCTIONS)
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_loader_refuses_a_copy_whose_bindings_and_signature_disagree(source: str, case: str, tmp_path: Path) -> None:
    check_refused(source, case, BROKEN[case], tmp_path)


def check_refused(source: str, case: str, breakage: tuple[str, str, str, str], tmp_path: Path) -> None:
    """A copy of ``source`` with one edit is refused by the worker's loader with the expected complaint."""
    file_name, old, new, complaint = breakage
    folder = f"broken_{source}_" + re.sub(r"\W", "_", case) + "_" + uuid.uuid4().hex[:8]
    copy_dir = _copy_function(source, tmp_path / folder, (file_name, old, new))

    response, info = load(copy_dir)

    assert response.result.status == _StatusResult.Failure
    assert complaint in response.result.exception.message
    assert info is None


# --- JSON schemas of the Functions files ----------------------------------------------------------------


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _errors(validator: Any, document: Any) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]


def host_v2_validator() -> Any:
    schema = _json(SCHEMASTORE / "host.json")
    Draft7Validator.check_schema(schema)
    v2_only = {**schema, "oneOf": [{"$ref": "#/definitions/version-2"}]}
    return Draft7Validator(v2_only)


def test_host_json_is_valid_for_the_version_2_schema() -> None:
    schema = _json(SCHEMASTORE / "host.json")
    host = _json(ROOT / "host.json")

    assert _errors(Draft7Validator(schema), host) == []
    assert _errors(host_v2_validator(), host) == []


def test_host_json_schema_bites_on_an_unknown_key() -> None:
    host = _json(ROOT / "host.json")
    host["funtionTimeout"] = "00:05:00"

    assert _errors(host_v2_validator(), host) != []


def test_host_json_reads_queues_as_plain_text_and_bounds_retries() -> None:
    host = _json(ROOT / "host.json")

    assert host["version"] == "2.0"
    queues = host["extensions"]["queues"]
    assert queues["messageEncoding"] == "none"
    assert 1 <= queues["batchSize"] <= 32
    assert queues["maxDequeueCount"] >= 1


@pytest.mark.parametrize("name", (*FUNCTIONS, HTTP_FUNCTION))
def test_function_json_is_valid_for_its_schema(name: str) -> None:
    # The schema says draft-04 but uses "const": only draft-07 reads it as meant.
    schema = _json(SCHEMASTORE / "function.json")
    Draft7Validator.check_schema(schema)
    config = _json(ROOT / name / "function.json")

    assert _errors(Draft7Validator(schema), config) == []

    broken = copy.deepcopy(config)
    broken["bindings"][0]["direction"] = "sideways"
    assert _errors(Draft7Validator(schema), broken) != [], "the schema must be able to refuse a binding"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_json_queues_and_directions(name: str) -> None:
    config = _json(ROOT / name / "function.json")
    bindings = {binding["name"]: binding for binding in config["bindings"]}

    assert config.get("scriptFile", "__init__.py") == "__init__.py"
    assert "disabled" not in config or config["disabled"] is False
    assert set(bindings) == {"msg", "result"}
    trigger, result = bindings["msg"], bindings["result"]
    assert (trigger["type"], trigger["direction"]) == ("queueTrigger", "in")
    assert trigger["queueName"] == TRIGGER_QUEUES[name]
    assert (result["type"], result["direction"]) == ("queue", "out")
    assert result["queueName"] == "%BACKUP_RESULTS_QUEUE%"
    assert {binding["connection"] for binding in bindings.values()} == {"AzureWebJobsStorage"}


def test_only_the_three_classic_functions_exist() -> None:
    function_dirs = sorted(path.parent.name for path in ROOT.glob("*/function.json"))

    assert function_dirs == sorted((*FUNCTIONS, HTTP_FUNCTION))
    assert not (ROOT / "function_app.py").exists(), "it would switch the worker to the decorator model"


LOCAL_SETTINGS_SCHEMA = SCHEMASTORE / "local.settings.json"


def test_schemastore_fixtures_are_not_git_ignored() -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        [git, "check-ignore", "--quiet", str(LOCAL_SETTINGS_SCHEMA.relative_to(ROOT))], cwd=ROOT, check=False
    )
    assert ignored.returncode == 1, "git ignores it"


def test_local_settings_sample_is_valid_and_names_every_queue_setting() -> None:
    sample_path = ROOT / "local.settings.sample.json"
    if not sample_path.exists():
        pytest.skip("local.settings.sample.json is not written yet")
    if not LOCAL_SETTINGS_SCHEMA.exists():
        pytest.fail(f"{LOCAL_SETTINGS_SCHEMA.relative_to(ROOT)} is missing: is it git-ignored?")
    schema = _json(LOCAL_SETTINGS_SCHEMA)
    Draft4Validator.check_schema(schema)
    sample = _json(sample_path)

    assert _errors(Draft4Validator(schema), sample) == []
    values = sample["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    referenced = {
        match
        for name in (*FUNCTIONS, HTTP_FUNCTION)
        for match in re.findall(r"%(\w+)%", (ROOT / name / "function.json").read_text(encoding="utf-8"))
    }
    assert referenced == {"BACKUP_REQUESTS_QUEUE", "BACKUP_STATUS_QUEUE", "BACKUP_RESULTS_QUEUE"}
    assert referenced <= set(values)
    assert "AzureWebJobsStorage" in values
