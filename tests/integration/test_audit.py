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
