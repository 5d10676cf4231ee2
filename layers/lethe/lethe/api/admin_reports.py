"""Routes: reports for regulators (included by lethe.api.admin): the CCPA § 7102 request metrics from
the audit, and the GDPR Art. 30 record of processing from the inventory."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.api.pages import PAGE_HEADERS, page
from lethe.logic import reports
from lethe.logic.reports import MetricsReport, ProcessingRecord

router = Router()
TAGS = ["reports"]
_DATE = r"^\d{4}-\d{2}-\d{2}$"


def _either(ok: int, description: str, model: type[BaseModel], other: str) -> dict[int, Any]:
    """The success answer as JSON (the model) or as `other` (format=csv or html), and the admin errors."""
    described = responses(ok, description, errors=ADMIN_ERROR_RESPONSES)
    described[ok] = {
        "description": description,
        "content": {content_types.APPLICATION_JSON: {"model": model}, other: {"schema": {"type": "string"}}},
    }
    return described


@router.get(
    "/admin/reports/metrics",
    summary="Request metrics (CCPA § 7102) for the requests received in a period",
    description=(
        "Per request type: received, completed in whole, completed in part, denied, not answered, and the "
        "median and mean days from receipt to the answer, computed from the audit. format=csv gives CSV."
    ),
    responses=_either(200, "The metrics", MetricsReport, "text/csv"),
    tags=TAGS,
)
def metrics_report(
    start: Annotated[str, Query(alias="from", pattern=_DATE, description="First day, YYYY-MM-DD (UTC)")],
    end: Annotated[str, Query(alias="to", pattern=_DATE, description="Last day, included, YYYY-MM-DD (UTC)")],
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
) -> Response[MetricsReport | str]:
    report = reports.metrics(start, end)
    if format == "csv":
        name = f"lethe-metrics-{report.period_from}-{report.period_to}.csv"
        return Response(
            200,
            "text/csv; charset=utf-8",
            reports.metrics_csv(report),
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )
    return Response(200, content_types.APPLICATION_JSON, report)


@router.get(
    "/admin/reports/processing",
    summary="The record of processing activities (GDPR Art. 30)",
    description="Per dataset: categories, purposes, recipients, transfers and retention. format=html for a page.",
    responses=_either(200, "The record", ProcessingRecord, content_types.TEXT_HTML),
    tags=TAGS,
)
def processing_report(
    format: Annotated[Literal["json", "html"], Query(description="json (default) or html")] = "json",
) -> Response[ProcessingRecord | str]:
    record = reports.processing_record()
    if format == "html":
        shown = page(200, "Record of processing activities", reports.processing_html(record))
        return Response(shown.status_code, content_types.TEXT_HTML, str(shown.body), headers=dict(PAGE_HEADERS))
    return Response(200, content_types.APPLICATION_JSON, record)
