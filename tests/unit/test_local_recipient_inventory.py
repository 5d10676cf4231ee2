"""The local stack on another port points the demo map's webhook to its own receiver, not to port 3000."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lethe.settings import get_settings
from lethe_local.recipient_receiver import point_inventory_here

MAP = (
    'recipients: [{name: UK, notify: {webhook: "http://127.0.0.1:3000/_local/recipients/cafex-uk", secret: S}}]\n'
    'elsewhere: "http://127.0.0.1:3000/requests"\n'
)


@pytest.fixture
def data_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    source = tmp_path / "map.yaml"
    source.write_text(MAP, encoding="utf-8")
    monkeypatch.setenv("LETHE_INVENTORY", str(source))
    get_settings.cache_clear()
    yield source
    get_settings.cache_clear()


def test_on_another_port_the_receivers_webhooks_name_that_port_and_nothing_else_changes(
    data_map: Path, tmp_path: Path
) -> None:
    copy = point_inventory_here(3123, tmp_path / "local")
    assert copy == tmp_path / "local" / "inventory.yaml"
    assert copy.read_text(encoding="utf-8") == MAP.replace("3000/_local/", "3123/_local/")
    assert "http://127.0.0.1:3000/requests" in copy.read_text(encoding="utf-8")
    assert os.environ["LETHE_INVENTORY"] == str(copy)
    assert data_map.read_text(encoding="utf-8") == MAP


def test_on_port_3000_or_with_no_webhook_to_the_receiver_the_map_is_used_as_it_is(
    data_map: Path, tmp_path: Path
) -> None:
    assert point_inventory_here(3000, tmp_path / "local") is None
    data_map.write_text('elsewhere: "http://127.0.0.1:3000/requests"\n', encoding="utf-8")
    assert point_inventory_here(3123, tmp_path / "local") is None
    assert os.environ["LETHE_INVENTORY"] == str(data_map)
    assert not (tmp_path / "local").exists()
