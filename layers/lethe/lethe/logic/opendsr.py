"""OpenDSR v2: requests a controller sends Lethe as its processor (DESIGN.md, "OpenDSR v2").

- A controller verified the subject itself, so its request skips the emailed code: it is stored as
  `pending` and, after `opendsr_start_delay_seconds` (the window in which the controller may still
  cancel it), goes through the same fan-out, holds, certificates and audit as a subject's own request.
- Identities: `email` raw or `sha256` (hex of the SHA-256 of the trimmed, lower-cased address), and
  `controller_customer_id`, Lethe's `account_id` identity. A hashed address is resolved to the address
  by Query on the hash index of each dataset that declares one (`subject.hashed`); datasets without
  one cannot match a hash, and the answer says which ones (a fixed list from the inventory, the same
  whether or not the subject is known). A customer id alone is refused: legal holds are placed by
  address, so an erasure must know it.
- A controller's reference to a request (its `subject_request_id`) is a row keyed by the controller and
  that id, written in the request's own creation transaction: a duplicate id is refused, and one
  controller can never read or cancel another's requests (the lookup key contains the caller).
- Nothing here stores or logs an identity value but the request row itself, as for any request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger
from pydantic import ConfigDict, Field, field_validator, model_validator

from lethe.data import audit, datasets, queues
from lethe.data import requests as repository
from lethe.data.models import RequestEventRecord
from lethe.data.requests import pk_of
from lethe.domain import Model, Regulation, RequestType, Status, is_plain_address, utc_now
from lethe.errors import ConflictingWrite, InvalidTransition, LetheError, RequestNotFound
from lethe.inventory import EMAIL, get_inventory
from lethe.keys import key_ring, normalize_email
from lethe.logic import fulfilment, opendsr_callbacks, signing
from lethe.logic.intake import new_request, new_request_id
from lethe.logic.opendsr_callbacks import LINK_SK, OPENDSR_STATUS, results_of, rfc3339
from lethe.logic.requests import transition
from lethe.settings import get_settings

logger = Logger(child=True)

API_VERSION = "2.0"
START_KIND = "opendsr_start"
ACCOUNT_ID = "account_id"
UUID4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
CANCELLABLE = frozenset({Status.pending, Status.awaiting_approval})


class OpenDsrRejected(LetheError):
    """A controller's request the spec says is malformed (400 in its error shape)."""

    code = "opendsr_invalid"

    def __init__(self, message: str, *, reason: str = "IllegalArgumentException") -> None:
        super().__init__(message)
        self.reason = reason


class OpenDsrNotFound(LetheError):
    """No request with that subject_request_id from this controller (404 in the spec's error shape)."""

    code = "opendsr_not_found"


# ------------------------------------------------------------------ the wire models


class Identity(Model):
    """One identity of the subject. Its value is never echoed in an error or a log."""

    model_config = ConfigDict(extra="ignore")

    identity_type: Annotated[
        Literal["email", "controller_customer_id"], Field(description="email, or the controller's customer id")
    ]
    identity_value: Annotated[str, Field(min_length=1, max_length=320, repr=False)]
    identity_format: Annotated[Literal["raw", "sha1", "md5", "sha256"], Field(description="How the value is encoded")]

    @model_validator(mode="after")
    def _supported(self) -> Identity:
        if self.identity_type == "email":
            if self.identity_format == "raw" and not is_plain_address(self.identity_value.strip()):
                raise ValueError("an email identity in raw format must be one plain address")
            if self.identity_format == "sha256" and not _SHA256.fullmatch(self.identity_value):
                raise ValueError("an email identity in sha256 format must be 64 hexadecimal digits")
            if self.identity_format in ("sha1", "md5"):
                raise ValueError(f"email identities in {self.identity_format} format are not supported")
        else:
            if self.identity_format != "raw":
                raise ValueError("controller_customer_id identities are supported in raw format only")
            if not _CUSTOMER_ID.fullmatch(self.identity_value):
                raise ValueError("a controller_customer_id is 1 to 128 letters, digits or ._:@-")
        return self


def _callback_url(url: str) -> str:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    # Plain http only to this machine (a controller's test server); anything else must be TLS.
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback) or not parts.hostname:
        raise ValueError("each status_callback_url must be an https URL")
    if parts.username or parts.password:
        raise ValueError("a status_callback_url must not carry credentials")
    return url


