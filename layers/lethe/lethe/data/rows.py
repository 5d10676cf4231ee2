"""Rows inside objects: JSON Lines and CSV read from a byte stream one row at a time, with the raw
bytes of every row kept, so a row that is left alone is written back byte for byte and a row that
does not parse is kept as it is (and counted), never dropped.

Only the standard library: the API functions carry this module too. Parquet is not read here.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from lethe.inventory import ObjectFormat

CHUNK_BYTES = 2 * 1024 * 1024


class ByteStream(Protocol):
    def read(self, amt: int | None = ..., /) -> bytes: ...


class Row:
    """One row as read: its raw bytes (with the line ending), and its fields when it parsed
    (an empty dict for structure such as a header or a blank line, None when it did not parse)."""

    __slots__ = ("number", "raw", "record")

    def __init__(self, raw: bytes, record: dict[str, Any] | None, number: int) -> None:
        self.raw, self.record, self.number = raw, record, number

    @property
    def parsed(self) -> bool:
        return self.record is not None


def lines(stream: ByteStream, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Physical lines with their line endings, reading `chunk` bytes at a time: memory holds one
    chunk and the longest line, never the object. Every byte read is yielded exactly once."""
    pending = b""
    while True:
        block = stream.read(chunk)
        if not block:
            break
        parts = (pending + block).splitlines(keepends=True)
        # The last piece may be a line cut by the chunk (or a CR whose LF is in the next chunk).
        pending = parts.pop() if parts and not parts[-1].endswith(b"\n") else b""
        yield from parts
    if pending:
        yield pending


_DECODER = json.JSONDecoder()


def _jsonl(stream: ByteStream) -> Iterator[Row]:
    # JSON Lines are UTF-8 (the format says so): decoding each line directly spares json.loads its
    # encoding detection, once per row. A line that is not UTF-8 is a UnicodeDecodeError, a ValueError.
    decode = _DECODER.decode
    for number, raw in enumerate(lines(stream), start=1):
        try:
            value = decode(raw.decode("utf-8"))
        except ValueError:
            # A blank line is nobody's row; anything else that does not parse is kept and counted.
            yield Row(raw, {} if not raw.strip() else None, number)
            continue
        yield Row(raw, value if type(value) is dict else None, number)


def _records(stream: ByteStream) -> Iterator[bytes]:
    """CSV records, which may span lines inside quotes: physical lines are joined until the quotes
    balance (RFC 4180 doubles a quote inside a quoted field, so the count stays even)."""
    pending = b""
    for raw in lines(stream):
        pending += raw
        if pending.count(b'"') % 2 == 0:
            yield pending
            pending = b""
    if pending:
        yield pending


def _csv(stream: ByteStream) -> Iterator[Row]:
    records = _records(stream)
    header_raw = next(records, None)
    if header_raw is None:
        return
    header = next(csv.reader([header_raw.decode("utf-8-sig")]), [])
    yield Row(header_raw, {}, 0)  # the header belongs to nobody and is always kept
    for number, raw in enumerate(records, start=1):
        if not raw.strip():
            yield Row(raw, {}, number)
            continue
        try:
            values = next(csv.reader([raw.decode("utf-8")], strict=True), [])
        except (csv.Error, UnicodeDecodeError):
            yield Row(raw, None, number)
            continue
        if len(values) != len(header):  # a ragged row: whose fields are whose cannot be told
            yield Row(raw, None, number)
            continue
        yield Row(raw, dict(zip(header, values, strict=True)), number)


def read_rows(fmt: ObjectFormat, stream: ByteStream) -> Iterator[Row]:
    """Every row of an object, in order. A row with an empty record is structure (a header, a blank
    line): it is nobody's and is kept. A row whose record is None did not parse."""
    if fmt is ObjectFormat.jsonl:
        return _jsonl(stream)
    if fmt is ObjectFormat.csv:
        return _csv(stream)
    raise NotImplementedError(f"format {fmt.value} is not read by this function")


def _ending(raw: bytes) -> str:
    if raw.endswith(b"\r\n"):
        return "\r\n"
    return "\n" if raw.endswith(b"\n") else ""


def encode_row(fmt: ObjectFormat, row: Row, record: dict[str, Any], header: Iterable[str] | None = None) -> bytes:
    """A changed row, written as its format writes it, with the row's own line ending."""
    ending = _ending(row.raw)
    if fmt is ObjectFormat.jsonl:
        return (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + ending).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=ending)
    names = list(header) if header is not None else list(record)
    writer.writerow(["" if record.get(name) is None else record[name] for name in names])
    return out.getvalue().encode()
