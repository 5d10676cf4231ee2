"""Reads template.yaml: CloudFormation tags, intrinsic functions, function and route maps.

The template is the one source of truth: the local stack and the tests build their tables, queues
and routes from it rather than from a second schema.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"


class TemplateError(Exception):
    """template.yaml cannot be used; the message says what to fix."""


# libyaml's parser when PyYAML has it (its wheels do): the template is parsed once per process, but
# the pure-Python parser takes seconds for it.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):
    pass


def _tag(name: str) -> Callable[[_CfnLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short, _long in {
    "Ref": "Ref",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Join": "Fn::Join",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Condition": "Condition",
    "GetAZs": "Fn::GetAZs",
    "Base64": "Fn::Base64",
}.items():
    _CfnLoader.add_constructor(f"!{_short}", _tag(_long))


_parsed: dict[tuple[Path, int, int], dict[str, Any]] = {}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as data; a copy of what was parsed, so a caller may change its own."""
    try:
        stat = path.stat()
        key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
        if key not in _parsed:
            _parsed[key] = _parse(path)
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror}") from exc
    return copy.deepcopy(_parsed[key])


def _parse(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506  # nosec B506 - SafeLoader subclass
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise TemplateError(f"{path.name}{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path.name} has no Resources section")
    return data


@dataclass
class Route:
    method: str
    path: str
    admin: bool


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    routes: list[Route] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)
    timeout: int = 30

    @property
    def module_path(self) -> Path:
        return self.code_uri / f"{self.handler.rsplit('.', 1)[0]}.py"

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


class Resolver:
    """Evaluates the intrinsic functions the template uses, against physical ids made locally."""

    def __init__(self, template: dict[str, Any], region: str = "us-east-1", account: str = "123456789012"):
        self.template = template
        self.region, self.account = region, account
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()
        }
        self.physical: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template.get("Conditions", {})[name]))

    def included(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return cond is None or self.condition(cond)

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "lethe-local",
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise TemplateError(f"template.yaml refers to {name!r}, which is not a parameter or a created resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(
                f"template.yaml asks for {logical_id}.{attribute}, which is not known locally"
            ) from None

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(logical, attr)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.value(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = self.value(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.value(parts))
        return {k: self.value(v) for k, v in node.items()}

    def _sub(self, arg: Any) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return self.get_att(logical, attr)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function with its routes, SQS sources and schedules."""
    found: dict[str, FunctionSpec] = {}
    global_timeout = int(template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        if "CodeUri" not in props or "Handler" not in props:
            raise TemplateError(f"template.yaml: {logical_id} needs CodeUri and Handler")
        spec = FunctionSpec(
            logical_id, REPO / props["CodeUri"], props["Handler"], timeout=int(props.get("Timeout", global_timeout))
        )
        for event in (props.get("Events") or {}).values():
            kind, eprops = event.get("Type"), event.get("Properties", {})
            if kind == "Api":
                admin = (eprops.get("Auth") or {}).get("Authorizer") == "AWS_IAM"
                spec.routes.append(Route(eprops["Method"].upper(), eprops["Path"], admin))
            elif kind == "SQS":
                queue = eprops["Queue"]
                spec.queues.append(queue["Fn::GetAtt"][0] if isinstance(queue, dict) else str(queue))
            elif kind == "Schedule":
                spec.schedules.append(str(eprops.get("Schedule")))
        if not spec.module_path.is_file():
            raise TemplateError(
                f"template.yaml: {logical_id} points at {spec.module_path.relative_to(REPO)}, which does not exist"
            )
        found[logical_id] = spec
    return found