CallbackUrl = Annotated[str, Field(min_length=8, max_length=2048)]


EXAMPLE_REQUEST: dict[str, Any] = {
    "regulation": "gdpr",
    "subject_request_id": "7d0c1f1e-3b8a-4c55-9a57-0f6a1e2b9c31",
    "subject_request_type": "erasure",
    "submitted_time": "2026-12-01T09:00:00Z",
    "subject_identities": [
        {
            "identity_type": "email",
            "identity_format": "sha256",
            "identity_value": "b6b2b1a1c2a0c4c1c0f7b9d2d1a3e8f4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0",
        }
    ],
    "api_version": "2.0",
    "status_callback_urls": ["https://controller.example.com/opendsr/callbacks"],
}


class OpenDsrRequest(Model):
    """POST /opendsr/v2/requests: a data-subject request a controller has verified."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    regulation: Annotated[Literal["gdpr", "ccpa"], Field(description="The law the request is made under")]
    subject_request_id: Annotated[
        str, Field(pattern=UUID4, description="The controller's id of this request: a lowercase UUID v4")
    ]
    subject_request_type: Annotated[Literal["access", "portability", "erasure"], Field(description="What is asked")]
    submitted_time: Annotated[
        str,
        Field(
            max_length=40,
            description="RFC 3339 time the subject made the request to the controller",
            json_schema_extra={"format": "date-time"},
        ),
    ]
    subject_identities: Annotated[list[Identity], Field(min_length=1, max_length=10)]
    api_version: Annotated[str | None, Field(max_length=16)] = None
    status_callback_urls: Annotated[list[CallbackUrl] | None, Field(max_length=5)] = None
    extensions: Annotated[
        dict[Annotated[str, Field(max_length=253)], dict[str, Any]] | None,
        Field(max_length=10, description="Processor-specific elements, keyed by processor domain"),
    ] = None

    @field_validator("submitted_time")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        if not _RFC3339.fullmatch(value):
            raise ValueError("submitted_time must be an RFC 3339 date-time")
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise ValueError("submitted_time must be an RFC 3339 date-time") from exc
        return value

    @field_validator("status_callback_urls")
    @classmethod
    def _callbacks(cls, value: list[str] | None) -> list[str] | None:
        return [_callback_url(url) for url in value] if value is not None else None

    @model_validator(mode="after")
    def _needs_an_address(self) -> OpenDsrRequest:
        if not any(i.identity_type == "email" for i in self.subject_identities):
            # Legal holds are placed by address: without one, an erasure could not honour them.
            raise ValueError("subject_identities needs an email identity (raw or sha256)")
        return self


class Receipt(Model):
    controller_id: str
    expected_completion_time: str
    received_time: str
    encoded_request: Annotated[str, Field(description="Base64 of the request body as received")]
    subject_request_id: str
    processor_signature: Annotated[
        str,
        Field(
            description=(
                "Base64 RSA/SHA-256 signature by the processor key of this body without processor_signature, "
                "serialized as JSON with sorted keys and no whitespace"
            )
        ),
    ]
    api_version: str = API_VERSION
    extensions: dict[str, dict[str, Any]] | None = None


class StatusAnswer(Model):
    controller_id: str
    expected_completion_time: str
    subject_request_id: str
    request_status: Literal["pending", "in_progress", "completed", "cancelled"]
    api_version: str = API_VERSION
    results_url: str | None = None
    results_count: int | None = None


class Cancellation(Model):
    controller_id: str
    received_time: str
    subject_request_id: str
    processor_signature: Annotated[str, Field(description="As for the request's receipt")]
    api_version: str = API_VERSION


class SupportedIdentity(Model):
    identity_type: str
    identity_format: str


class Discovery(Model):
    api_version: str = API_VERSION
    supported_identities: list[SupportedIdentity]
    supported_subject_request_types: list[str]
    processor_certificate: Annotated[str, Field(description="URL of the PEM certificate that signs answers")]


# ------------------------------------------------------------------ helpers


def _controller_pk(controller_id: str, subject_request_id: str) -> str:
    # The controller id may be a long IAM ARN; its digest keys the row, the id itself is in the row.
    return f"ODSR#{hashlib.sha256(controller_id.encode()).hexdigest()[:32]}#{subject_request_id}"


def sign_fields(fields: dict[str, Any]) -> str:
    """processor_signature: the signature of the answer's own fields (sorted keys, no whitespace)."""
    return signing.sign(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())


