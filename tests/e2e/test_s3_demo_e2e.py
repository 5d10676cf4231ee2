"""The demo's S3 feedback logs on the local stack, as the README walks through them: Ada's access export
holds her console-log rows and nobody else's; after her erasure no version of any object in the bucket
holds her address or her chat, and every other subject's rows are all still there."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack, started_stack
from tests.support.outbox import TIMEOUT, file_and_verify, wait_completed, wait_for_mail

BUCKET = "lethe-feedbacklogbucket"
ADA = "ada@example.com"
LINK = re.compile(r"(http://\S+/exports/\S+)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with started_stack(tmp_path_factory.mktemp("lethe-s3-demo")) as own:
        yield own


def rows_by_subject_in_every_version(stack: LocalStack) -> tuple[Counter[str], str]:
    """Rows per subject over every version of every object in the demo bucket, and all their text."""
    s3 = stack.client("s3")
    counts: Counter[str] = Counter()
    text = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            text.append(body.decode())
            for line in body.decode().splitlines():
                if line.strip():
                    counts[json.loads(line)["reporter_email"]] += 1
    return counts, "\n".join(text)


def test_adas_feedback_log_rows_are_exported_then_erased_from_every_version(stack: LocalStack) -> None:
    # Given the demo bucket, whose logs mix Ada's console output with other subjects'
    before, _ = rows_by_subject_in_every_version(stack)
    assert before[ADA] == 2

    # When Ada asks for her data
    request_id = file_and_verify(stack, "access", ADA)
    wait_completed(stack, request_id)
    # Then her export holds her two rows from the feedback logs, and nobody else's
    link = LINK.search(wait_for_mail(stack.outbox, ADA, "Your personal data is ready"))
    assert link is not None
    export = requests.get(link.group(1), params={"format": "json"}, timeout=TIMEOUT)
    assert export.status_code == 200, export.text
    logs = export.json()["datasets"]["feedback_logs"]["items"]
    assert sorted(row["reporter_email"] for row in logs) == [ADA, ADA]

    # When she asks for erasure
    request_id = file_and_verify(stack, "erasure", ADA)
    wait_completed(stack, request_id)
    # Then no version of any object holds her address or her chat, and everyone else's rows remain
    after, text = rows_by_subject_in_every_version(stack)
    assert ADA not in text
    assert "St James's Square" not in text and "engine diagrams" not in text
    others_before: dict[str, Any] = {s: n for s, n in before.items() if s != ADA}
    assert {s: n for s, n in after.items() if s != ADA} == others_before
