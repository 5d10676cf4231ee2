"""Rows inside objects (lethe.data.rows): every byte read is given back once, rows split at chunk
edges and inside quoted CSV fields are whole, and what does not parse is kept and marked."""

from __future__ import annotations

import io
import json

import pytest

from lethe.data.rows import Row, encode_row, lines, read_rows
from lethe.inventory import ObjectFormat


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_lines_give_back_every_byte_once_whatever_the_chunk(chunk: int) -> None:
    data = b'{"a": 1}\n{"b": 2}\r\n\n{"c": "\xc3\xa9"}\rtail-without-newline'
    got = list(lines(io.BytesIO(data), chunk=chunk))
    assert b"".join(got) == data
    assert all(part.endswith((b"\n", b"\r")) for part in got[:-1])


def test_jsonl_rows_parse_and_keep_what_does_not() -> None:
    data = b'{"reporter_email": "a@x.org", "n": 1}\n{broken\n\n[1, 2]\n\xff\xfe\n{"n": 2}'
    rows = list(read_rows(ObjectFormat.jsonl, io.BytesIO(data)))
    assert [r.record for r in rows] == [{"reporter_email": "a@x.org", "n": 1}, None, {}, None, None, {"n": 2}]
    assert b"".join(r.raw for r in rows) == data


def test_csv_rows_keep_quoted_newlines_and_mark_ragged_rows() -> None:
    data = (
        b"reporter_email,console_log,submitted_at\r\n"
        b'a@x.org,"line one\r\nline two, with ""quotes""",2026-01-01\r\n'
        b"ragged,row\r\n"
        b"b@x.org,plain,2026-02-01\r\n"
    )
    rows = list(read_rows(ObjectFormat.csv, io.BytesIO(data)))
    assert [r.record for r in rows] == [
        {},
        {
            "reporter_email": "a@x.org",
            "console_log": 'line one\r\nline two, with "quotes"',
            "submitted_at": "2026-01-01",
        },
        None,
        {"reporter_email": "b@x.org", "console_log": "plain", "submitted_at": "2026-02-01"},
    ]
    assert b"".join(r.raw for r in rows) == data


def test_a_changed_row_keeps_its_format_and_line_ending() -> None:
    csv_row = Row(
        b"a@x.org,secret,2026-01-01\r\n", {"reporter_email": "a@x.org", "console_log": "secret", "at": "x"}, 1
    )
    masked = {"reporter_email": "tok_1", "at": "x"}  # console_log removed: an empty cell, the column stays
    assert encode_row(ObjectFormat.csv, csv_row, masked, header=["reporter_email", "console_log", "at"]) == (
        b"tok_1,,x\r\n"
    )
    json_row = Row(b'{"e": "a@x.org"}\n', {"e": "a@x.org"}, 1)
    assert json.loads(encode_row(ObjectFormat.jsonl, json_row, {"e": "tok_\u00e9"})) == {"e": "tok_\u00e9"}
    assert encode_row(ObjectFormat.jsonl, json_row, {"e": "x"}).endswith(b"\n")


def test_parquet_is_not_read_by_the_line_codec() -> None:
    with pytest.raises(NotImplementedError, match="parquet"):
        read_rows(ObjectFormat.parquet, io.BytesIO(b""))


def test_the_inventory_refuses_what_an_s3_dataset_cannot_do() -> None:
    from lethe.errors import InventoryError
    from lethe.inventory import parse_inventory

    base = {
        "store": "s3",
        "bucket": "LogBucket",
        "prefix": "logs/",
        "format": "jsonl",
        "description": "Logs",
        "controller": "self",
        "subject": {"attribute": "email"},
        "fields": {"email": {"category": "user.contact.email", "erase": "pseudonymize"}},
        "purposes": ["support"],
        "on_erasure": "delete",
    }

    def load(**changes: object) -> None:
        parse_inventory(json.dumps({"version": 1, "datasets": {"logs": {**base, **changes}}}))

    load()  # the contract's shape loads
    load(format="parquet")  # read through pyarrow, by the functions that read objects
    with pytest.raises(InventoryError, match=r"^datasets\.logs\.bucket: required field is missing"):
        load(bucket=None)
    with pytest.raises(InventoryError, match=r"^datasets\.logs\.on_erasure: rows inside objects"):
        load(on_erasure="isolate")
    with pytest.raises(InventoryError, match=r"^datasets\.logs\.table: only for store: dynamodb"):
        load(table="SomeTable")
