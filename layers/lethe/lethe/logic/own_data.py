"""Lethe's own data, under its own rules (DESIGN.md "Lethe's own data").

Lethe holds personal data too: request rows (address, name, what the person wrote, corrections),
consent-ledger contacts, exports in S3, and the vault. Here Lethe keeps its promises about them:
- an access export shows what Lethe itself holds about the subject (the `lethe` dataset: their
  requests and the consent rows that can reach their address) and what the vault keeps apart, each
  item with its reason and purge date;
- an erasure also erases Lethe's copies: earlier exports (every version of every object, so their
  links die), consent contacts and open subscriptions, and the contact details of the subject's
  other requests (found by the requests table's by_subject index);
- a request that has ended keeps its address, name and corrections for
  `request_contact_retention_days`; the retention run then drops them (a Query of the sparse
  by_pii_scrub index), leaving only PII-free fields and the audit;
- an erasure's pseudonyms use a key of that request alone, removed when the request ends.

Nothing here logs or audits a raw value: counts and HMAC references only.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from lethe.data import audit, export_objects, vault
from lethe.data import requests as repository
from lethe.data.consents import contacts_for
from lethe.data.datasets import table_key
from lethe.data.masking import RequestKey
from lethe.data.models import RequestEventRecord
from lethe.data.requests import DataSubjectRequest, pk_of
from lethe.data.writes import get_or_none, save_if
from lethe.domain import Model
from lethe.inventory import Dataset, get_inventory
from lethe.keys import key_ring
from lethe.settings import get_settings

LETHE_DATASET = "lethe"
_ERASURE_ROW = "OWN#erasure"
# A rectification's events keep which dataset was corrected, not the old and new values.
_RECTIFIED_KEEP = ("dataset",)


# ---------------------------------------------------------------- request lifetime


def on_end(moment: datetime) -> dict[str, Any]:
    """The summary updates of a request that ends: its contact details are filed for the scrub, and
    its pseudonym key is gone."""
    days = get_settings().request_contact_retention_days
    return {
        "pii_scrub": repository.PII_SCRUB_DUE,
        "pii_scrub_at": moment + timedelta(days=days),
        "erasure_key": None,
    }


def on_start(*, erasure: bool) -> dict[str, Any]:
    """The summary updates of a request that starts: an erasure gets its pseudonym key with the
    transition itself (no write of its own; `pseudonyms_for` makes one for a request without)."""
    return {"erasure_key": secrets.token_hex(32)} if erasure else {}


def pseudonyms_for(request_id: str) -> RequestKey:
    """The pseudonymizer of one erasure: its own key, which no one holds once the request ends."""
    return RequestKey(repository.erasure_key(request_id))


def masked_word(dataset: Dataset) -> str:
    """What an erasure's masking of this dataset truly is. Every strategy is one-way once the
    request's key is gone (the inventory refuses a masked field that is a key attribute), so the
    items are anonymized, unless they are still stored under the subject's own identifier: then
    they are only masked, and the certificate says so."""
    if dataset.in_s3:
        # Rows in objects have no key: they stay filed under the subject only if that field is not masked.
        masked = dataset.subject.attribute in dataset.fields
        return "anonymized" if masked else "masked but still filed under your identifier"
    if dataset.subject.attribute in table_key(dataset).attributes:
        return "masked but still filed under your identifier"
    return "anonymized"


def scrub_ended_requests(now: datetime) -> int:
    """The retention run's part for Lethe's own requests table: every ended request whose period is
    over loses its contact details (and its rectifications' values). Returns how many."""
    scrubbed = 0
    for request_id in list(repository.scrub_due(now)):
        repository.strip_event_values(request_id, "rectified", _RECTIFIED_KEEP)
        if repository.scrub_contact(request_id, ended_only=True):
            scrubbed += 1
    if scrubbed:
        audit.append("own_data.requests_scrubbed", at=now, details={"requests": scrubbed})
    return scrubbed


# ---------------------------------------------------------------- exports


class OwnSections(Model):
    """What an access export adds to the inventory's datasets: Lethe's own dataset and the vault."""

    header: dict[str, Any]
    items: list[dict[str, Any]]
    vault: list[dict[str, Any]]


def lethe_header() -> dict[str, Any]:
    days = get_settings().request_contact_retention_days
    return {
        "description": "Lethe, our privacy-request system: your requests to us and the consent records "
        "that can reach your address",
        "controller": "us",
        "purposes": ["answering your privacy requests", "proving we answered them", "keeping your consent choices"],
        "recipients": ["Amazon Web Services (hosting)"],
        "retention": {
            "kept_for": f"P{days}D",
            "counted_from": "the end of each request",
            "then": "address, name and what you wrote removed",
            "basis": "Kept only while a question about how we answered may still come",
        },
        "categories": {
            "email": "user.contact.email",
            "name": "user.name",
            "details": "user.content",
            "corrections": "user.content",
            "contact": "user.contact.email",
        },
    }


def _request_item(request: DataSubjectRequest) -> dict[str, Any]:
    item = {
        "record": "request",
        "request_id": request.request_id,
        "type": request.type.value,
        "status": request.status.value,
        "created_at": request.created_at.isoformat(),
        "email": request.email,
        "name": request.name,
        "details": request.details,
        "corrections": request.corrections,
    }
    return {k: v for k, v in item.items() if v is not None}


def _vault_item(entry: vault.VaultEntry) -> dict[str, Any]:
    dataset = get_inventory().datasets.get(entry.dataset)
    if entry.reason == "legal_hold":
        why = "a legal hold: we may not delete it while the hold lasts"
    else:
        basis = dataset.retention.basis if dataset and dataset.retention else None
        why = basis or "a statutory retention period"
    return {
        "dataset": entry.dataset,
        "held_in": dataset.description if dataset else entry.dataset,
        "reason": entry.reason,
        "why": why,
        "isolated_at": entry.isolated_at,
        "purge_at": entry.purge_at,
        "item": entry.item,
    }


def export_sections(request: DataSubjectRequest) -> OwnSections:
    """What Lethe and its vault hold about the requester, read by their subject references."""
    assert request.email is not None  # a verified request always has its contact address
    refs = key_ring().subject_refs(request.email)
    items = [_request_item(repository.get(rid)) for rid in repository.request_ids_of_subject(refs)]
    items += [
        {
            "record": "consent",
            "subject_id": s.subject_id,
            "purpose": s.purpose,
            "granted": s.granted,
            "at": s.at.isoformat(),
            "contact": s.contact,
        }
        for s in contacts_for(refs)
    ]
    kept = [_vault_item(entry) for entry in vault.entries_for_subject(refs)]
    return OwnSections(header=lethe_header(), items=items, vault=kept)


VAULT_DESCRIPTION = (
    "Data we may not delete yet (a legal hold, or a period the law sets, such as for invoices). It is "
    "kept apart from every processing activity and deleted on its purge date."
)


def vault_json(sections: OwnSections) -> dict[str, Any]:
    return {"description": VAULT_DESCRIPTION, "items": sections.vault}


def vault_html(sections: OwnSections, render_item: Any) -> str:
    """The vault's section of export.html; every value is escaped (by `render_item` for the item)."""
    e = html.escape
    parts = [f"<section><h2>Kept apart in our vault</h2><p>{e(VAULT_DESCRIPTION)}</p>\n"]
    for kept in sections.vault:
        parts.append(
            f"<h3>{e(str(kept['held_in']))}</h3><p>Why we keep it: {e(str(kept['why']))}. "
            f"Kept apart since {e(str(kept['isolated_at']))}; deleted on or after {e(str(kept['purge_at']))}.</p>"
            + render_item(kept["item"], {})
        )
    parts.append(
        f"<p class=count>{len(sections.vault)} item(s).</p></section>\n"
        if sections.vault
        else "<p>We keep nothing about you in the vault.</p></section>\n"
    )
    return "".join(parts)


# ---------------------------------------------------------------- erasure


def delete_export(request_id: str) -> int:
    """Delete every object of one request's export, with every version and delete marker (the bucket
    is versioned; a noncurrent version would still hold the data). Its link then answers 410.
    Returns how many object versions went."""
    from lethe.logic.exports import prefix

    return export_objects.delete_everything_under(prefix(request_id))


def _saved_erasure(request_id: str) -> dict[str, Any] | None:
    row = get_or_none(RequestEventRecord, pk_of(request_id), _ERASURE_ROW)
    return None if row is None else dict(row.detail or {})


def _save_erasure(request_id: str, outcome: dict[str, Any], now: datetime) -> dict[str, Any]:
    row = RequestEventRecord(
        pk_of(request_id),
        _ERASURE_ROW,
        at=now.isoformat(timespec="seconds"),
        kind="own_data_erased",
        actor="system",
        detail=outcome,
    )
    if save_if(row, RequestEventRecord.sk.does_not_exist()):
        return outcome
    return _saved_erasure(request_id) or outcome


def _other_requests(request: DataSubjectRequest, refs: list[str]) -> Iterator[DataSubjectRequest]:
    for request_id in repository.request_ids_of_subject(refs):
        if request_id != request.request_id:
            yield repository.get(request_id)


def erase_own_copies(request: DataSubjectRequest, now: datetime) -> dict[str, Any]:
    """An erasure's part in Lethe's own stores. Run once per request: what it did is saved in the
    request's partition, so a finalization run again reports the same (and does nothing twice)."""
    saved = _saved_erasure(request.request_id)
    if saved is not None:
        return saved
    from lethe.logic import consent

    assert request.email is not None
    refs = key_ring().subject_refs(request.email)
    outcome = {"export_objects_deleted": 0, "exports_revoked": 0, "other_requests_cleared": 0, "open_requests": 0}
    for other in _other_requests(request, refs):
        deleted = delete_export(other.request_id)
        outcome["export_objects_deleted"] += deleted
        outcome["exports_revoked"] += 1 if deleted else 0
        repository.strip_event_values(other.request_id, "rectified", _RECTIFIED_KEEP)
        if repository.scrub_contact(other.request_id, ended_only=True):
            outcome["other_requests_cleared"] += 1
        else:
            # A request still open needs the address (and corrections) to be answered; what the person
            # wrote goes now, the rest when it ends plus the retention period.
            repository.scrub_contact(other.request_id, attributes=("details",), ended_only=False)
            outcome["open_requests"] += 1
    outcome["consent_contacts_cleared"] = consent.erase_contacts(request.email, source=request.request_id)
    # Every dataset is done: the pseudonym key goes now, before the certificate calls anything anonymized.
    repository.scrub_contact(request.request_id, attributes=("erasure_key",), ended_only=False)
    return _save_erasure(request.request_id, outcome, now)


def certificate_lines(own: dict[str, Any]) -> list[str]:
    """The certificate's account of Lethe's own copies."""
    lines = [
        "What our privacy-request system itself held about you:",
        f"- Earlier copies of your data prepared for you: {own.get('export_objects_deleted', 0)} file(s) deleted "
        f"with every stored version, from {own.get('exports_revoked', 0)} export(s); "
        "their download links no longer work",
        f"- Consent records that could reach your address: {own.get('consent_contacts_cleared', 0)} cleared "
        "(those subscriptions have ended)",
        f"- Your other requests to us: address, name and what you wrote erased from "
        f"{own.get('other_requests_cleared', 0)}",
    ]
    if own.get("open_requests"):
        lines.append(
            f"- {own['open_requests']} other request(s) still open keep your address until we have answered them "
            f"(then {get_settings().request_contact_retention_days} days); what you wrote in them is erased"
        )
    lines.append(
        "- This request keeps no address or name: only a keyed reference to you and the record of what was done"
    )
    return lines