def hashed_datasets() -> tuple[list[str], list[str]]:
    """(datasets that match a sha256 address by their hash index, those that cannot)."""
    inventory = get_inventory()
    by_email = sorted(n for n, d in inventory.datasets.items() if d.subject.identity == EMAIL)
    able = [n for n in by_email if inventory.dataset(n).subject.hashed is not None]
    return able, [n for n in sorted(inventory.datasets) if n not in able]


def discovery(certificate_url: str) -> Discovery:
    return Discovery(
        supported_identities=[
            SupportedIdentity(identity_type="email", identity_format="raw"),
            SupportedIdentity(identity_type="email", identity_format="sha256"),
            SupportedIdentity(identity_type="controller_customer_id", identity_format="raw"),
        ],
        supported_subject_request_types=["access", "portability", "erasure"],
        processor_certificate=certificate_url,
    )


def _resolve_address(digests: list[str]) -> str | None:
    """The address whose hash a controller sent, found by Query on each dataset's hash index."""
    inventory = get_inventory()
    for digest in digests:
        for name in hashed_datasets()[0]:
            for value in datasets.subject_values_for_hash(inventory.dataset(name), digest.lower()):
                address = normalize_email(str(value))
                if hashlib.sha256(address.encode()).hexdigest() == digest.lower():
                    return address
    return None


# ------------------------------------------------------------------ the operations


def submit(controller_id: str, body: OpenDsrRequest, raw: bytes, *, now: datetime | None = None) -> Receipt:
    """Accept a controller's request: store it as pending with the controller's reference (a duplicate
    subject_request_id is refused, writing nothing), audit it, and queue its start after the
    cancellation window. Raises OpenDsrRejected."""
    moment = utc_now(now)
    ring = key_ring()
    raw_addresses = [
        normalize_email(i.identity_value)
        for i in body.subject_identities
        if i.identity_type == "email" and i.identity_format == "raw"
    ]
    digests = [
        i.identity_value.lower()
        for i in body.subject_identities
        if i.identity_type == "email" and i.identity_format == "sha256"
    ]
    customer_ids = [i.identity_value for i in body.subject_identities if i.identity_type == "controller_customer_id"]
    if len(set(raw_addresses)) > 1:
        raise OpenDsrRejected("subject_identities holds more than one raw email; send one request per subject")
    email = raw_addresses[0] if raw_addresses else _resolve_address(digests)
    # Without a known address nothing is searched (every dataset is found from it, and holds are by it).
    known = [(ACCOUNT_ID, value, 1) for value in customer_ids] if email else []
    subject_ref = ring.subject_ref(email) if email else ring.mac("opendsr-subject", "|".join(sorted(digests)))
    regulation = Regulation(body.regulation)
    request_id = new_request_id()
    request = new_request(
        request_id,
        RequestType(body.subject_request_type),
        Status.pending,
        regulation,
        subject_ref,
        moment,
        email=email,
        identities=tuple(known),
        controller=controller_id,
    )
    link = {
        "request_id": request_id,
        "controller_id": controller_id,
        "subject_request_id": body.subject_request_id,
        "received_time": rfc3339(moment),
        "submitted_time": body.submitted_time,
        "status_callback_urls": body.status_callback_urls or [],
        "api_version": body.api_version,
    }
    rows = [
        RequestEventRecord(
            _controller_pk(controller_id, body.subject_request_id),
            LINK_SK,
            at=rfc3339(moment),
            kind="opendsr_request",
            actor="controller",
            detail=link,
        ),
        RequestEventRecord(pk_of(request_id), LINK_SK, at=rfc3339(moment), kind="opendsr_request", detail=link),
    ]
    try:
        stored = repository.create(request, actor="controller", also=rows)
    except ConflictingWrite as exc:
        raise OpenDsrRejected(
            "subject_request_id has already been used by this controller", reason="DuplicateRequest"
        ) from exc
    audit.append(
        "request.received",
        actor="controller",
        request_id=request_id,
        subject_ref=subject_ref,
        details={
            "type": request.type.value,
            "regulation": regulation.value,
            "via": "opendsr",
            "identities": sorted({f"{i.identity_type}:{i.identity_format}" for i in body.subject_identities}),
            "address_known": email is not None,
        },
        at=moment,
    )
    _queue_start(request_id)
    opendsr_callbacks.status_changed(stored)
    logger.info("controller request received", request_id=request_id, request_type=request.type)
    fields: dict[str, Any] = {
        "controller_id": controller_id,
        "expected_completion_time": rfc3339(stored.due_at),
        "received_time": rfc3339(moment),
        "encoded_request": base64.b64encode(raw).decode("ascii"),
        "subject_request_id": body.subject_request_id,
        "api_version": API_VERSION,
    }
    # Lethe's own reference, for the controller to quote to the operator (`lethe requests show <it>`).
    extension: dict[str, Any] = {"request_id": request_id}
    if digests:
        able, unable = hashed_datasets()
        extension |= {
            "sha256_matched_by": able,
            "sha256_cannot_match": unable,
            "note": (
                "Datasets that cannot match a hashed address are searched by the address once a "
                "dataset that can has matched it; if none has, they are not searched."
            ),
        }
    fields["extensions"] = {signing.processor_domain(): extension}
    return Receipt(**fields, processor_signature=sign_fields(fields))


