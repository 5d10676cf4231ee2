"""Rows inside Parquet objects, through pyarrow.

pyarrow is imported here, lazily, when a Parquet object is first read: only the functions that read
or rewrite objects (the fulfilment and retention workers, the object indexer) ship it, in a layer of
their own; the API functions import this module through the store and never load pyarrow.

Parquet keeps its footer at the end, so an object is first copied to a spooled temporary file
(memory up to `spool_bytes`, disk beyond), then read one record batch at a time. A rewrite writes
each batch to a new spooled file with ParquetWriter, in the object's own Arrow schema (its metadata
included) and compression: a batch holding nobody's due rows is written as it was read, so every
other row keeps its values and types. Memory holds a batch or two, never the object.

An object pyarrow cannot read is `Unreadable`: the store counts it and leaves it as it is. A
function without pyarrow (the admin API's retention dry run) gets `NotShipped`, which the store
turns into the dataset being unavailable to that function, named in its answer.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from tempfile import SpooledTemporaryFile
from typing import IO, Any

BATCH_ROWS = 8192
COPY_BYTES = 1024 * 1024

Verdict = Callable[[dict[str, Any]], "dict[str, Any] | bool"]


class Unreadable(Exception):
    """The object is not a Parquet file pyarrow can read (no detail of its content)."""


class DoesNotFit(Exception):
    """A masked row does not fit the object's schema (e.g. a token in a numeric column)."""


class NotShipped(Exception):
    """This function does not ship pyarrow (only the workers that read objects do)."""


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow  # lazy on purpose: the API functions never load it
        import pyarrow.parquet
    except ImportError as exc:
        raise NotShipped from exc
    return pyarrow, pyarrow.parquet


def require() -> None:
    """Load pyarrow, or raise NotShipped (before any object is downloaded for nothing)."""
    _arrow()


def spool(stream: Any, spool_bytes: int) -> IO[bytes]:
    """The object's bytes in a spooled temporary file, positioned at its start."""
    out: IO[bytes] = SpooledTemporaryFile(max_size=spool_bytes)  # noqa: SIM115 - the caller closes it
    shutil.copyfileobj(stream, out, COPY_BYTES)
    out.seek(0)
    return out


def _open(source: IO[bytes]) -> Any:
    pa, pq = _arrow()
    try:
        return pq.ParquetFile(source)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise Unreadable from exc


def records(source: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Every row of the object, one batch in memory at a time. Raises Unreadable (possibly after
    some rows, when a later row group is damaged)."""
    for batch in _batches(_open(source)):
        yield from batch.to_pylist()


def _batches(parquet: Any) -> Iterator[Any]:
    """Record batches, never across row groups: a batch is at most one row group's rows, so memory
    holds a row group at most whatever the object's size."""
    pa, _ = _arrow()
    for group in range(parquet.metadata.num_row_groups):
        batches = parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], use_threads=False)
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise Unreadable from exc
            if batch is None:
                break
            yield batch


class Counts:
    __slots__ = ("dropped", "masked", "rows")

    def __init__(self) -> None:
        self.rows = self.dropped = self.masked = 0


def _compression(parquet: Any) -> str:
    meta = parquet.metadata
    if meta.num_row_groups and meta.num_columns:
        name = str(meta.row_group(0).column(0).compression).lower()
        name = "none" if name == "uncompressed" else name
        if name in {"snappy", "gzip", "brotli", "zstd", "lz4", "none"}:
            return name
    return "snappy"


def rewrite(source: IO[bytes], sink: IO[bytes], decide: Verdict) -> Counts:
    """Write the object to `sink` by `decide` (False keeps a row, True drops it, a dict replaces
    it; a field the dict lacks becomes null). Raises Unreadable or DoesNotFit; `sink` is then junk."""
    pa, pq = _arrow()
    parquet = _open(source)
    schema = parquet.schema_arrow
    counts = Counts()
    writer = pq.ParquetWriter(sink, schema, compression=_compression(parquet))
    try:
        for batch in _batches(parquet):
            kept: list[dict[str, Any]] = []
            changed = False
            for record in batch.to_pylist():
                counts.rows += 1
                verdict = decide(record)
                if verdict is False:
                    kept.append(record)
                elif verdict is True:
                    counts.dropped += 1
                    changed = True
                else:
                    counts.masked += 1
                    changed = True
                    kept.append(verdict)
            if not changed:
                writer.write_batch(batch)
                continue
            if not kept:
                continue
            try:
                out = pa.RecordBatch.from_pylist(kept, schema=schema)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise DoesNotFit from exc
            writer.write_batch(out)
    finally:
        writer.close()
    return counts
