"""The one place where domain errors become HTTP answers: {"error": {"code", "message"}}, a 4xx for what
the caller can fix, a 5xx for what is Lethe's own fault (503 when trying again later may help)."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import Field

from lethe import errors
from lethe.domain import Model

logger = Logger(child=True)


class ErrorDetail(Model):
    code: Annotated[str, Field(description="Stable, machine-readable error code")]
    message: Annotated[str, Field(description="What went wrong, for a person")]


class ErrorBody(Model):
    error: ErrorDetail


STATUS_FOR: dict[type[errors.LetheError], HTTPStatus] = {
    errors.RequestNotFound: HTTPStatus.NOT_FOUND,
    errors.LegalHoldNotFound: HTTPStatus.NOT_FOUND,
    errors.ConsentNotFound: HTTPStatus.NOT_FOUND,
    errors.InvalidTransition: HTTPStatus.CONFLICT,
    errors.ConflictingWrite: HTTPStatus.CONFLICT,
    errors.LegalHoldActive: HTTPStatus.CONFLICT,
    errors.ExtensionNotAllowed: HTTPStatus.CONFLICT,
    errors.VerificationFailed: HTTPStatus.BAD_REQUEST,
    errors.VerificationExpired: HTTPStatus.GONE,
    errors.ExportLinkExpired: HTTPStatus.GONE,
    errors.ConfirmationExpired: HTTPStatus.GONE,
    errors.VerificationLocked: HTTPStatus.LOCKED,
    errors.RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    errors.PayloadTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    errors.MalformedBody: HTTPStatus.BAD_REQUEST,
    errors.InvalidIdempotencyKey: HTTPStatus.BAD_REQUEST,
    errors.InvalidCorrection: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.InvalidConsent: HTTPStatus.BAD_REQUEST,
    errors.InvalidToken: HTTPStatus.BAD_REQUEST,
    errors.InvalidCursor: HTTPStatus.BAD_REQUEST,
    errors.UnknownDataset: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.RestoredTableNotFound: HTTPStatus.NOT_FOUND,
    errors.ReplayTableMismatch: HTTPStatus.UNPROCESSABLE_ENTITY,
    errors.ReplayJobNotFound: HTTPStatus.NOT_FOUND,
    errors.PolicyVersionExists: HTTPStatus.CONFLICT,
    errors.Unauthorized: HTTPStatus.UNAUTHORIZED,
    errors.Forbidden: HTTPStatus.FORBIDDEN,
    # A dataset table that cannot be reached is a fault on our side (the caller may try again later).
    errors.DatasetUnavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    # The privacy inbox and reports.
    errors.InboxItemNotFound: HTTPStatus.NOT_FOUND,
    errors.InvalidReportPeriod: HTTPStatus.BAD_REQUEST,
    # Manual tasks: items that do not fit the dataset.
    errors.InvalidManualTask: HTTPStatus.UNPROCESSABLE_ENTITY,
}


def _error(code: int) -> dict[str, Any]:
    return {"description": HTTPStatus(code).phrase, "content": {"application/json": {"model": ErrorBody}}}


# Declared on every route, so the OpenAPI spec documents the error body fuzzers check against.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: _error(code) for code in (400, 404, 409, 410, 413, 415, 422, 423, 429, 500, 503)
}
# Admin routes also answer 401 (no bearer token) and 403 (a wrong one, or no IAM caller).
ADMIN_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 401: _error(401), 403: _error(403)}


def responses(
    ok: int,
    description: str,
    *,
    errors: dict[int | str, dict[str, Any]] = ERROR_RESPONSES,
    content_type: str | None = None,
) -> dict[int, Any]:
    """A route's `responses`: its success answer and every error. Without content_type the success body
    is the route's return model (application/json); with one (e.g. text/html) it is a string of that type.
    The resolver lists only what is given here, so the success answer must be given too."""
    success: dict[str, Any] = {"description": description}
    if content_type is not None:
        success["content"] = {content_type: {"schema": {"type": "string"}}}
    return {ok: success, **errors}  # type: ignore[dict-item]


# Request bodies larger than this are refused with 413 (an invalid one here; a valid one by its route).
MAX_BODY_BYTES = 16 * 1024


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    body = {"error": {"code": code, "message": message}}
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def _describe(errors_: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors_[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        # A pattern mismatch would quote the whole pattern back; say what is wrong instead.
        message = "is not in the expected form" if err.get("type") == "string_pattern_mismatch" else err.get("msg")
        parts.append(f"{loc or 'body'}: {message or 'invalid'}")
    return "; ".join(parts)


def body_size(app: ApiGatewayResolver) -> int:
    """The body's size in bytes, read without decoding it (an undecodable body has a size too)."""
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        return len(body) * 3 // 4
    return len(body.encode("utf-8", "surrogatepass"))


def register_error_handlers(app: ApiGatewayResolver) -> None:
    """Install the error map on a resolver. Never matches on message text."""

    @app.exception_handler(errors.LetheError)
    def _domain(exc: errors.LetheError) -> Response[str]:
        status = STATUS_FOR.get(type(exc))
        if status is None:
            # Not the caller's fault (a configuration or inventory error, a run that did not finish):
            # a 500 the alarms see, with no detail of Lethe's insides in the answer.
            logger.exception("unmapped domain error", extra={"error_code": exc.code})
            return error_response(500, "internal_error", "Lethe could not complete this; try again later")
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else None
        return error_response(status, exc.code, exc.message, headers)

    _register_request_problems(app, _domain, lambda problem, message: error_response(*PROBLEMS[problem], message))