def _queue_start(request_id: str) -> None:
    task = fulfilment.DatasetTask(kind=START_KIND, request_id=request_id, dataset="*")
    settings = get_settings()
    queues.send(settings.work_queue_url, task.model_dump_json(), delay_seconds=settings.opendsr_start_delay_seconds)


def start(request_id: str) -> dict[str, Any]:
    """The cancellation window is over: fan the request out, unless the controller cancelled it."""
    try:
        fulfilment.start(request_id, actor="controller")
    except (InvalidTransition, RequestNotFound):
        logger.info("controller request not started: no longer pending", request_id=request_id)
        return {"request_id": request_id, "started": False}
    return {"request_id": request_id, "started": True}


def link_for(controller_id: str, subject_request_id: str) -> dict[str, Any]:
    """The controller's reference to one of its requests. Raises OpenDsrNotFound, also for a
    subject_request_id another controller used (the key is the caller's)."""
    if not re.fullmatch(UUID4, subject_request_id):
        raise OpenDsrRejected("subject_request_id must be a lowercase UUID v4")
    key = _controller_pk(controller_id, subject_request_id)
    rows = list(RequestEventRecord.query(key, RequestEventRecord.sk == LINK_SK, consistent_read=True))
    if not rows or (rows[0].detail or {}).get("controller_id") != controller_id:
        raise OpenDsrNotFound("no request with this subject_request_id")
    return dict(rows[0].detail or {})


def status(controller_id: str, subject_request_id: str) -> StatusAnswer:
    link = link_for(controller_id, subject_request_id)
    request = repository.get(link["request_id"])
    url, count = results_of(request)
    return StatusAnswer(
        controller_id=controller_id,
        expected_completion_time=rfc3339(request.due_at),
        subject_request_id=subject_request_id,
        request_status=OPENDSR_STATUS[request.status],
        results_url=url,
        results_count=count,
    )


def cancel(controller_id: str, subject_request_id: str, *, now: datetime | None = None) -> Cancellation:
    """Cancel a request still pending. Once in progress (or ended) it cannot be, and the answer says so."""
    moment = utc_now(now)
    link = link_for(controller_id, subject_request_id)
    try:
        transition(
            link["request_id"],
            Status.canceled,
            allowed_from=CANCELLABLE,
            actor="controller",
            detail={"reason": "cancelled by the controller"},
            now=moment,
        )
    except InvalidTransition as exc:
        raise OpenDsrRejected("only a pending request can be cancelled", reason="InvalidState") from exc
    fields = {
        "controller_id": controller_id,
        "received_time": rfc3339(moment),
        "subject_request_id": subject_request_id,
        "api_version": API_VERSION,
    }
    return Cancellation(**fields, processor_signature=sign_fields(fields))
