"""A reader of our Bicep templates: pycep-parser's syntax tree, evaluated as far as it can be offline.

No Bicep compiler can run here, so the tests evaluate the parts of the template language that
``infra/`` uses: literals and ``${…}`` interpolation, parameters (given or their defaults),
variables, loops, resource and module references, module outputs, and the functions listed in
``Evaluator._function``. Anything only Azure knows (an identity's client id, a storage endpoint,
``uniqueString``) becomes a ``Ref``: the declaring file, the resource's symbol and the property
path, so that tests can compare *which* resource a value comes from. A construct this reader does
not know raises ``Unsupported`` rather than being guessed.

pycep renders identifiers as ``BicepElement`` (a ``str`` subclass) and string literals as plain
``str``; that is how a reference is told from a literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser
from pycep.transformer import BicepElement

__all__ = ["Concat", "Evaluator", "Instance", "Ref", "Template", "Unsupported", "concrete", "load", "parsed"]

PUBLIC_CLOUD = "AzureCloud"


class Unsupported(ValueError):
    """The template uses a construct this reader does not evaluate."""


@dataclass(frozen=True)
class Ref:
    """A value known only once deployed: ``symbol.path`` of a resource declared in ``file``."""

    file: str
    symbol: str
    path: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"<{self.file}:{'.'.join((self.symbol, *self.path))}>"


@dataclass(frozen=True)
class Concat:
    """A string interpolation with at least one part known only once deployed."""

    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Instance:
    """One deployed copy of a resource or module: its symbol, its loop variables, its template."""

    template: Template
    symbol: str
    local: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.template.declaration(self.symbol)["type"])

    @property
    def existing(self) -> bool:
        return bool(self.template.declaration(self.symbol).get("existing"))

    def config(self) -> Mapping[str, Any]:
        raw: Mapping[str, Any] = self.template.declaration(self.symbol)["config"]
        return dict(raw["config"]) if "loop_type" in raw else raw

    def value(self, key: str) -> Any:
        return Evaluator(self.template, self.local).value(self.config().get(key))

    @property
    def name(self) -> Any:
        return self.value("name")

    def child(self) -> Template:
        """The template a module instance deploys, with the parameters this instance passes."""
        path = self.template.path.parent / self.template.declaration(self.symbol)["detail"]["path"]
        return Template(path, self.value("params") or {}, parent=self)

    def __repr__(self) -> str:
        return f"Instance({self.template.path.name}:{self.symbol}, {dict(self.local)})"


@cache
def parser() -> BicepParser:
    """One parser for the session: building pycep's Lark parser is the slow part."""
    return BicepParser()


@cache
def parsed(path: Path) -> dict[str, Any]:
    return dict(parser().parse(file_path=path))


@cache
def _expression(text: str) -> Any:
    """One ``${…}`` expression, parsed by wrapping it in a variable declaration."""
    return parser().parse(text=f"var interpolated = {text}\n")["variables"]["interpolated"]["value"]


def load(path: Path, params: Mapping[str, Any] | None = None) -> Template:
    return Template(path, dict(params or {}))


