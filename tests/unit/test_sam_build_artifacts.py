"""What `sam build` (`make sam-build`) leaves in .aws-sam/build is what Lambda will run: every function's
artifact holds its own folder only, no virtual environment is copied, and each function imports in a
fresh interpreter whose path is the standard library, its artifact and its layers, nothing else.

Skipped until a build exists (LETHE_SAM_BUILD_DIR, or .aws-sam/build in the repository). The layers are
built for Lambda's arm64: on another machine the one compiled package with no pure-Python fallback,
pydantic_core, is this interpreter's copy of the same version, and the layers' own compiled files are
checked to be arm64 instead of loaded."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lethe.service_data import write_endpoints
from lethe_local.template import load_template

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("LETHE_SAM_BUILD_DIR") or REPO / ".aws-sam" / "build")
ELF_AARCH64 = 183  # e_machine of an arm64 ELF file
HANDLER_MODULE = re.compile(r"from lethe\.handlers import (\w+)")

pytestmark = pytest.mark.skipif(
    not (BUILD / "template.yaml").is_file(), reason=f"no sam build at {BUILD} (make sam-build)"
)

# Runs in `python -E -s -S`: sys.path holds only the standard library until the script adds, per function,
# its artifact and its layers (and removes the previous function's artifact and `app`). Prints, per
# function, the files of modules loaded from anywhere else (there should be none).
SANDBOX = """
import importlib, json, sys, sysconfig
stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
found = {}
for name, paths, handler in json.loads(sys.argv[1]):
    sys.path[:] = [*paths, *(p for p in sys.path if p.startswith(stdlib))]
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert app.__file__.startswith(paths[0]), (name, app.__file__)
    assert callable(app.lambda_handler), name
    importlib.import_module(handler)
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    found[name] = sorted(f for f in files if f and not f.startswith(tuple(paths) + stdlib))
print(json.dumps(found))
"""


def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((BUILD / "template.yaml").read_text(encoding="utf-8"))
    return loaded


def _functions() -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in _template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _layers_of(properties: dict[str, Any]) -> list[str]:
    shared = _template().get("Globals", {}).get("Function", {}).get("Layers", [])
    return [layer["Ref"] for layer in [*shared, *properties.get("Layers", [])]]


def _host_pydantic_core(tmp_path: Path) -> list[str]:
    """On a machine that is not arm64: a folder holding only this interpreter's pydantic_core, of the
    version the layer ships, put before the layer on the sandbox's path."""
    if platform.machine() in ("aarch64", "arm64"):
        return []
    import pydantic_core

    shipped = next((BUILD / "LetheLayer" / "python").glob("pydantic_core-*.dist-info")).name
    assert shipped == f"pydantic_core-{pydantic_core.__version__}.dist-info", "rebuild: the layer's pydantic differs"
    shim = tmp_path / "host-pydantic-core"
    shim.mkdir()
    (shim / "pydantic_core").symlink_to(Path(pydantic_core.__file__).parent)
    return [str(shim)]


def test_no_virtual_environment_or_repository_folder_is_copied() -> None:
    copied = [p for p in BUILD.rglob("*") if p.name == "pyvenv.cfg" or ".venv" in p.parts or p.name == ".git"]
    assert copied == []
    sources = load_template(REPO / "template.yaml")["Resources"]
    for name, properties in _functions().items():
        # Each artifact holds exactly the files of the function's own folder (functions/<name>/).
        source = REPO / sources[name]["Properties"]["CodeUri"]
        shipped = sorted(
            str(p.relative_to(BUILD / properties["CodeUri"])) for p in (BUILD / properties["CodeUri"]).rglob("*")
        )
        assert shipped == sorted(str(p.relative_to(source)) for p in source.rglob("*") if "__pycache__" not in p.parts)


def test_the_layers_compiled_files_are_for_lambdas_arm64(tmp_path: Path) -> None:
    for layer in ("LetheLayer", "ParquetLayer"):
        compiled = list((BUILD / layer / "python").rglob("*.so*"))
        assert compiled, layer
        wrong = [str(p) for p in compiled if int.from_bytes(p.read_bytes()[18:20], "little") != ELF_AARCH64]
        assert wrong == [], wrong
    # The inventory ships at /opt/config/inventory.yaml as written, and compiled where LETHE_INVENTORY says.
    assert (BUILD / "LetheLayer" / "config" / "inventory.yaml").read_bytes() == (
        REPO / "config" / "inventory.yaml"
    ).read_bytes()
    variables = _template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["LETHE_INVENTORY"] == "/opt/config/inventory.pickle"
    assert (BUILD / "LetheLayer" / "config" / "inventory.pickle").is_file()
    # botocore's endpoint table, cut from the layer's own botocore's, where LETHE_SERVICE_DATA says.
    assert variables["LETHE_SERVICE_DATA"] == "/opt/config/botocore"
    layer_botocore = BUILD / "LetheLayer" / "python" / "botocore" / "data" / "endpoints.json"
    expected = write_endpoints(layer_botocore, tmp_path / "botocore").read_bytes()
    assert (BUILD / "LetheLayer" / "config" / "botocore" / "endpoints.json").read_bytes() == expected


def test_every_function_imports_from_its_artifact_and_layers_alone(tmp_path: Path) -> None:
    shim = _host_pydantic_core(tmp_path)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        # The compiled form, loaded by the layer's own pydantic: the release that compiled it must match.
        "LETHE_INVENTORY": str(BUILD / "LetheLayer" / "config" / "inventory.pickle"),
        "LETHE_SERVICE_DATA": str(BUILD / "LetheLayer" / "config" / "botocore"),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    # One interpreter per set of layers: within it each function gets its own artifact on the path.
    groups: dict[tuple[str, ...], list[Any]] = {}
    for name, properties in _functions().items():
        artifact = BUILD / properties["CodeUri"]
        assert properties["Handler"] == "app.lambda_handler", name
        found = HANDLER_MODULE.search((artifact / "app.py").read_text(encoding="utf-8"))
        assert found is not None, name
        layers = tuple(str(BUILD / layer / "python") for layer in _layers_of(properties))
        paths = [str(artifact), *shim, *layers]
        groups.setdefault(layers, []).append([name, paths, f"lethe.handlers.{found.group(1)}"])
    assert sum(len(group) for group in groups.values()) == len(_functions()) >= 16
    for group in groups.values():
        done = subprocess.run(
            [
                sys.executable,
                *("-E", "-s", "-S"),  # no PYTHON* variables, no site-packages: the standard library only
                # Bytecode goes here, never into the artifacts (sam deploy would zip it).
                *("-X", f"pycache_prefix={tmp_path / 'pycache'}"),
                *("-c", SANDBOX, json.dumps(group)),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {name: [] for name, _, _ in group}
