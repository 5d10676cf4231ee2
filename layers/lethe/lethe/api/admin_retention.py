"""Routes: the retention dry run (registered by lethe.api.admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Query

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.logic import retention


def register(app: APIGatewayRestResolver) -> None:
    @app.get(
        "/admin/retention/report",
        summary="Retention dry run",
        description=(
            "What a retention run at `at` (default: now) would delete, anonymize or isolate per dataset, "
            "how many items a legal hold or a restriction keeps, and which path each dataset takes (index "
            "or scan). Nothing is changed."
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
        return retention.report(moment)
