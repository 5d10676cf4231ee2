"""Routes: the retention dry run (registered by lethe.api.admin)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Query

from lethe.api.errors import ERROR_RESPONSES as _ERRORS
from lethe.logic import retention

# The resolver types `responses` with int keys; ERROR_RESPONSES is declared with int | str.
ERROR_RESPONSES: dict[int, Any] = _ERRORS  # type: ignore[assignment]


def register(app: APIGatewayRestResolver) -> None:
    @app.get(
        "/admin/retention/report",
        summary="Retention dry run",
        description=(
            "What a retention run at `at` (default: now) would delete, anonymize or isolate per dataset, "
            "how many items a legal hold or a restriction keeps, and which path each dataset takes (index "
            "or scan). Nothing is changed."
        ),
        responses=ERROR_RESPONSES,
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
