"""Routes: the retention dry run (registered by lethe.api.admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.logic import retention

# API Gateway ends an integration at 29 s; the report stops reading this long before the function's
# time (or that limit) is up, to answer with what it has.
API_GATEWAY_LIMIT_SECONDS = 29.0
REPORT_MARGIN_SECONDS = 4.0


router = APIGatewayRouter()


@router.get(
    "/admin/retention/report",
    summary="Retention dry run",
    description=(
        "What a retention run at `at` (default: now) would delete, anonymize or isolate per dataset, "
        "how many items a legal hold or a restriction keeps, and which path each dataset takes (index "
        "or scan). Nothing is changed. The report reads for at most about 25 s: when that is not enough "
        "(a large scan dataset, a date far ahead) `complete` is false, each dataset not read to the end "
        "has `complete: false`, and its counts are lower bounds; the real sweep records its full counts "
        "in the audit."
    ),
    responses=responses(200, "What a run would do, per dataset", errors=ADMIN_ERROR_RESPONSES),
    tags=["retention"],
)
def retention_report(
    at: Annotated[
        datetime | None,
        Query(description="ISO 8601 instant to evaluate at, e.g. 2027-06-01T00:00:00Z; default now"),
    ] = None,
) -> retention.RetentionReport:
    moment = at if at is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    remaining = router.lambda_context.get_remaining_time_in_millis() / 1000
    budget = min(remaining, API_GATEWAY_LIMIT_SECONDS) - REPORT_MARGIN_SECONDS
    return retention.report(moment, budget_seconds=max(budget, 0.0))