class Template:
    """One parsed ``.bicep`` file with the values of its parameters."""

    def __init__(self, path: Path, params: Mapping[str, Any], parent: Instance | None = None) -> None:
        self.path = path
        self.tree = parsed(path)
        self.parent = parent
        unknown = set(params) - set(self.tree["parameters"])
        if unknown:
            raise Unsupported(f"{path.name} declares no parameter {sorted(unknown)}")
        self.params = dict(params)

    @property
    def scope(self) -> str:
        return str((self.tree.get("globals") or {}).get("scope", {}).get("value", "resourceGroup"))

    def declaration(self, symbol: str) -> Mapping[str, Any]:
        for section in ("resources", "modules"):
            found = self.tree.get(section, {}).get(symbol)
            if found is not None:
                return dict(found)
        raise KeyError(f"{self.path.name} declares no resource or module {symbol!r}")

    def param(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        declared = self.tree["parameters"][name]
        if declared.get("default") is None:
            raise Unsupported(f"{self.path.name}: parameter {name} has no value and no default")
        return Evaluator(self).value(declared["default"])

    def variable(self, name: str) -> Any:
        return Evaluator(self).value(self.tree["variables"][name]["value"])

    def output(self, name: str) -> Any:
        return Evaluator(self).value(self.tree["outputs"][name]["value"])

    def instances(self, symbol: str) -> list[Instance]:
        """Each copy of a resource or module: one, or one per loop item (none when a condition is false)."""
        raw = self.declaration(symbol)["config"]
        if "loop_type" not in raw:
            return [Instance(self, symbol)]
        loop = raw["loop_type"]
        detail = loop["detail"]
        evaluator = Evaluator(self)
        if loop["type"] == "array":
            items = evaluator.value(detail["array_name"])
        elif loop["type"] == "object":
            items = _items(evaluator.value(BicepElement(detail["object_name"])))
        else:
            raise Unsupported(f"{self.path.name}: loop of type {loop['type']}")
        copies = [Instance(self, symbol, {detail["item_name"]: item}) for item in items]
        if raw.get("condition") is not None:
            copies = [copy for copy in copies if Evaluator(self, copy.local).value(raw["condition"])]
        return copies

    def resources(self) -> Iterator[Instance]:
        """Every resource instance of this template and, recursively, of the modules it deploys."""
        for symbol in self.tree["resources"]:
            yield from self.instances(symbol)
        for symbol in self.tree.get("modules", {}):
            for module in self.instances(symbol):
                yield from module.child().resources()

    def modules(self) -> Iterator[Instance]:
        for symbol in self.tree.get("modules", {}):
            for module in self.instances(symbol):
                yield module
                yield from module.child().modules()


def _items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        raise Unsupported(f"items() of {type(value).__name__}")
    return [{"key": key, "value": value[key]} for key in sorted(value, key=str.lower)]


def _key(raw: str) -> str:
    return raw[1:-1] if raw.startswith("'") and raw.endswith("'") else raw


_INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")


class Evaluator:
    """Values of expressions in one template, with loop variables in ``local``."""

    def __init__(self, template: Template, local: Mapping[str, Any] | None = None) -> None:
        self.template = template
        self.local = dict(local or {})

    def value(self, node: Any) -> Any:
        if isinstance(node, BicepElement):
            return self._identifier(str(node))
        if isinstance(node, str):
            return self._string(node)
        if isinstance(node, bool | int | float) or node is None:
            return node
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if isinstance(node, dict):
            if "function" in node and isinstance(node["function"], dict):
                return self._function(node["function"])
            if "operator" in node and isinstance(node["operator"], dict):
                return self._operator(node["operator"])
            if "loop_type" in node:
                return self._loop(node)
            return {self._string(_key(key)): self.value(item) for key, item in node.items()}
        raise Unsupported(f"{self.template.path.name}: syntax node {node!r}")

    def _identifier(self, name: str) -> Any:
        if name in self.local:
            return self.local[name]
        tree = self.template.tree
        if name in tree["parameters"]:
            return self.template.param(name)
        if name in tree["variables"]:
            return self.template.variable(name)
        if name in tree["resources"] or name in tree.get("modules", {}):
            copies = self.template.instances(name)
            if len(copies) != 1:
                raise Unsupported(f"{self.template.path.name}: {name} is a loop; index it")
            return copies[0]
        raise Unsupported(f"{self.template.path.name}: unknown identifier {name!r}")

    def _string(self, text: str) -> Any:
        parts: list[Any] = []
        position = 0
        for match in _INTERPOLATION.finditer(text):
            parts.append(text[position : match.start()])
            parts.append(self.value(_expression(match.group(1))))
            position = match.end()
        parts.append(text[position:])
        if all(isinstance(part, str) for part in parts):
            return "".join(parts)
        return Concat(tuple(part for part in parts if part != ""))

    def _loop(self, node: Mapping[str, Any]) -> list[Any]:
        loop, detail = node["loop_type"], node["loop_type"]["detail"]
        if loop["type"] == "object":
            items = _items(self.value(BicepElement(detail["object_name"])))
        else:
            items = self.value(detail["array_name"])
        evaluated = []
        for item in items:
            inner = Evaluator(self.template, {**self.local, detail["item_name"]: item})
            if node.get("condition") is None or inner.value(node["condition"]):
                evaluated.append(inner.value(node["config"]))
        return evaluated

    def _operator(self, operator: Mapping[str, Any]) -> Any:
        operands = operator["operands"]
        match operator["type"]:
            case "property_accessor":
                return self._access(self.value(operands["operand_1"]), _path(operands["operand_2"]))
            case "index_accessor":
                return self.value(operands["operand_1"])[self.value(operands["operand_2"])]
            case "conditional":
                chosen = "true_value" if self.value(operands["condition"]) else "false_value"
                return self.value(operands[chosen])
        raise Unsupported(f"{self.template.path.name}: operator {operator['type']}")

    def _access(self, base: Any, path: list[str]) -> Any:
        for position, name in enumerate(path):
            if isinstance(base, Instance):
                return _of_instance(base, path[position:])
            if isinstance(base, Ref):
                return Ref(base.file, base.symbol, (*base.path, *path[position:]))
            if not isinstance(base, dict) or name not in base:
                raise Unsupported(f"{self.template.path.name}: no property {name!r} in {base!r}")
            base = base[name]
        return base

    def _function(self, call: Mapping[str, Any]) -> Any:
        kind = call["type"]
        named = {name: self.value(argument) for name, argument in (call.get("parameters") or {}).items()}
        result = self._call(kind, list(named.values()), call, named)
        if "index" in call:
            result = result[call["index"]]
        return result

    def _call(  # noqa: PLR0912 - one branch per function
        self, kind: str, args: list[Any], call: Mapping[str, Any], named: Mapping[str, Any]
    ) -> Any:
        match kind:
            case "environment":
                environment = {"name": PUBLIC_CLOUD, "suffixes": {"storage": "core.windows.net"}}
                return environment[call["property_name"]] if "property_name" in call else environment
            case "subscription" | "tenant":
                return Ref(self.template.path.name, f"{kind}()", (_property_name(call),))
            case "unique_string" | "guid":
                return Ref(self.template.path.name, f"{kind}()", tuple(str(arg) for arg in args))
            case "to_lower":
                return args[0].lower() if isinstance(args[0], str) else args[0]
            case "string":
                return str(args[0]).lower() if isinstance(args[0], bool) else str(args[0])
            case "empty":
                return not args[0]
            case "replace":
                return args[0].replace(args[1], args[2])
            case "split":
                return args[0].split(args[1])
            case "last":
                return args[0][-1]
            case "union":
                merged: dict[str, Any] = {}
                for part in args:
                    merged.update(part)
                return merged
            case "subscription_resource_id":
                names = [arg for arg in args[1:] if arg is not None]
                return f"/subscriptions/{{subscription}}/providers/{args[0]}/{'/'.join(map(str, names))}"
            case "resource_group":
                return {"resourceGroup": named.get("resource_group_name"), "subscription": named.get("subscription_id")}
        raise Unsupported(f"{self.template.path.name}: function {kind}()")


def _property_name(call: Mapping[str, Any]) -> str:
    raw = str(call.get("property_name", ""))
    if raw.startswith("["):  # pycep 0.5.1 renders tenant().tenantId as "[Token('STRING', 'tenantId')]"
        return str(re.findall(r"'([^']*)'", raw)[-1])
    return raw


def _path(node: Any) -> list[str]:
    """``a.b.c`` arrives right-nested: accessor(a, accessor(b, c))."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return [*_path(operands["operand_1"]), *_path(operands["operand_2"])]
    return [str(node)]


def _of_instance(instance: Instance, path: list[str]) -> Any:
    if instance.template.declaration(instance.symbol).get("detail") is not None:  # a module
        if path[0] != "outputs" or len(path) < 2:
            raise Unsupported(f"module {instance.symbol}: only outputs can be read, not {path}")
        child = instance.child()
        return Evaluator(child)._access(child.output(path[1]), path[2:])
    if path == ["name"]:
        return instance.name
    return Ref(instance.template.path.name, instance.symbol, tuple(path))


def concrete(value: Any, resolve: Callable[[Ref], str]) -> str:
    """A setting's text, with each deploy-time ``Ref`` replaced by ``resolve(ref)``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Ref):
        return resolve(value)
    if isinstance(value, Concat):
        return "".join(concrete(part, resolve) for part in value.parts)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    raise Unsupported(f"an app setting must be text, not {value!r}")
