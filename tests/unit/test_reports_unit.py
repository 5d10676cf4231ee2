"""Report rules without AWS: what counts as "in part", the period check, the CSV and HTML forms."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from lethe.domain import RequestType
from lethe.errors import InvalidReportPeriod
from lethe.logic.reports import (
    CSV_COLUMNS,
    MetricsReport,
    ProcessingEntry,
    ProcessingRecord,
    TypeMetrics,
    completed_in_part,
    metrics_csv,
    period,
    processing_html,
)


def test_a_completion_is_in_part_when_anything_was_isolated_or_kept() -> None:
    assert completed_in_part({"datasets": {"invoices": {"isolated": 1}, "accounts": {"anonymized": 1}}})
    assert completed_in_part({"datasets": {"accounts": {"kept": 2, "kept_because": "legal hold"}}})
    assert not completed_in_part({"datasets": {"accounts": {"deleted": 3, "isolated": 0}}})
    assert not completed_in_part(None)
    assert not completed_in_part({"datasets": {}})


def test_a_period_is_two_dates_in_order_within_ten_years() -> None:
    assert period("2027-01-01", "2027-01-31") == (date(2027, 1, 1), date(2027, 1, 31))
    with pytest.raises(InvalidReportPeriod):
        period("2027-02-01", "2027-01-31")
    with pytest.raises(InvalidReportPeriod):
        period("2027-13-01", "2027-12-31")
    with pytest.raises(InvalidReportPeriod):
        period("2000-01-01", "2027-01-01")


def test_the_csv_has_one_row_per_type_and_empty_cells_for_no_answer() -> None:
    report = MetricsReport(
        period_from=date(2027, 1, 1),
        period_to=date(2027, 1, 31),
        types=[
            TypeMetrics(
                type=RequestType.erasure,
                received=2,
                completed_in_part=1,
                denied=1,
                median_days_to_respond=4.5,
                mean_days_to_respond=4.5,
            ),
            TypeMetrics(type=RequestType.access, received=1, not_answered=1),
        ],
    )
    rows = list(csv.reader(io.StringIO(metrics_csv(report))))
    assert rows == [
        list(CSV_COLUMNS),
        ["erasure", "2", "0", "1", "1", "0", "4.5", "4.5"],
        ["access", "1", "0", "0", "0", "1", "", ""],
    ]


def test_the_processing_page_escapes_every_value() -> None:
    hostile = '<script>alert("x")</script>'
    record = ProcessingRecord(
        generated_at=datetime(2027, 1, 31, tzinfo=UTC),
        activities=[
            ProcessingEntry(
                dataset="notes",
                description=hostile,
                controller="controller: us",
                categories=["user.content"],
                purposes=[hostile],
                recipients=["<img src=x onerror=alert(1)>"],
                transfers=[{"to": hostile, "safeguard": "SCCs & more"}],
                retention={"kept_for": "P30D", "basis": hostile},
                on_erasure="delete",
            )
        ],
    )
    page = processing_html(record)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "SCCs &amp; more" in page
    assert "<th scope=row>notes</th>" in page
