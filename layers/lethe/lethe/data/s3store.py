"""S3 datasets (DESIGN.md, "Stores"): rows inside objects under a prefix of a versioned bucket.

- **The subject index.** Lethe keeps its own index of which objects hold which subject
  (ObjectSubjectIndexTable: pk "<dataset>#<subject ref>", sk the object key), written from the
  bucket's ObjectCreated events (`index_object`) and once by listing the prefix (`backfill`). So a
  subject's rows are found by one Query per identity value and one GET per object that holds them:
  the cost follows the subject's objects, never the prefix.
- **Rewrites.** An erasure or a retention sweep rewrites an object streaming (parts of
  `s3_part_bytes`, multipart once an object outgrows one part) with every other row byte for byte as
  it was. The write is conditional on the ETag that was read (If-Match), so a change by someone else
  in between is never overwritten: the object is read again and the rewrite done afresh. An upload
  that never completes leaves the old object as it was (a multipart upload is invisible until
  completed), so a worker killed mid-rewrite leaves the old object or the new one, and the
  redelivered task finishes the job.
- **Versions.** The bucket must be versioned (an erasure is proven by reading every version), and
  a bucket that is not is refused at first use, naming the dataset. After a rewrite the noncurrent
  versions of that object that still hold the subject are deleted.
- **Bad rows.** A row that does not parse is kept as it is and counted per object.
- **Parquet** (`lethe.data.parquet`, pyarrow loaded only there): the object is spooled to a
  temporary file, read a record batch at a time and rewritten with ParquetWriter in its own schema.
  An object pyarrow cannot read counts as one unparseable row of that object and is left as it is.

Index entries of an erased subject stay (HMACs only, like the erasure ledger) until their TTL, so
the proof of erasure reads the very objects the erasure rewrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pynamodb.exceptions import PynamoDBException, UpdateError

from lethe.aws import client, error_code
from lethe.data import parquet
from lethe.data.models import ObjectSubjectRecord
from lethe.data.rows import Row, encode_row, read_rows
from lethe.errors import ConfigurationError, ConflictingWrite, DatasetUnavailable
from lethe.inventory import EMAIL, Dataset, Inventory, ObjectFormat
from lethe.keys import KeyRing, normalize_email
from lethe.settings import get_settings

logger = Logger(child=True)

# Objects Lethe itself wrote carry this metadata: their ObjectCreated event adds nobody to the index
# (a rewrite only ever removes or masks rows), so the indexer skips reading them.
REWRITE_MARK = "lethe-rewrite"
# How long the index keeps an erased subject's entries: long enough for the proof and any retry.
ERASED_ENTRY_DAYS = 30
_CHANGED = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_GONE = frozenset({"NoSuchKey", "404", "NoSuchVersion"})

Decision = Callable[[dict[str, Any]], "dict[str, Any] | bool"]
"""What to do with one parsed row: False keeps it, True drops it, a dict replaces it (masked)."""


@dataclass
class RewriteResult:
    """One object's rewrite: rows matched and changed, rows that did not parse, the new version."""

    key: str
    matched: int = 0
    dropped: int = 0
    masked: int = 0
    unparseable: int = 0
    rows: int = 0
    written: bool = False
    version_id: str | None = None
    gone: bool = False
    attempts: int = 0


@dataclass
class StoreOutcome:
    """What a store did for a subject or a sweep, summed over the objects it touched."""

    found: int = 0
    deleted: int = 0
    anonymized: int = 0
    unchanged: int = 0
    objects_read: int = 0
    objects_rewritten: int = 0
    versions_deleted: int = 0
    unparseable: dict[str, int] = field(default_factory=dict)
    rows_by_object: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "deleted": self.deleted,
            "anonymized": self.anonymized,
            "unchanged": self.unchanged,
        }

    def add(self, result: RewriteResult) -> None:
        self.objects_read += 1
        self.found += result.matched
        self.deleted += result.dropped
        self.anonymized += result.masked
        self.objects_rewritten += int(result.written)
        if result.written:
            self.rows_by_object[result.key] = result.dropped + result.masked
        if result.unparseable:
            self.unparseable[result.key] = result.unparseable


