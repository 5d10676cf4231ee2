"""The audit chain: append-only, hash-chained, tamper-evident, free of raw PII."""

from __future__ import annotations

from typing import Any

from lethe.data import audit
from lethe.data.models import AuditRecord
from lethe.keys import key_ring


def test_appended_records_form_a_verifiable_chain(aws: Any) -> None:
    # Given three audit records about a subject
    ref = key_ring().subject_ref("ada@example.com")
    for action in ("request.received", "request.verified", "request.completed"):
        audit.append(action, request_id="req_chain", subject_ref=ref)
    # Then the chain verifies and links each record to the one before
    report = audit.verify()
    assert report.ok and report.records == 3
    records = list(AuditRecord.query(audit.CHAIN))
    assert [int(r.seq) for r in records] == [1, 2, 3]
    assert records[1].prev_hash == records[0].hash and records[0].prev_hash == audit.GENESIS
    # And no record holds the raw address
    assert all("ada@example.com" not in str(r.attribute_values) for r in records)


def test_an_edited_record_is_detected(aws: Any) -> None:
    for n in range(3):
        audit.append("event", details={"n": n})
    record = AuditRecord.get(audit.CHAIN, 2)
    record.details = {"n": 99}
    record.save()
    report = audit.verify()
    assert not report.ok and report.first_bad_seq == 2 and "altered" in (report.problem or "")


def test_a_missing_record_is_detected(aws: Any) -> None:
    for n in range(4):
        audit.append("event", details={"n": n})
    AuditRecord.get(audit.CHAIN, 3).delete()
    report = audit.verify()
    assert not report.ok and report.first_bad_seq == 3 and "missing" in (report.problem or "")


def test_an_append_whose_write_timed_out_after_landing_is_not_written_twice(aws: Any, monkeypatch: Any) -> None:
    from botocore.exceptions import ReadTimeoutError
    from pynamodb.exceptions import PutError

    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_TRANSIENT_RETRY_BASE_MS", "0")
    get_settings.cache_clear()
    audit.append("before", details={"n": 0})
    # Given a write that lands and then times out on the way back, once
    original = AuditRecord.save
    timeouts: list[int] = []

    def lands_then_times_out(self: AuditRecord, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if not timeouts:
            timeouts.append(1)
            raise PutError("Failed to put item", ReadTimeoutError(endpoint_url="https://dynamodb"))
        return result

    monkeypatch.setattr(AuditRecord, "save", lands_then_times_out)
    # When a record is appended, Then it is there once, and a write that really failed is written again
    appended = audit.append("retention.task", dataset="sessions", details={"counts": {"deleted": 25}})
    assert timeouts == [1]
    records = list(AuditRecord.query(audit.CHAIN, consistent_read=True))
    assert [r.action for r in records] == ["before", "retention.task"]
    assert int(appended.seq) == 2 and audit.verify().ok
    get_settings.cache_clear()


def test_an_append_whose_write_failed_is_written_on_retry(aws: Any, monkeypatch: Any) -> None:
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import PutError

    from lethe.settings import get_settings

    monkeypatch.setenv("LETHE_TRANSIENT_RETRY_BASE_MS", "0")
    get_settings.cache_clear()
    original = AuditRecord.save
    failures: list[int] = []

    def throttled_twice(self: AuditRecord, *args: Any, **kwargs: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise PutError("Failed to put item", ClientError(error, "PutItem"))  # type: ignore[arg-type]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AuditRecord, "save", throttled_twice)
    audit.append("request.received", request_id="req_x")
    assert len(failures) == 2
    assert [r.action for r in AuditRecord.query(audit.CHAIN, consistent_read=True)] == ["request.received"]
    get_settings.cache_clear()
