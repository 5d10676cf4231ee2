"""The parsed inventory the layer ships (inventory.json): it loads to exactly the inventory its YAML
validates to, a bad file fails the build as it would fail at load, and loading it needs no YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lethe.errors import InventoryError
from lethe.inventory import compile_inventory, load_inventory, main, parse_compiled_inventory

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "config" / "inventory.yaml"


def test_the_parsed_form_loads_to_the_same_inventory_as_the_yaml(tmp_path: Path) -> None:
    # Given the repository's inventory compiled as the layer build compiles it
    target = tmp_path / "inventory.json"
    assert main([str(SOURCE), str(target)]) == 0

    # When both forms load
    from_yaml = load_inventory(SOURCE)
    from_json = load_inventory(target)

    # Then they are equal, field for field, and so is every dump of them
    assert from_json == from_yaml
    assert from_json.model_dump(mode="json") == from_yaml.model_dump(mode="json")
    assert set(from_json.datasets) == set(from_yaml.datasets)


def test_yaml_dates_become_iso_text_that_validates_the_same() -> None:
    # A YAML timestamp is not JSON: it is written as the text it stands for.
    compiled = json.loads(compile_inventory(SOURCE.read_text(encoding="utf-8")))
    assert compiled == json.loads(json.dumps(compiled))
    assert compiled["version"] == 1


def test_a_bad_inventory_fails_the_build_with_the_loaders_message(tmp_path: Path) -> None:
    # Given an inventory whose dataset misspells a field
    bad = SOURCE.read_text(encoding="utf-8").replace("on_erasure:", "on_erasur:", 1)
    source = tmp_path / "inventory.yaml"
    source.write_text(bad, encoding="utf-8")
    target = tmp_path / "inventory.json"

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


def test_a_parsed_form_that_is_not_json_or_not_valid_is_refused() -> None:
    with pytest.raises(InventoryError, match="not valid JSON"):
        parse_compiled_inventory("{version: 1")
    with pytest.raises(InventoryError, match="must be a mapping"):
        parse_compiled_inventory("[1, 2]")
    with pytest.raises(InventoryError, match="required field is missing"):
        parse_compiled_inventory('{"version": 1}')


def test_a_wrong_number_of_arguments_is_a_usage_error() -> None:
    assert main([str(SOURCE)]) == 2


def test_loading_the_parsed_form_never_imports_yaml(tmp_path: Path) -> None:
    target = tmp_path / "inventory.json"
    assert main([str(SOURCE), str(target)]) == 0
    code = (
        "import sys\n"
        "from lethe.inventory import load_inventory\n"
        f"inventory = load_inventory({str(target)!r})\n"
        "assert inventory.datasets, 'empty'\n"
        "assert 'yaml' not in sys.modules, 'yaml loaded'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