def bucket_of(dataset: Dataset) -> str:
    assert dataset.bucket is not None  # the inventory requires it for store: s3
    return get_settings().bucket_name(dataset.bucket)


def _unavailable(dataset: Dataset, exc: ClientError) -> DatasetUnavailable:
    return DatasetUnavailable(f"dataset {dataset.name}: bucket {dataset.bucket} cannot be reached ({error_code(exc)})")


_versioned: set[str] = set()


def require_versioning(dataset: Dataset) -> None:
    """Refuse a bucket without versioning: its old objects could not be found and proven gone (one
    GetBucketVersioning per bucket per process; only a versioned answer is remembered)."""
    bucket = bucket_of(dataset)
    if bucket in _versioned:
        return
    try:
        status = client("s3").get_bucket_versioning(Bucket=bucket).get("Status")
    except ClientError as exc:
        raise _unavailable(dataset, exc) from exc
    if status != "Enabled":
        raise ConfigurationError(
            f"dataset {dataset.name}: bucket {dataset.bucket} is not versioned; Lethe refuses to rewrite "
            "objects whose earlier versions it cannot find and prove erased (enable versioning)"
        )
    _versioned.add(bucket)


# ------------------------------------------------------------------ who a row belongs to


def _plain(dataset: Dataset, value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    return normalize_email(text) if dataset.subject.identity == EMAIL else text


def row_subject(dataset: Dataset, record: dict[str, Any]) -> str | None:
    return _plain(dataset, record.get(dataset.subject.attribute))


def matcher(dataset: Dataset, values: Iterable[Any]) -> Callable[[dict[str, Any]], bool]:
    """Whether a row is one of `values`' (called for every row of every object: kept lean)."""
    wanted = {v for v in (_plain(dataset, value) for value in values) if v is not None}
    attribute = dataset.subject.attribute
    if dataset.subject.identity != EMAIL:
        return lambda record: row_subject(dataset, record) in wanted

    def holds(record: dict[str, Any]) -> bool:
        value = record.get(attribute)
        return type(value) is str and value.strip().lower() in wanted

    return holds


def _index_pk(dataset: Dataset, ref: str) -> str:
    return f"{dataset.name}#{ref}"


def _subject_ref(ring: KeyRing, value: str, key_id: str | None = None) -> str:
    return ring.subject_ref(value, key_id)


# ------------------------------------------------------------------ the subject index


def _refs(dataset: Dataset, values: Iterable[Any], ring: KeyRing) -> list[str]:
    """The index keys of `values`: under every key id of the ring, so a rotation loses nobody."""
    plains = [p for p in (_plain(dataset, value) for value in values) if p is not None]
    return [_index_pk(dataset, _subject_ref(ring, plain, kid)) for plain in plains for kid in ring.keys]


def indexed_objects(dataset: Dataset, values: Iterable[Any], ring: KeyRing) -> list[str]:
    """The keys of the objects the index says hold one of `values` (one Query per value and key id)."""
    keys: set[str] = set()
    try:
        for pk in _refs(dataset, values, ring):
            keys.update(entry.object_key for entry in ObjectSubjectRecord.query(pk, attributes_to_get=["object_key"]))
    except PynamoDBException as exc:
        raise DatasetUnavailable(f"dataset {dataset.name}: the object index cannot be read") from exc
    return sorted(keys)


def _put_entries(dataset: Dataset, key: str, version_id: str | None, refs: Iterable[str]) -> int:
    at = datetime.now(UTC).isoformat(timespec="seconds")
    written = 0
    with ObjectSubjectRecord.batch_write() as batch:
        for ref in sorted(set(refs)):
            batch.save(ObjectSubjectRecord(_index_pk(dataset, ref), key, indexed_at=at, version_id=version_id))
            written += 1
    return written


def mark_erased(dataset: Dataset, key: str, values: Iterable[Any], ring: KeyRing, now: datetime) -> None:
    """The subject's entries for an object it no longer has rows in expire: they stay until then so
    the proof and a retry read the same objects."""
    expires = int((now + timedelta(days=ERASED_ENTRY_DAYS)).timestamp())
    for pk in _refs(dataset, values, ring):
        entry = ObjectSubjectRecord(pk, key)
        try:
            entry.update(
                actions=[
                    ObjectSubjectRecord.erased_at.set(now.isoformat(timespec="seconds")),
                    ObjectSubjectRecord.expires_at.set(expires),
                ],
                condition=ObjectSubjectRecord.subject.exists(),
            )
        except UpdateError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise


def datasets_for_object(inventory: Inventory, bucket: str, key: str) -> list[Dataset]:
    """The S3 datasets an object belongs to: its bucket and a prefix of its key."""
    settings = get_settings()
    return [
        d
        for d in inventory.datasets.values()
        if d.in_s3 and d.bucket is not None and settings.bucket_name(d.bucket) == bucket and key.startswith(d.prefix)
    ]


def index_object(dataset: Dataset, key: str, ring: KeyRing, version_id: str | None = None) -> int:
    """Index one object version: an entry per subject with a row in it (idempotent: a redelivered
    event writes the same entries). An object Lethe rewrote adds nobody and is not read."""
    s3 = client("s3")
    request: dict[str, Any] = {"Bucket": bucket_of(dataset), "Key": key}
    if version_id:
        request["VersionId"] = version_id
    try:
        response = s3.get_object(**request)
    except ClientError as exc:
        if error_code(exc) in _GONE:
            return 0  # deleted or rewritten since the event: a later event tells the rest
        raise _unavailable(dataset, exc) from exc
    body = response["Body"]
    try:
        if (response.get("Metadata") or {}).get(REWRITE_MARK):
            return 0
        subjects = {
            s for row in _body_rows(dataset, body, key) if row.record and (s := row_subject(dataset, row.record))
        }
    finally:
        body.close()
    refs = [_subject_ref(ring, subject) for subject in subjects]
    return _put_entries(dataset, key, response.get("VersionId") or version_id, refs)


def backfill(dataset: Dataset, ring: KeyRing) -> dict[str, int]:
    """Index every object under the prefix once (a listing and a GET each): for a bucket that held
    data before Lethe's events reached it."""
    paginator = client("s3").get_paginator("list_objects_v2")
    objects = entries = 0
    try:
        for page in paginator.paginate(Bucket=bucket_of(dataset), Prefix=dataset.prefix):
            for listed in page.get("Contents", []):
                objects += 1
                entries += index_object(dataset, listed["Key"], ring)
    except ClientError as exc:
        raise _unavailable(dataset, exc) from exc
    return {"objects": objects, "entries": entries}


# ------------------------------------------------------------------ reading


def _open(dataset: Dataset, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    request: dict[str, Any] = {"Bucket": bucket_of(dataset), "Key": key}
    if version_id:
        request["VersionId"] = version_id
    try:
        return client("s3").get_object(**request)
    except ClientError as exc:
        if error_code(exc) in _GONE:
            return None
        raise _unavailable(dataset, exc) from exc


def _not_shipped(dataset: Dataset) -> DatasetUnavailable:
    return DatasetUnavailable(
        f"dataset {dataset.name}: Parquet objects are read by the workers; this function does not ship pyarrow"
    )


def _parquet_rows(dataset: Dataset, body: Any, key: str) -> Iterator[Row]:
    try:
        parquet.require()
    except parquet.NotShipped as exc:
        raise _not_shipped(dataset) from exc
    with parquet.spool(body, get_settings().s3_part_bytes) as source:
        number = 0
        try:
            for number, record in enumerate(parquet.records(source), start=1):
                yield Row(b"", record, number)
        except parquet.NotShipped as exc:
            raise _not_shipped(dataset) from exc
        except parquet.Unreadable:
            # Names and counts only: whatever the object holds stays out of the logs.
            logger.warning("a Parquet object that cannot be read is left as it is", dataset=dataset.name, key=key)
            yield Row(b"", None, number + 1)


def _body_rows(dataset: Dataset, body: Any, key: str) -> Iterator[Row]:
    assert dataset.format is not None
    if dataset.format is ObjectFormat.parquet:
        return _parquet_rows(dataset, body, key)
    return read_rows(dataset.format, body)


def _rows(dataset: Dataset, response: dict[str, Any], key: str) -> Generator[Row, None, None]:
    body = response["Body"]
    try:
        yield from _body_rows(dataset, body, key)
    finally:
        body.close()


def rows_for_subject(dataset: Dataset, values: list[Any], ring: KeyRing) -> Iterator[dict[str, Any]]:
    """The subject's rows in the objects the index names, as they are now (one GET per object)."""
    require_versioning(dataset)
    holds = matcher(dataset, values)
    for key in indexed_objects(dataset, values, ring):
        response = _open(dataset, key)
        if response is None:
            continue
        for row in _rows(dataset, response, key):
            if row.record and holds(row.record):
                yield row.record


def remaining(dataset: Dataset, values: list[Any], ring: KeyRing) -> int:
    """The proof's read: the subject's rows left in any version (current or not) of the objects the
    index names. Every version is read, as a noncurrent one may be restored."""
    require_versioning(dataset)
    holds = matcher(dataset, values)
    left = 0
    for key in indexed_objects(dataset, values, ring):
        for version_id in _versions(dataset, key):
            response = _open(dataset, key, version_id)
            if response is not None:
                left += sum(1 for row in _rows(dataset, response, key) if row.record and holds(row.record))
    return left


def _versions(dataset: Dataset, key: str) -> Iterator[str]:
    paginator = client("s3").get_paginator("list_object_versions")
    try:
        for page in paginator.paginate(Bucket=bucket_of(dataset), Prefix=key):
            for version in page.get("Versions", []):
                if version["Key"] == key:
                    yield version["VersionId"]
    except ClientError as exc:
        raise _unavailable(dataset, exc) from exc


# ------------------------------------------------------------------ rewriting


class _Changed(Exception):
    """The object changed between our read and our write."""


class _Upload:
    """The new object, streamed: one PutObject when it fits a part, else a multipart upload that is
    invisible until completed. Both conditional on the ETag that was read. A part is sent by one
    background thread while the next is filled, so reading and writing overlap; at most one part is
    in flight, so memory stays at two parts whatever the object's size."""

    def __init__(self, bucket: str, key: str, etag: str, content_type: str | None) -> None:
        self.s3 = client("s3")
        self.bucket, self.key, self.etag = bucket, key, etag
        self.part_bytes = get_settings().s3_part_bytes
        self.extra: dict[str, Any] = {"Metadata": {REWRITE_MARK: "1"}}
        if content_type:
            self.extra["ContentType"] = content_type
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self._sender: ThreadPoolExecutor | None = None
        self._in_flight: Future[dict[str, Any]] | None = None

    def send_part(self) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=self.key, **self.extra)["UploadId"]
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lethe-part")
        assert self._sender is not None
        self._settle()
        number = len(self.parts) + 1
        body = bytes(self.buffer)
        self.buffer.clear()
        self._in_flight = self._sender.submit(self._upload_part, number, body)

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        sent = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        return {"ETag": sent["ETag"], "PartNumber": number}

    def _settle(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self.parts.append(future.result())

    def committed(self, result: RewriteResult) -> RewriteResult:
        """Commit the new version and say so in `result`."""
        result.version_id = self.commit()
        result.written = True
        return result

    def commit(self) -> str | None:
        try:
            if self.upload_id is None:
                done = self.s3.put_object(
                    Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer), IfMatch=self.etag, **self.extra
                )
                return done.get("VersionId")
            if self.buffer:
                self.send_part()
            self._settle()
            # S3 checks If-Match on completion; the HEAD first keeps a stale upload from being sent
            # where the endpoint does not (moto): it narrows the window, S3 closes it.
            self.s3.head_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
            done = self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
                IfMatch=self.etag,
            )
            self.upload_id = None
            self._close()
            return done.get("VersionId")
        except ClientError as exc:
            self.abort()
            if error_code(exc) in _CHANGED or error_code(exc) in _GONE:
                raise _Changed from exc
            raise

    def _close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown(wait=True)
            self._sender = None

    def abort(self) -> None:
        if self._in_flight is not None:
            self._in_flight.cancel()
            try:
                self._in_flight.exception()
            finally:
                self._in_flight = None
        self._close()
        if self.upload_id is not None:
            upload, self.upload_id = self.upload_id, None
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload)
            except ClientError:
                logger.warning("multipart upload not aborted; the bucket's lifecycle rule removes it")


