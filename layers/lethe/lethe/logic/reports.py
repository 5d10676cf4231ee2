"""Reports for regulators (DESIGN.md, "Reports").

Metrics (CCPA regulations § 7102): for the requests *received* in a period, per request type, how many
were received, completed in whole, completed in part, denied, and the median and mean days from
receipt to that answer. They are computed from the audit, which is hash-chained and outlives an
erasure: a "request.received" record gives the type and the time of receipt, the request's first
"request.completed" or "request.denied" record the answer. A completion is "in part" when something
was kept (isolated in the vault, or kept for a stated reason); fulfilment says so on the record.
Requests not answered (still open, or expired, canceled) are counted apart.

Record of processing (GDPR Art. 30): per dataset of the inventory, plus Lethe's own, the description,
who controls it, the categories of personal data, purposes, recipients, transfers and retention.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lethe.data import audit
from lethe.domain import Model, RequestType
from lethe.errors import InvalidReportPeriod
from lethe.inventory import Dataset, get_inventory
from lethe.logic.own_data import lethe_header
from lethe.settings import get_settings

MAX_PERIOD_DAYS = 3660
_DAY = 86400.0


def completed_in_part(outcome: dict[str, Any] | None) -> bool:
    """Whether a finished request kept anything back: data isolated in the vault or kept for a reason."""
    datasets = (outcome or {}).get("datasets") or {}
    return any(
        bool(result.get("isolated")) or bool(result.get("kept")) or bool(result.get("kept_because"))
        for result in datasets.values()
        if isinstance(result, dict)
    )


class TypeMetrics(Model):
    type: RequestType
    received: int = 0
    completed_in_whole: int = 0
    completed_in_part: int = 0
    denied: int = 0
    not_answered: int = 0
    median_days_to_respond: float | None = None
    mean_days_to_respond: float | None = None


class MetricsReport(Model):
    period_from: date
    period_to: date
    computed_from: str = "audit"
    types: list[TypeMetrics]


def period(start: str | date, end: str | date) -> tuple[date, date]:
    try:
        first = start if isinstance(start, date) else date.fromisoformat(start)
        last = end if isinstance(end, date) else date.fromisoformat(end)
    except ValueError as exc:
        raise InvalidReportPeriod("from and to must be dates, YYYY-MM-DD") from exc
    if last < first:
        raise InvalidReportPeriod("to must not be before from")
    if (last - first).days > MAX_PERIOD_DAYS:
        raise InvalidReportPeriod(f"a report covers at most {MAX_PERIOD_DAYS} days")
    return first, last


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def metrics(start: str | date, end: str | date) -> MetricsReport:
    """The § 7102 metrics of the requests received from `start` to `end` (both days included, UTC)."""
    first, last = period(start, end)
    opens = datetime(first.year, first.month, first.day, tzinfo=UTC)
    closes = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    received: dict[str, tuple[RequestType, datetime]] = {}
    answered: dict[str, tuple[str, datetime, bool]] = {}
    for record in audit.records("request."):
        request_id, action = record.get("request_id"), record.get("action")
        if not request_id:
            continue
        details = record.get("details") or {}
        if action == "request.received":
            at = _at(record["at"])
            if opens <= at < closes and details.get("type") in RequestType.__members__:
                received[request_id] = (RequestType(details["type"]), at)
        elif action in ("request.completed", "request.denied") and request_id not in answered:
            answered[request_id] = (action, _at(record["at"]), bool(details.get("in_part")))
    return MetricsReport(period_from=first, period_to=last, types=_per_type(received, answered))


def _per_type(
    received: dict[str, tuple[RequestType, datetime]], answered: dict[str, tuple[str, datetime, bool]]
) -> list[TypeMetrics]:
    rows = {kind: TypeMetrics(type=kind) for kind in RequestType}
    days: dict[RequestType, list[float]] = defaultdict(list)
    for request_id, (kind, at) in received.items():
        row = rows[kind]
        row.received += 1
        answer = answered.get(request_id)
        if answer is None:
            row.not_answered += 1
            continue
        action, answered_at, in_part = answer
        if action == "request.denied":
            row.denied += 1
        elif in_part:
            row.completed_in_part += 1
        else:
            row.completed_in_whole += 1
        days[kind].append((answered_at - at).total_seconds() / _DAY)
    for kind, spent in days.items():
        rows[kind].median_days_to_respond = round(statistics.median(spent), 2)
        rows[kind].mean_days_to_respond = round(statistics.fmean(spent), 2)
    return list(rows.values())


CSV_COLUMNS = (
    "type",
    "received",
    "completed_in_whole",
    "completed_in_part",
    "denied",
    "not_answered",
    "median_days_to_respond",
    "mean_days_to_respond",
)


def metrics_csv(report: MetricsReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.types:
        values = row.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else values[c] for c in CSV_COLUMNS])
    return out.getvalue()


# ------------------------------------------------------------------ record of processing (Art. 30)


class ProcessingEntry(Model):
    dataset: str
    description: str
    controller: str
    categories: list[str]
    purposes: list[str]
    recipients: list[str]
    transfers: list[dict[str, str]]
    retention: dict[str, Any] | None
    on_erasure: str


class ProcessingRecord(Model):
    generated_at: datetime
    activities: list[ProcessingEntry]


def _recipient_name(recipient: Any) -> str:
    # A recipient is a name, or a structured one whose `name` is shown (never how it is notified).
    return recipient if isinstance(recipient, str) else str(getattr(recipient, "name", recipient))


def _controller(dataset: Dataset) -> str:
    if dataset.controller == "customer":
        return "processor: held for the customer (controller) who invited the person"
    return "controller: us"


def _entry(name: str, dataset: Dataset) -> ProcessingEntry:
    retention = None
    if dataset.retention is not None:
        rule = dataset.retention
        retention = {
            "kept_for": str(rule.after),
            "counted_from": rule.since,
            "then": rule.action.value,
            **({"basis": rule.basis} if rule.basis else {}),
        }
    return ProcessingEntry(
        dataset=name,
        description=dataset.description,
        controller=_controller(dataset),
        categories=sorted({spec.category for spec in dataset.fields.values()}),
        purposes=list(dataset.purposes),
        recipients=[_recipient_name(r) for r in dataset.recipients],
        transfers=[t.model_dump() for t in dataset.transfers],
        retention=retention,
        on_erasure=dataset.on_erasure.value,
    )


def processing_record(now: datetime | None = None) -> ProcessingRecord:
    inventory = get_inventory()
    entries = [_entry(name, dataset) for name, dataset in inventory.datasets.items()]
    own = lethe_header()
    entries.append(
        ProcessingEntry(
            dataset="lethe",
            description=own["description"],
            controller="controller: us",
            categories=sorted(set(own["categories"].values())),
            purposes=list(own["purposes"]),
            recipients=list(own["recipients"]),
            transfers=[],
            retention=own["retention"],
            on_erasure="delete",
        )
    )
    days = get_settings().inbox_retention_days
    entries.append(
        ProcessingEntry(
            dataset="privacy_inbox",
            description="Messages people send to the privacy address (the operator's inbox)",
            controller="controller: us",
            categories=["user.contact.email", "user.content"],
            purposes=["answering your privacy requests"],
            recipients=["Amazon Web Services (hosting)"],
            transfers=[],
            retention={
                "kept_for": f"P{days}D",
                "counted_from": "receipt",
                "then": "delete",
                "basis": "The raw message is deleted after a day; the operator's copy once it is answered and filed",
            },
            on_erasure="delete",
        )
    )
    return ProcessingRecord(generated_at=(now or datetime.now(UTC)), activities=entries)


def _cell(values: list[str]) -> str:
    return "<br>".join(html.escape(v) for v in values) or "&mdash;"


def processing_html(record: ProcessingRecord) -> str:
    """The record as an HTML body (every value escaped; the page wrapper adds the CSP)."""
    rows = []
    for entry in record.activities:
        retention = (
            "&mdash;"
            if entry.retention is None
            else html.escape(", ".join(f"{k}: {v}" for k, v in entry.retention.items()))
        )
        transfers = _cell([f"{t['to']} ({t['safeguard']})" for t in entry.transfers])
        rows.append(
            "<tr>"
            f"<th scope=row>{html.escape(entry.dataset)}</th>"
            f"<td>{html.escape(entry.description)}</td>"
            f"<td>{html.escape(entry.controller)}</td>"
            f"<td>{_cell(entry.categories)}</td>"
            f"<td>{_cell(entry.purposes)}</td>"
            f"<td>{_cell(entry.recipients)}</td>"
            f"<td>{transfers}</td>"
            f"<td>{retention}</td>"
            f"<td>{html.escape(entry.on_erasure)}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th scope=col>{h}</th>"
        for h in (
            "Dataset",
            "Description",
            "Role",
            "Categories of personal data",
            "Purposes",
            "Recipients",
            "Transfers to third countries",
            "Retention",
            "On erasure",
        )
    )
    return (
        "<h1>Record of processing activities</h1>"
        f"<p>GDPR Article 30. Generated {html.escape(record.generated_at.isoformat())} from the data map.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
