"""The Parquet codec: a rewrite reads and writes one record batch at a time in the object's own
schema, leaves batches without a change as they were, nulls a removed field, refuses a masked row
that does not fit; an object that is not Parquet is Unreadable; the API functions never load pyarrow."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest

from lethe.data import parquet


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("email", pa.string()), ("chat", pa.string()), ("n", pa.int64())], metadata={b"k": b"v"})


def _file(rows: list[dict[str, Any]], row_group_size: int) -> io.BytesIO:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), out, row_group_size=row_group_size)
    out.seek(0)
    return out


def test_a_rewrite_streams_batches_in_the_objects_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    monkeypatch.setattr(parquet, "BATCH_ROWS", 3)
    rows = [{"email": f"u{i}@x.org", "chat": f"c{i}", "n": i} for i in range(10)]
    source, sink = _file(rows, row_group_size=3), io.BytesIO()

    def decide(record: dict[str, Any]) -> dict[str, Any] | bool:
        if record["n"] == 4:
            return True
        if record["n"] == 7:
            return {"email": "tok_7", "n": 7}  # chat removed: null
        return False

    counts = parquet.rewrite(source, sink, decide)
    assert (counts.rows, counts.dropped, counts.masked) == (10, 1, 1)
    written = pq.ParquetFile(io.BytesIO(sink.getvalue()))
    assert written.schema_arrow.equals(_schema(), check_metadata=True)
    assert written.metadata.num_row_groups == 4  # one per batch read: nothing held beyond a batch
    expected = [r for r in rows if r["n"] not in (4, 7)]
    expected.insert(6, {"email": "tok_7", "chat": None, "n": 7})
    assert written.read().to_pylist() == expected


def test_a_masked_row_that_does_not_fit_is_refused() -> None:
    source = _file([{"email": "a@x.org", "chat": "c", "n": 1}], row_group_size=1)
    with pytest.raises(parquet.DoesNotFit):
        parquet.rewrite(source, io.BytesIO(), lambda record: {**record, "n": "tok_not_a_number"})


def test_an_object_that_is_not_parquet_is_unreadable() -> None:
    with pytest.raises(parquet.Unreadable):
        list(parquet.records(io.BytesIO(b"PAR1 not parquet at all PAR1")))
    with pytest.raises(parquet.Unreadable):
        parquet.rewrite(io.BytesIO(b'{"a": 1}\n'), io.BytesIO(), lambda record: False)


def test_without_pyarrow_the_codec_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(parquet.NotShipped):
        parquet.require()


def test_the_api_functions_never_load_pyarrow() -> None:
    code = (
        "import sys\n"
        "from lethe.handlers import public_api, admin_api\n"
        "from lethe.data import s3store, stores\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow loaded'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]


_PEAK = """
import secrets, sys, tempfile
import pyarrow as pa, pyarrow.parquet as pq
from lethe.data import parquet
groups = int(sys.argv[1])
with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as dst:
    w = pq.ParquetWriter(src, pa.schema([("e", pa.string()), ("c", pa.string())]), compression="none")
    for g in range(groups):
        w.write_table(pa.table({"e": [f"u{g}@x"] * 1000, "c": [secrets.token_hex(128) for _ in range(1000)]}))
    w.close()
    size = src.tell()
    src.seek(0)
    counts = parquet.rewrite(src, dst, lambda r: r["e"] == "u3@x")
    assert counts.dropped == 1000
    dst.seek(0)
    print(size, pa.default_memory_pool().max_memory())
"""


def _peak(groups: int) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(groups)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    size, peak = done.stdout.split()
    return int(size), int(peak)


def test_a_rewrites_memory_does_not_grow_with_the_object() -> None:
    # Row groups of ~260 KB: an object four times larger needs no more Arrow memory
    small_size, small_peak = _peak(10)
    large_size, large_peak = _peak(40)
    assert large_size > 4 * small_size * 0.95
    assert large_peak < large_size // 4
    assert large_peak <= small_peak + 512 * 1024


def test_a_rewrite_keeps_the_objects_compression() -> None:
    import pyarrow.parquet as pq

    rows = [{"email": "a@x.org", "chat": "c", "n": 1}, {"email": "b@x.org", "chat": "d", "n": 2}]
    for codec in ("none", "zstd"):
        import pyarrow as pa

        source = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), source, compression=codec)
        source.seek(0)
        sink = io.BytesIO()
        parquet.rewrite(source, sink, lambda record: record["n"] == 1)
        written = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata.row_group(0).column(0).compression
        assert str(written).lower() == ("uncompressed" if codec == "none" else codec)
