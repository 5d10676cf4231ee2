"""The conditional-write seam of lethe.data.writes against the real ControlTable on moto."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def records(aws: Any) -> Any:
    from lethe.data.models import ControlRecord

    return ControlRecord


def test_a_missing_record_reads_as_none_and_a_saved_one_reads_back(records: Any) -> None:
    from lethe.data.writes import get_or_none, save_if

    assert get_or_none(records, "TEST", "a") is None
    assert save_if(records("TEST", "a", at="one"), records.pk.does_not_exist()) is True
    found = get_or_none(records, "TEST", "a")
    assert found is not None and found.at == "one"


def test_a_refused_condition_is_false_and_writes_nothing(records: Any) -> None:
    from lethe.data.writes import delete_if, get_or_none, save_if, update_if

    assert save_if(records("TEST", "b", at="first"), records.pk.does_not_exist())
    assert save_if(records("TEST", "b", at="second"), records.pk.does_not_exist()) is False
    row = get_or_none(records, "TEST", "b")
    assert row is not None and row.at == "first"
    assert update_if(row, [records.at.set("changed")], records.at == "not it") is False
    assert delete_if(row, records.at == "not it") is False
    again = get_or_none(records, "TEST", "b")
    assert again is not None and again.at == "first"
    assert update_if(again, [records.at.set("changed")], records.at == "first") is True
    assert again.at == "changed"
    assert delete_if(again, records.at == "changed") is True
    assert get_or_none(records, "TEST", "b") is None


def test_a_fault_that_is_not_a_refusal_propagates(records: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pynamodb.exceptions import PutError

    from lethe.data.writes import save_if

    monkeypatch.setattr(records.Meta, "table_name", "NoSuchTable")
    with pytest.raises(PutError):
        save_if(records("TEST", "c"), records.pk.does_not_exist())