def _rewrite_parquet(dataset: Dataset, key: str, decide: Decision, response: dict[str, Any]) -> RewriteResult:
    """The Parquet rewrite: the new file is written to a spooled temporary file, then uploaded in
    parts by the same conditional upload as the line formats."""
    result = RewriteResult(key)
    body = response["Body"]
    try:
        parquet.require()
    except parquet.NotShipped as exc:
        body.close()
        raise _not_shipped(dataset) from exc
    upload = _Upload(bucket_of(dataset), key, response["ETag"], response.get("ContentType"))
    spool_bytes = upload.part_bytes
    try:
        with parquet.spool(body, spool_bytes) as source, parquet.spool(_Empty(), spool_bytes) as sink:
            try:
                counts = parquet.rewrite(source, sink, decide)
            except parquet.NotShipped as exc:
                raise _not_shipped(dataset) from exc
            except parquet.Unreadable:
                logger.warning("a Parquet object that cannot be read is left as it is", dataset=dataset.name, key=key)
                result.unparseable = 1
                upload.abort()
                return result
            except parquet.DoesNotFit as exc:
                upload.abort()
                raise ConfigurationError(
                    f"dataset {dataset.name}: a masked row does not fit the Parquet schema of its object "
                    "(a pseudonym or a null where the column cannot hold one)"
                ) from exc
            result.rows, result.dropped, result.masked = counts.rows, counts.dropped, counts.masked
            result.matched = counts.dropped + counts.masked
            if not result.matched:
                upload.abort()
                return result
            sink.seek(0)
            while chunk := sink.read(upload.part_bytes):
                upload.buffer += chunk
                if len(upload.buffer) >= upload.part_bytes:
                    upload.send_part()
            return upload.committed(result)
    except BaseException:
        upload.abort()
        raise
    finally:
        body.close()


