"""Import a function's script and check its signature against function.json, as the Python worker does.

The worker refuses a function whose parameter names differ from its binding names, that
annotates an ``in`` binding with ``func.Out`` or an ``out`` binding without it, or whose
annotations the azure-functions converters reject. The same checks run here, with the same
wording, so a mismatch fails locally instead of after a deployment.

Each function folder is imported as a package under its folder name, with the app root first on
``sys.path``, so that ``from shared import x`` resolves as it does in Azure.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import azure.functions as func

from devtools.funchost.errors import FunctionLoadError
from devtools.funchost.metadata import HTTP, HTTP_TRIGGER, QUEUE, RETURN, Binding, FunctionMetadata

__all__ = ["LoadedFunction", "TriggerKind", "load_function"]

_CONTEXT = "context"


class TriggerKind(Enum):
    """How the trigger parameter receives the message (or, for an HTTP trigger, the request)."""

    MESSAGE = "message"
    TEXT = "str"
    BYTES = "bytes"
    HTTP_REQUEST = "http"


@dataclass(frozen=True)
class LoadedFunction:
    metadata: FunctionMetadata
    func: Callable[..., Any]
    is_async: bool
    trigger_kind: TriggerKind
    out_bindings: tuple[Binding, ...]
    """Output bindings passed as ``func.Out`` parameters."""
    return_binding: Binding | None
    wants_context: bool

    @property
    def name(self) -> str:
        return self.metadata.name


def load_function(metadata: FunctionMetadata, app_root: Path) -> LoadedFunction:
    name = metadata.name
    # An HTTP trigger answers through one http output; queue triggers write queue outputs.
    output_type = HTTP if metadata.is_http else QUEUE
    unsupported = [
        binding.name
        for binding in metadata.bindings
        if not binding.is_trigger and not (binding.type == output_type and binding.direction == "out")
    ]
    if unsupported:
        raise FunctionLoadError(
            name, f"this host binds only {output_type} outputs to a {metadata.trigger.type}; "
            f"unsupported bindings: {unsupported}",
        )
    entry = _import_entry_point(metadata, app_root)
    try:
        annotations = typing.get_type_hints(entry)
    except Exception as exc:  # any error evaluating the user's annotations
        raise FunctionLoadError(name, f"cannot evaluate the annotations of {metadata.entry_point}(): {exc}") from exc
    params = dict(inspect.signature(entry).parameters)
    bound = {binding.name: binding for binding in metadata.bindings if binding.name != RETURN}
    wants_context = _CONTEXT in params and _CONTEXT not in bound
    if wants_context:
        _check_context(name, annotations.get(_CONTEXT))
        params.pop(_CONTEXT)
    variadic = [p.name for p in params.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if variadic:
        raise FunctionLoadError(name, f"*args and **kwargs are not supported: {variadic}")
    if set(params) - set(bound):
        raise FunctionLoadError(
            name,
            "the following parameters are declared in Python but not in function.json: "
            + repr(set(params) - set(bound)),
        )
    if set(bound) - set(params):
        raise FunctionLoadError(
            name,
            "the following parameters are declared in function.json but not in Python: "
            + repr(set(bound) - set(params)),
        )
    trigger_kind = TriggerKind.MESSAGE
    for binding in bound.values():
        kind = _check_parameter(name, binding, annotations)
        if binding.is_trigger:
            trigger_kind = kind
    return_binding = next((b for b in metadata.bindings if b.name == RETURN), None)
    if return_binding is not None and "return" in annotations:
        _check_return_type(name, return_binding, annotations["return"])
    return LoadedFunction(
        metadata=metadata,
        func=entry,
        is_async=inspect.iscoroutinefunction(entry),
        trigger_kind=trigger_kind,
        out_bindings=tuple(b for b in bound.values() if b.direction == "out"),
        return_binding=return_binding,
        wants_context=wants_context,
    )


def _import_entry_point(metadata: FunctionMetadata, app_root: Path) -> Callable[..., Any]:
    root = str(app_root.resolve())
    if not sys.path or sys.path[0] != root:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
    package = metadata.directory.name
    module_name = package if metadata.script_file.stem == "__init__" else f"{package}.{metadata.script_file.stem}"
    _forget_foreign_module(package, Path(root))
    # Files written since the last import (tests write apps on the fly) are invisible without this.
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything at import time
        raise FunctionLoadError(metadata.name, f"importing {module_name} failed: {exc!r}") from exc
    entry = getattr(module, metadata.entry_point, None)
    if entry is None or not callable(entry):
        raise FunctionLoadError(
            metadata.name, f"function {metadata.entry_point}() is not present in {metadata.script_file.name}"
        )
    return typing.cast(Callable[..., Any], entry)


def _forget_foreign_module(package: str, root: Path) -> None:
    """Drop an already imported module of the same name that belongs to another app root."""
    module = sys.modules.get(package)
    location = getattr(module, "__file__", None) if module is not None else None
    if module is None or (location is not None and Path(location).resolve().is_relative_to(root)):
        return
    for loaded in [name for name in sys.modules if name == package or name.startswith(package + ".")]:
        del sys.modules[loaded]


def _check_context(function: str, annotation: object) -> None:
    if annotation is not None and not (isinstance(annotation, type) and annotation.__name__ == "Context"):
        raise FunctionLoadError(
            function,
            f'the "context" parameter is expected to be of type azure.functions.Context, got "{annotation!r}"',
        )


def _is_out(annotation: object) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and origin.__name__ == "Out"


def _check_parameter(function: str, binding: Binding, annotations: dict[str, Any]) -> TriggerKind:
    if binding.name not in annotations:
        return TriggerKind.MESSAGE
    annotation = annotations[binding.name]
    is_out = _is_out(annotation)
    if binding.direction == "out" and not is_out:
        raise FunctionLoadError(
            function,
            f'binding {binding.name} is declared to have the "out" direction, '
            "but its annotation in Python is not a subclass of azure.functions.Out",
        )
    if binding.direction == "in" and is_out:
        raise FunctionLoadError(
            function,
            f'binding {binding.name} is declared to have the "in" direction in function.json, '
            "but its annotation is azure.functions.Out in Python",
        )
    if is_out:
        args = typing.get_args(annotation)
        if len(args) != 1:
            raise FunctionLoadError(function, f"binding {binding.name} has invalid Out annotation {annotation!r}")
        _check_output_type(function, binding, args[0])
        return TriggerKind.MESSAGE
    return _trigger_kind(function, binding, annotation)


def _trigger_kind(function: str, binding: Binding, annotation: object) -> TriggerKind:
    is_http = binding.type == HTTP_TRIGGER
    # The worker treats str and bytes as a "generic" binding that passes the data through.
    if annotation in (str, bytes) and is_http:
        raise FunctionLoadError(function, f"this host passes an HTTP trigger as func.HttpRequest, not {annotation!r}")
    if annotation is str:
        return TriggerKind.TEXT
    if annotation is bytes:
        return TriggerKind.BYTES
    converter = _converter(binding.type)
    if isinstance(annotation, type) and converter.check_input_type_annotation(annotation):
        return TriggerKind.HTTP_REQUEST if is_http else TriggerKind.MESSAGE
    shown = getattr(annotation, "__name__", repr(annotation))
    raise FunctionLoadError(
        function,
        f'type of {binding.name} binding in function.json "{binding.type}" does not match its Python '
        f'annotation "{shown}"',
    )


def _check_output_type(function: str, binding: Binding, pytype: object) -> None:
    if pytype in (str, bytes):
        return
    converter = _converter(binding.type)
    ok = isinstance(pytype, type) or typing.get_origin(pytype) is not None
    if not ok or not converter.check_output_type_annotation(pytype):
        raise FunctionLoadError(
            function, f'binding {binding.name}: Python type "{pytype!r}" does not match binding type "{binding.type}"'
        )


def _check_return_type(function: str, binding: Binding, annotation: object) -> None:
    # The worker accepts only a plain class here: ``-> list[str]`` is refused, ``func.Out[...]`` allows it.
    if _is_out(annotation):
        raise FunctionLoadError(function, "return annotation should not be azure.functions.Out")
    if not isinstance(annotation, type):
        raise FunctionLoadError(function, f"has invalid non-type return annotation {annotation!r}")
    if annotation not in (str, bytes) and not _converter(binding.type).check_output_type_annotation(annotation):
        raise FunctionLoadError(
            function, f'Python return annotation "{annotation.__name__}" does not match binding type "{binding.type}"'
        )


def _converter(binding_type: str) -> Any:
    """The azure-functions converter the worker would consult for this binding type."""
    registry = func.get_binding_registry()  # type: ignore[no-untyped-call]  # untyped in azure-functions
    return registry.get(binding_type)
