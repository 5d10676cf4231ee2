"""The export bucket: an export's part files and finished documents, written as streams of text
(SSE-KMS under Lethe's data key), read back line by line, and handed out by presigned URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from lethe.aws import client, retry_transient
from lethe.settings import get_settings

PART_SIZE = 5 * 1024 * 1024  # S3's minimum part (except the last): the smallest buffer per open writer


def _encryption() -> dict[str, str]:
    """SSE-KMS under Lethe's data key. Naming the key matters: "aws:kms" alone would use the
    AWS-managed key rather than the one the bucket and its key policy are built around."""
    key_id = get_settings().data_key_id
    return {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": key_id} if key_id else {})}


class S3Writer:
    """Writes one object from chunks of text: a single PutObject when small, else a multipart
    upload with bounded buffers. SSE-KMS is the bucket default and is asked for explicitly too."""

    def __init__(self, key: str, content_type: str) -> None:
        self.bucket = get_settings().export_bucket
        self.key = key
        self.content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def write(self, text: str) -> None:
        self._buffer += text.encode("utf-8")
        if len(self._buffer) >= PART_SIZE:
            self._flush_part()

    def _flush_part(self) -> None:
        s3 = client("s3")
        if self._upload_id is None:
            self._upload_id = s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type, **_encryption()
            )["UploadId"]
        number = len(self._parts) + 1
        etag = s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=self._buffer
        )["ETag"]  # the buffer itself, not a bytes copy of it: one part in memory at a time
        self._parts.append({"PartNumber": number, "ETag": etag})
        self._buffer = bytearray()

    def close(self) -> None:
        s3 = client("s3")
        if self._upload_id is None:
            s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=bytes(self._buffer),
                ContentType=self.content_type,
                **_encryption(),
            )
            return
        if self._buffer:
            self._flush_part()
        s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            client("s3").abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)


def lines(key: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a part file, one a line; nothing when the part was never written."""
    try:
        body = retry_transient(
            client("s3").get_object, Bucket=get_settings().export_bucket, Key=key, what="read export part"
        )["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return
        raise
    for line in body.iter_lines():
        if line:
            yield json.loads(line)


def exists(key: str) -> bool:
    """Whether the export bucket holds `key` (a HeadObject; any refusal counts as absent)."""
    try:
        client("s3").head_object(Bucket=get_settings().export_bucket, Key=key)
    except ClientError:
        return False
    return True


def download_url(key: str, *, expires_in: int) -> str:
    """A presigned GET of `key`, valid for `expires_in` seconds."""
    return str(
        client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": get_settings().export_bucket, "Key": key}, ExpiresIn=expires_in
        )
    )