class _Empty:
    def read(self, _amt: int = -1, /) -> bytes:
        return b""


def _rewrite_once(dataset: Dataset, key: str, decide: Decision) -> RewriteResult:
    result = RewriteResult(key)
    response = _open(dataset, key)
    if response is None:
        result.gone = True
        return result
    fmt = dataset.format
    assert fmt is not None
    if fmt is ObjectFormat.parquet:
        return _rewrite_parquet(dataset, key, decide, response)
    upload = _Upload(bucket_of(dataset), key, response["ETag"], response.get("ContentType"))
    # The loop runs once per row of the object: counters are locals, the part buffer is appended to
    # in place and sent whenever it reaches a part's size.
    buffer, part_bytes = upload.buffer, upload.part_bytes
    rows = unparseable = dropped = masked = 0
    body = response["Body"]
    try:
        for row in read_rows(fmt, body):
            record = row.record
            if record:
                rows += 1
                verdict = decide(record)
                if verdict is False:
                    buffer += row.raw
                elif verdict is True:
                    dropped += 1
                else:
                    masked += 1
                    buffer += encode_row(fmt, row, verdict, header=list(record))
            else:  # None: did not parse, kept as it is; empty: a header or a blank line, nobody's
                unparseable += record is None
                buffer += row.raw
            if len(buffer) >= part_bytes:
                upload.send_part()
        result.rows, result.unparseable = rows, unparseable
        result.matched, result.dropped, result.masked = dropped + masked, dropped, masked
        if not (dropped or masked):
            upload.abort()
            return result
        return upload.committed(result)
    except BaseException:
        upload.abort()
        raise
    finally:
        body.close()


