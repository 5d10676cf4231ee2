"""Routes of the admin API. In AWS, API Gateway checks IAM; locally the bearer token is checked here."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from lethe.api import (
    admin_backups,
    admin_consent,
    admin_holds,
    admin_inbox,
    admin_opendsr,
    admin_people,
    admin_reports,
    admin_requests,
    admin_retention,
)
from lethe.api.callers import authorize_operator


def require_operator(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[str]:
    event = app.current_event
    authorize_operator(event.headers, event.raw_event.get("requestContext"))
    return next_middleware(app)


def register(app: APIGatewayRestResolver) -> None:
    """The admin API's routes on `app`, every one behind the operator check."""
    app.use(middlewares=[require_operator])
    for module in (
        admin_requests,
        admin_holds,
        admin_consent,
        admin_retention,
        admin_backups,
        admin_inbox,
        admin_reports,
        admin_people,
        admin_opendsr,
    ):
        app.include_router(module.router)
