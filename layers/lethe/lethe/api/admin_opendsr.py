"""Routes: OpenDSR status callbacks that kept failing (included by lethe.api.admin)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

from lethe.api.errors import ADMIN_ERROR_RESPONSES, responses
from lethe.domain import Model
from lethe.logic import opendsr_callbacks

router = Router()


class DeadCallbacks(Model):
    callbacks: list[opendsr_callbacks.DeadCallback]


class Redriven(Model):
    redriven: int


@router.get(
    "/admin/opendsr/callbacks/dead-letters",
    summary="OpenDSR callbacks that kept failing",
    description=(
        "Up to 10 callbacks in the dead-letter queue: the request, the controller's host, the status it "
        "should have been told and how often it was tried. Each try is also in the request's history."
    ),
    responses=responses(200, "Dead callbacks", errors=ADMIN_ERROR_RESPONSES),
    tags=["opendsr"],
)
def list_dead_callbacks() -> DeadCallbacks:
    return DeadCallbacks(callbacks=opendsr_callbacks.dead_letters())


@router.post(
    "/admin/opendsr/callbacks/redrive",
    summary="Send dead OpenDSR callbacks again",
    description="Moves up to 100 dead callbacks back to the callback queue, to be tried again with backoff.",
    responses=responses(200, "How many were moved back", errors=ADMIN_ERROR_RESPONSES),
    tags=["opendsr"],
)
def redrive_dead_callbacks() -> Redriven:
    return Redriven(redriven=opendsr_callbacks.redrive())
