"""The compiled inventory the layer ships (inventory.pickle): it loads to exactly the inventory its YAML
validates to, a bad file fails the build as it would fail at load, loading it needs no YAML and builds
no validator, and a compiled file that holds anything but an inventory is refused before it runs."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from lethe.errors import InventoryError
from lethe.inventory import compile_inventory, load_inventory, main, parse_compiled_inventory

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "config" / "inventory.yaml"


def test_the_compiled_form_loads_to_the_same_inventory_as_the_yaml(tmp_path: Path) -> None:
    # Given the repository's inventory compiled as the layer build compiles it
    target = tmp_path / "inventory.pickle"
    assert main([str(SOURCE), str(target)]) == 0

    # When both forms load
    from_yaml = load_inventory(SOURCE)
    compiled = load_inventory(target)

    # Then they are equal, field for field, and so is every dump of them
    assert compiled == from_yaml
    assert compiled.model_dump(mode="json") == from_yaml.model_dump(mode="json")
    assert set(compiled.datasets) == set(from_yaml.datasets)


def test_a_bad_inventory_fails_the_build_with_the_loaders_message(tmp_path: Path) -> None:
    # Given an inventory whose dataset misspells a field
    bad = SOURCE.read_text(encoding="utf-8").replace("on_erasure:", "on_erasur:", 1)
    source = tmp_path / "inventory.yaml"
    source.write_text(bad, encoding="utf-8")
    target = tmp_path / "inventory.pickle"

    # When it is compiled, then the build fails, nothing is written, and the message is the loader's
    assert main([str(source), str(target)]) == 1
    assert not target.exists()
    with pytest.raises(InventoryError) as compiled:
        compile_inventory(bad)
    with pytest.raises(InventoryError) as loaded:
        load_inventory(source)
    assert str(compiled.value) == str(loaded.value)
    assert "accounts" in str(compiled.value)
    assert "on_erasure" in str(compiled.value)


class _Detonator:
    """What a tampered compiled file could hold: an object whose unpickling calls os.system."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def test_a_compiled_file_naming_anything_but_the_inventory_is_refused_before_it_runs() -> None:
    # Given files that unpickle to a call of os.system, and to another class of Lethe
    from lethe.settings import Settings

    tampered = pickle.dumps((1, pydantic.VERSION, _Detonator()))
    foreign = pickle.dumps((1, pydantic.VERSION, Settings))

    # When they load, then each is refused, naming what it tried to load
    with pytest.raises(InventoryError, match=re.escape("posix.system is not part of an inventory")):
        parse_compiled_inventory(tampered, source="tampered.pickle")
    with pytest.raises(InventoryError, match=re.escape("lethe.settings.Settings is not part of an inventory")):
        parse_compiled_inventory(foreign)


def test_a_compiled_file_that_is_not_one_is_refused() -> None:
    with pytest.raises(InventoryError, match="is not a compiled inventory"):
        parse_compiled_inventory(b"version: 1\n")
    with pytest.raises(InventoryError, match="is not a compiled inventory"):
        parse_compiled_inventory(pickle.dumps([1, 2]))
    with pytest.raises(InventoryError, match="does not hold an inventory"):
        parse_compiled_inventory(pickle.dumps((1, pydantic.VERSION, "datasets")))


def test_a_file_compiled_with_another_pydantic_is_refused_naming_both() -> None:
    # Given the inventory compiled by a build whose pydantic differs from this runtime's
    inventory = load_inventory(SOURCE)
    stale = pickle.dumps((1, "2.0.0", inventory))

    # When it loads, then it is refused, and the message says which releases and what to do
    with pytest.raises(InventoryError) as refused:
        parse_compiled_inventory(stale, source="inventory.pickle")
    assert str(refused.value) == (
        f"inventory.pickle was compiled with pydantic 2.0.0 and this runtime has {pydantic.VERSION}: "
        "build the layer again"
    )


def test_the_layer_compiles_with_the_pydantic_it_ships() -> None:
    # The build compiles with the project's environment and the layer installs its own requirements:
    # they must pin one pydantic, or every function would refuse the compiled inventory at INIT.
    def pin(text: str) -> str:
        found = re.search(r"pydantic==([0-9.]+)", text)
        assert found is not None
        return found.group(1)

    layer = pin((REPO / "layers" / "lethe" / "requirements.txt").read_text(encoding="utf-8"))
    project = pin((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert layer == project == pydantic.VERSION


def test_a_wrong_number_of_arguments_is_a_usage_error() -> None:
    assert main([str(SOURCE)]) == 2


def test_loading_the_compiled_form_imports_no_yaml_and_builds_no_validator(tmp_path: Path) -> None:
    target = tmp_path / "inventory.pickle"
    done = subprocess.run(
        [sys.executable, "-m", "lethe.inventory", str(SOURCE), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    code = (
        "import sys\n"
        "from lethe.inventory import Dataset, Inventory, load_inventory\n"
        f"inventory = load_inventory({str(target)!r})\n"
        "assert inventory.datasets, 'empty'\n"
        "assert 'yaml' not in sys.modules, 'yaml loaded'\n"
        "assert not Inventory.__pydantic_complete__ and not Dataset.__pydantic_complete__, 'validators built'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