def rewrite(dataset: Dataset, key: str, decide: Decision) -> RewriteResult:
    """Rewrite one object by `decide`, conditional on it being unchanged since read; a change in
    between reads it again and decides afresh (up to `s3_rewrite_attempts`)."""
    attempts = get_settings().s3_rewrite_attempts
    for attempt in range(1, attempts + 1):
        try:
            result = _rewrite_once(dataset, key, decide)
        except _Changed:
            logger.info("object changed while rewritten; reading it again", dataset=dataset.name, attempt=attempt)
            time.sleep(min(0.05 * attempt, 0.5))
            continue
        except ClientError as exc:
            raise _unavailable(dataset, exc) from exc
        result.attempts = attempt
        if result.unparseable:
            # Names and counts only: the row itself may hold anything.
            logger.warning("rows that do not parse kept as they are", dataset=dataset.name, rows=result.unparseable)
        return result
    raise ConflictingWrite(f"dataset {dataset.name}: an object kept changing while it was rewritten")


def purge_versions(dataset: Dataset, key: str, holds: Callable[[dict[str, Any]], bool], *, keep: str | None) -> int:
    """Delete the noncurrent versions of `key` that still hold a row `holds` matches (reading each
    until the first such row). `keep` (the version just written) is never touched."""
    s3 = client("s3")
    doomed = []
    for version_id in _versions(dataset, key):
        if version_id == keep:
            continue
        response = _open(dataset, key, version_id)
        if response is None:
            continue
        rows = _rows(dataset, response, key)
        try:
            if any(row.record and holds(row.record) for row in rows):
                doomed.append(version_id)
        finally:
            rows.close()
    head = _open_head(dataset, key)
    for version_id in doomed:
        if version_id == head:
            continue  # the current version is rewritten, never deleted from under its readers
        try:
            s3.delete_object(Bucket=bucket_of(dataset), Key=key, VersionId=version_id)
        except ClientError as exc:
            raise _unavailable(dataset, exc) from exc
    return len([v for v in doomed if v != head])


