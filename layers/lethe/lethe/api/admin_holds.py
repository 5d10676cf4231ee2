"""Routes: admin_holds (registered by lethe.api.admin)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver


def register(app: APIGatewayRestResolver) -> None:
    """No routes yet."""
