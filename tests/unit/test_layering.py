"""The house's floors, read from the source: handlers -> api -> logic -> data, never back up.

Every module of the lethe package (and every function's app.py) is parsed with `ast`; every import
counts, wherever it stands (module scope, inside a function, under `if TYPE_CHECKING:`).
- data imports nothing from lethe.logic, lethe.api or lethe.handlers;
- logic imports nothing from lethe.api or lethe.handlers, and none of pynamodb, boto3, botocore or
  lethe.aws (clients, retries and conditional writes belong to the data floor);
- api imports nothing from lethe.handlers;
- the top-level modules (settings, errors, domain, inventory, keys, aws, service_data, durations) import no
  floor;
- a function's app.py enters through lethe.handlers (or a top-level module), never a lower floor.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "lethe" / "lethe"
FUNCTIONS = ROOT / "functions"

FLOORS = ("handlers", "api", "logic", "data")
TOP_LEVEL = ("settings", "errors", "domain", "inventory", "keys", "aws", "service_data", "durations")
STORAGE_LIBRARIES = ("pynamodb", "boto3", "botocore", "lethe.aws")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imported_names(module: str, source: str, *, is_package: bool = False) -> list[tuple[str, ...]]:
    """Per import statement, the module names it may load: `import a.b` gives (a.b,); `from a import b`
    gives (a, a.b), since b may be a module of package a."""
    package = module if is_package else module.rpartition(".")[0]
    statements: list[tuple[str, ...]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            statements.extend((alias.name,) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            statements.append((target, *(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")))
    return statements


def _floor_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "functions":
        return "function"
    if len(parts) >= 2 and parts[0] == "lethe" and parts[1] in FLOORS:
        return parts[1]
    if len(parts) == 2 and parts[0] == "lethe" and parts[1] in TOP_LEVEL:
        return "top"
    return None


def _forbidden(floor: str | None) -> tuple[str, ...]:
    above = {
        "data": ("lethe.logic", "lethe.api", "lethe.handlers"),
        "logic": ("lethe.api", "lethe.handlers"),
        "api": ("lethe.handlers",),
        "top": tuple(f"lethe.{f}" for f in FLOORS),
        "function": ("lethe.api", "lethe.logic", "lethe.data"),
    }
    return above.get(floor or "", ())


def violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """The imports of `module` that break a rule of its floor, as "module -> import" lines (for
    `from a import b`, a when a itself is forbidden, else each forbidden a.b)."""
    floor = _floor_of(module)
    prefixes = _forbidden(floor)
    if floor == "logic":
        prefixes += STORAGE_LIBRARIES

    def bad(name: str) -> bool:
        return any(_within(name, prefix) for prefix in prefixes)

    broken: set[str] = set()
    for target, *members in imported_names(module, source, is_package=is_package):
        if bad(target):
            broken.add(target)
        else:
            broken.update(name for name in members if bad(name))
    return sorted(f"{module} -> {name}" for name in broken)


def _modules() -> list[tuple[str, Path, bool]]:
    found: list[tuple[str, Path, bool]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(relative.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found.append((".".join(parts), path, is_package))
    for app in sorted(FUNCTIONS.glob("*/app.py")):
        found.append((f"functions.{app.parent.name}.app", app, False))
    return found


MODULES = _modules()


def test_the_tree_is_found() -> None:
    names = {name for name, _, _ in MODULES}
    assert {"lethe.logic.fulfilment", "lethe.data.writes", "lethe.api.errors", "lethe.aws"} <= names
    assert sum(1 for name in names if name.startswith("functions.")) == len(list(FUNCTIONS.glob("*/app.py"))) > 0


def test_no_import_runs_back_up_a_floor() -> None:
    broken = [
        line for name, path, is_package in MODULES for line in violations(name, path.read_text(), is_package=is_package)
    ]
    assert broken == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("lethe.data.stores", "from lethe.logic.masking import anonymize\n", "lethe.logic.masking"),
        ("lethe.data.stores", "from lethe.logic import expiry\n", "lethe.logic"),
        ("lethe.data.stores", "from ..api import errors\n", "lethe.api"),
        ("lethe.data", "from .. import handlers\n", "lethe.handlers"),
        (
            "lethe.logic.retention",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pynamodb.models import Model\n",
            "pynamodb.models",
        ),
        ("lethe.logic.replay", "def f():\n    import boto3\n", "boto3"),
        ("lethe.logic.exports", "import botocore.exceptions\n", "botocore.exceptions"),
        ("lethe.logic.exports", "from lethe import aws, settings\n", "lethe.aws"),
        ("lethe.logic.exports", "from ..aws import client\n", "lethe.aws"),
        ("lethe.logic.exports", "from lethe.api.errors import x\n", "lethe.api.errors"),
        ("lethe.api.public", "from lethe.handlers import public_api\n", "lethe.handlers"),
        ("lethe.settings", "from lethe.data import models\n", "lethe.data"),
        ("lethe.inventory", "import lethe.logic.fulfilment\n", "lethe.logic.fulfilment"),
        ("functions.public_api.app", "from lethe.logic import intake\n", "lethe.logic"),
    ],
)
def test_a_broken_rule_is_reported(module: str, source: str, expected: str) -> None:
    is_package = module == "lethe.data"
    assert violations(module, source, is_package=is_package) == [f"{module} -> {expected}"]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("lethe.data.stores", "from lethe.data.masking import anonymize\nimport boto3\nfrom lethe.aws import client\n"),
        (
            "lethe.logic.retention",
            "from lethe.data import writes\nfrom lethe.logic import deadlines\nfrom lethe import settings\n",
        ),
        ("lethe.logic.retention", "import lethe.awsome\n"),  # a name that merely starts like a forbidden one
        ("lethe.api.public", "from lethe.logic import intake\nfrom lethe.data import requests\n"),
        ("lethe.handlers.public_api", "from lethe.api import public\nimport boto3\n"),
        ("lethe.aws", "import boto3\nfrom lethe.settings import get_settings\n"),
        (
            "functions.public_api.app",
            "from lethe.handlers import public_api\nfrom lethe.settings import adopt_invoke_url\n",
        ),
    ],
)
def test_an_allowed_import_is_not_reported(module: str, source: str) -> None:
    assert violations(module, source) == []