def _open_head(dataset: Dataset, key: str) -> str | None:
    try:
        return client("s3").head_object(Bucket=bucket_of(dataset), Key=key).get("VersionId")
    except ClientError as exc:
        if error_code(exc) in _GONE:
            return None
        raise _unavailable(dataset, exc) from exc


def erase_subject(
    dataset: Dataset,
    values: list[Any],
    ring: KeyRing,
    *,
    mask: Callable[[dict[str, Any]], dict[str, Any]] | None,
    now: datetime,
) -> StoreOutcome:
    """Rewrite every object the index names for the subject: their rows dropped (`mask` None) or
    masked, the others untouched; then the noncurrent versions still holding them deleted. A second
    run finds nothing left to change and writes nothing."""
    require_versioning(dataset)
    holds = matcher(dataset, values)
    outcome = StoreOutcome()

    def decide(record: dict[str, Any]) -> dict[str, Any] | bool:
        if not holds(record):
            return False
        return True if mask is None else mask(record)

    for key in indexed_objects(dataset, values, ring):
        result = rewrite(dataset, key, decide)
        outcome.add(result)
        outcome.versions_deleted += purge_versions(dataset, key, holds, keep=result.version_id)
        mark_erased(dataset, key, values, ring, now)
    return outcome


def list_keys(dataset: Dataset) -> Iterator[str]:
    paginator = client("s3").get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket_of(dataset), Prefix=dataset.prefix):
            for listed in page.get("Contents", []):
                yield listed["Key"]
    except ClientError as exc:
        raise _unavailable(dataset, exc) from exc


def sweep(dataset: Dataset, decide: Decision, *, apply: bool) -> StoreOutcome:
    """Retention: every object under the prefix read once and rewritten by `decide` when a row is
    due; with `apply` False nothing is written (the dry run counts what would change)."""
    require_versioning(dataset)
    outcome = StoreOutcome()
    for key in list_keys(dataset):
        result = rewrite(dataset, key, decide) if apply else _count(dataset, key, decide)
        outcome.add(result)
        if apply and result.written:
            due = _due_matcher(decide)
            outcome.versions_deleted += purge_versions(dataset, key, due, keep=result.version_id)
    return outcome


def _due_matcher(decide: Decision) -> Callable[[dict[str, Any]], bool]:
    return lambda record: decide(record) is not False


def _count(dataset: Dataset, key: str, decide: Decision) -> RewriteResult:
    result = RewriteResult(key)
    response = _open(dataset, key)
    if response is None:
        result.gone = True
        return result
    for row in _rows(dataset, response, key):
        if row.record is None:
            result.unparseable += 1
        elif row.record:
            result.rows += 1
            verdict = decide(row.record)
            if verdict is not False:
                result.matched += 1
                result.dropped += verdict is True
                result.masked += isinstance(verdict, dict)
    return result
