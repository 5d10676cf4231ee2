"""The objects of subjects' exports in the export bucket, removed with every version: the bucket is
versioned, and a noncurrent version would still hold the data."""

from __future__ import annotations

from lethe.aws import client
from lethe.settings import get_settings

_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys


def delete_everything_under(prefix: str) -> int:
    """Delete every object version and delete marker under `prefix`, and abort its unfinished
    uploads. Returns how many versions went; raises RuntimeError when S3 kept any of them."""
    s3 = client("s3")
    bucket = get_settings().export_bucket
    doomed: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            doomed.append({"Key": version["Key"], "VersionId": version["VersionId"]})
    objects = 0
    for start in range(0, len(doomed), _DELETE_BATCH):
        chunk = doomed[start : start + _DELETE_BATCH]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
        if response.get("Errors"):
            raise RuntimeError(f"{len(response['Errors'])} export object(s) under {prefix} not deleted")
        objects += len(chunk)
    for upload in s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return objects
