"""The local delivery of S3 ObjectCreated events: moto has no EventBridge to carry them, so this
thread lists the versions under every S3 dataset's prefix and, for each version it has not seen,
invokes the function the template's EventBridge rule names with the event EventBridge would hand it
("Object Created", detail.bucket.name, detail.object.key and version-id). The datasets are read
from the inventory on every pass, so a bucket created after the stack started is watched as soon
as it exists. A failed invocation is retried on the next pass, up to MAX_RETRIES, then skipped with a
message (EventBridge's retry policy, then its dead-letter queue).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lethe_local.poller import Backoff, PollingThread, Wakeup

IDLE_SECONDS = 0.5
MAX_RETRIES = 3
OBJECT_CREATED = "Object Created"


def object_created_event(bucket: str, key: str, version_id: str | None, size: int) -> dict[str, Any]:
    """The EventBridge event S3 sends for a new object version."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": OBJECT_CREATED,
        "source": "aws.s3",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, **({"version-id": version_id} if version_id else {})},
            "reason": "PutObject",
        },
    }


def object_functions(template: dict[str, Any]) -> list[str]:
    """The functions with an EventBridge rule on S3 "Object Created" events."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            pattern = (event.get("Properties") or {}).get("Pattern") or {}
            if event.get("Type") == "EventBridgeRule" and OBJECT_CREATED in (pattern.get("detail-type") or []):
                found.append(logical_id)
    return found


class ObjectEventPoller(PollingThread):
    """Delivers each new object version under `prefixes()` (bucket, prefix) to `function`, once."""

    def __init__(
        self,
        s3: Any,
        prefixes: Callable[[], list[tuple[str, str]]],
        function: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        wakeup: Wakeup | None = None,
    ) -> None:
        # Idle, it backs off from IDLE_SECONDS and is woken by a write to a watched bucket (lethe_local.writes).
        super().__init__("lethe-object-events", wakeup=wakeup, backoff=Backoff(first=IDLE_SECONDS))
        self.s3, self.prefixes, self.function, self.invoke = s3, prefixes, function, invoke
        self._delivered: set[tuple[str, str, str]] = set()
        self._failures: dict[tuple[str, str, str], int] = {}
        self._caught_up = False
        self._read_after: int | None = None  # the wakeup generation when the last whole pass began

    def run(self) -> None:
        while not self._stop_event.is_set():
            began = self.wakeup.generation
            try:
                busy = self.poll_once()
            except Exception as exc:  # the endpoint went away or a call failed: report and keep polling
                self.errors += 1
                busy = False
                if not self._stop_event.is_set():
                    print(f"  ! object event poller: {type(exc).__name__}: {exc}", flush=True)
                    self._stop_event.wait(1)
            self._caught_up, self._read_after = not busy, began
            self.idle(busy)

    def caught_up(self) -> bool:
        """The last pass delivered nothing, and began after the last write to a watched bucket."""
        return self._caught_up and self._read_after == self.wakeup.generation

    def poll_once(self) -> bool:
        """One pass over every prefix; True if any event was delivered."""
        busy = False
        for bucket, prefix in self.prefixes():
            try:
                pages = list(self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix))
            except ClientError:
                continue  # not created yet
            for page in pages:
                for version in page.get("Versions", []):
                    busy = self._deliver(bucket, version) or busy
        return busy

    def _deliver(self, bucket: str, version: dict[str, Any]) -> bool:
        seen = (bucket, version["Key"], str(version.get("VersionId") or "null"))
        if seen in self._delivered:
            return False
        version_id = None if seen[2] == "null" else seen[2]
        event = object_created_event(bucket, version["Key"], version_id, int(version.get("Size") or 0))
        try:
            self.invoke(self.function, event)
        except Exception as exc:  # like EventBridge: retried, then given up on
            tries = self._failures[seen] = self._failures.get(seen, 0) + 1
            if tries <= MAX_RETRIES:
                print(f"  ! {self.function} raised {type(exc).__name__}; the object event will be retried", flush=True)
                return True
            print(f"  ! {self.function} kept failing on an object event; it is dropped", flush=True)
        self._delivered.add(seen)
        return True