# What can be wrong with a request before any route runs is the same on every API; each error schema
# answers it in its own shape: (status, code) here, (status, reason) in OPENDSR_PROBLEMS.
PROBLEMS: dict[str, tuple[int, str]] = {
    "too_large": (413, errors.PayloadTooLarge.code),
    "malformed_json": (400, "malformed_json"),
    "invalid": (422, "invalid_request"),
    "unsupported_media_type": (415, "unsupported_media_type"),
    "malformed_body": (400, errors.MalformedBody.code),
    "not_found": (404, "not_found"),
}


def _register_request_problems(
    app: ApiGatewayResolver,
    domain: Callable[[errors.LetheError], Response[str]],
    answer: Callable[[str, str], Response[str]],
) -> None:
    """The handlers of a request the resolver refuses before a route runs; `answer(problem, message)`
    gives the response in the API's error schema, `domain` is its handler of Lethe's own errors."""

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[str]:
        # The form parser wraps whatever reading the body raised; a body we refused stays our answer.
        if isinstance(exc.__cause__, errors.LetheError):
            return domain(exc.__cause__)
        # The resolver's default 422 body is not the schema we declare; answer ours instead.
        found = exc.errors()
        if body_size(app) > MAX_BODY_BYTES:
            return answer("too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
        if any(e.get("type") == "json_invalid" for e in found):
            return answer("malformed_json", "the body is not valid JSON")
        return answer("invalid", _describe(list(found)))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(_: RequestUnsupportedContentType) -> Response[str]:
        return answer("unsupported_media_type", "send the body as application/json")

    @app.exception_handler(UnicodeError)
    def _undecodable(exc: UnicodeError) -> Response[str]:
        # Every body but multipart is decoded by lethe.api.resolver.RequestEvent, which refuses bytes that
        # are not UTF-8 as MalformedBody. The resolver's multipart parser decodes its parts itself, so a
        # part that is not UTF-8 (or a text body it cannot map back to bytes) surfaces here. Anything else
        # is ours and stays a failure.
        if not _is_multipart(app):
            raise exc
        return answer("malformed_body", "the body is not UTF-8 text")

    @app.exception_handler(ValueError)
    def _value_error(exc: ValueError) -> Response[str]:
        # The resolver's multipart parser raises a bare ValueError for a multipart/form-data content
        # type without a boundary; that is a malformed request. Any other ValueError stays a failure.
        content_type = _content_type(app)
        if content_type.startswith("multipart/form-data") and "boundary=" not in content_type:
            return answer("malformed_body", "a multipart/form-data body needs a boundary")
        raise exc

    @app.not_found
    def _not_found(_: NotFoundError) -> Response[str]:
        return answer("not_found", "no such route")


def _content_type(app: ApiGatewayResolver) -> str:
    return str((app.current_event.headers or {}).get("content-type", "")).lower()


def _is_multipart(app: ApiGatewayResolver) -> bool:
    return _content_type(app).startswith("multipart/form-data")


# ---------------------------------------------------------------- OpenDSR (lethe.api.opendsr)
# The OpenDSR routes answer errors in the shape the specification names, {"error": {"code": <HTTP
# status>, "message", "errors": [{"domain", "reason", "message"}]}}, with the same status for each domain
# error as above. Messages name fields, never their values (no identity is ever echoed back).


class OpenDsrErrorItem(Model):
    domain: str
    reason: str
    message: str


class OpenDsrErrorDetail(Model):
    code: Annotated[int, Field(description="The HTTP status of the answer")]
    message: str
    errors: list[OpenDsrErrorItem] = Field(default_factory=list)


class OpenDsrErrorBody(Model):
    error: OpenDsrErrorDetail


def _opendsr_error(code: int) -> dict[str, Any]:
    return {"description": HTTPStatus(code).phrase, "content": {"application/json": {"model": OpenDsrErrorBody}}}


OPENDSR_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: _opendsr_error(code) for code in (400, 401, 403, 404, 413, 415, 503)
}


def opendsr_error_response(status: int, message: str, *, domain: str = "Validation", reason: str) -> Response[str]:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"domain": domain, "reason": reason, "message": message}],
        }
    }
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def register_opendsr_error_handlers(app: ApiGatewayResolver) -> None:
    """The error map of the OpenDSR resolver, in the specification's shape. Never matches on message text."""

    @app.exception_handler(errors.LetheError)
    def _domain(exc: errors.LetheError) -> Response[str]:
        if isinstance(exc, errors.ConfigurationError):
            return opendsr_error_response(
                503, "the processor is not fully configured", domain="Processor", reason="Unavailable"
            )
        status = int(STATUS_FOR.get(type(exc), HTTPStatus.BAD_REQUEST))
        reason = str(getattr(exc, "reason", "") or exc.code)
        domain = "Authentication" if status in (401, 403) else ("Processor" if status >= 500 else "Validation")
        if exc.code == "opendsr_not_found":
            status, domain = 404, "Request"
        return opendsr_error_response(status, exc.message, domain=domain, reason=reason)

    def answer(problem: str, message: str) -> Response[str]:
        status, reason = OPENDSR_PROBLEMS[problem]
        return opendsr_error_response(
            status, message, domain="Request" if problem == "not_found" else "Validation", reason=reason
        )

    _register_request_problems(app, _domain, answer)


OPENDSR_PROBLEMS: dict[str, tuple[int, str]] = {
    "too_large": (413, "PayloadTooLarge"),
    "malformed_json": (400, "MalformedJson"),
    "invalid": (400, "IllegalArgumentException"),
    "unsupported_media_type": (415, "UnsupportedMediaType"),
    "malformed_body": (400, "MalformedBody"),
    "not_found": (404, "NotFound"),
}
