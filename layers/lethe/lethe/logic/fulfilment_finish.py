"""Fulfilment's end: once every dataset's task is done, the request is settled. Task results are
merged per dataset; an erasure is read again first (lethe.logic.erasure_proof) and a residue fails
the request instead of certifying it; then the export and its link, or the erasure certificate,
suppression and Lethe's own copies, or the consent withdrawal; the recipients are told (Art. 19);
each final notice goes once; and the request completes. Safe to run again after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from lethe.data import request_tasks
from lethe.data.requests import DataSubjectRequest
from lethe.data.transient import retry_step
from lethe.domain import RequestType, Status
from lethe.errors import ConflictingWrite, InvalidTransition
from lethe.inventory import Inventory, get_inventory
from lethe.logic import certificates, erasure_proof, exports, identities, own_data, recipients, suppression
from lethe.logic.fulfilment_work import ERASURE_TYPES, EXPORT_TYPES
from lethe.logic.identities import parse_task
from lethe.logic.reports import completed_in_part
from lethe.logic.requests import add_event, transition
from lethe.settings import get_settings

logger = Logger(child=True)


def by_dataset(results: dict[str, dict[str, Any]], inventory: Inventory) -> dict[str, dict[str, Any]]:
    """Task results (one per dataset and round) merged per dataset: counts added up, and each
    dataset of the inventory present, with the identity it is found through."""
    merged: dict[str, dict[str, Any]] = {}
    for task, result in sorted(results.items(), key=lambda kv: parse_task(kv[0])[1]):
        name = parse_task(task)[0]
        into = merged.setdefault(name, {})
        for key, value in result.items():
            if key in _COUNTS and isinstance(value, int | float):
                into[key] = int(into.get(key) or 0) + int(value)
            elif key == "kept" and value:
                into["kept"] = [*(into.get("kept") or []), *value]
            elif key not in into or into[key] in (None, "none"):
                into[key] = value
    for name, dataset in inventory.datasets.items():
        entry = merged.setdefault(name, {"action": "none", "found": 0, "reached": False})
        entry.setdefault("found_through", dataset.subject.identity)
        entry.setdefault("reached", True)
    return merged


_COUNTS = (
    "items",
    "found",
    "deleted",
    "anonymized",
    "isolated",
    "unchanged",
    "rectified",
    "restricted",
    "customers_told",
)


def finalize(
    request_id: str, *, request: DataSubjectRequest | None = None, tasks: dict[str, dict[str, Any]] | None = None
) -> None:
    """Settle the request once every dataset is done: the export and its link, the erasure
    certificate, suppression and consent, then completed. Safe to run again after a crash.
    `request` and `tasks`, when given, were just read by the caller (no second read)."""
    request = request or request_tasks.read_request(request_id)
    if request.status is not Status.in_progress or request.datasets_pending:
        return
    inventory = get_inventory()
    tasks = request_tasks.task_results(request_id) if tasks is None else tasks
    results = by_dataset(tasks, inventory) if tasks else {}
    now = datetime.now(UTC)
    if request.type in ERASURE_TYPES and not _proven_erased(request, inventory, results):
        return
    outcome: dict[str, Any] = {"datasets": {name: _summary(result) for name, result in results.items()}}
    email = request.email
    # Art. 19: each notified recipient of each dataset touched is told once (tried now, retried by a queue).
    told = retry_step(recipients.tell, request, results, inventory, what="tell recipients")
    if told:
        outcome["recipients"] = [
            t.model_dump(include={"recipient", "dataset", "channel", "state", "told_at"}) for t in told
        ]
    if request.type in EXPORT_TYPES:
        own = retry_step(own_data.export_sections, request, what="read Lethe's own data")
        counts = exports.assemble(
            request_id,
            inventory,
            request_type=request.type.value,
            now=now,
            parts=_parts(tasks),
            found_through={n: r["found_through"] if r.get("reached") else None for n, r in results.items()},
            own=own,
            by_hand={n: r["by_hand"] for n, r in results.items() if r.get("by_hand")},
        )
        link = exports.export_link(request_id)
        outcome["export"] = {"items": sum(counts.values()), "link_ttl_seconds": get_settings().export_link_ttl_seconds}
        if email:
            _notify_once(
                request_id, "export_link", lambda: certificates.send_export_link(email, request, link, results)
            )
    elif request.type in ERASURE_TYPES:
        if email:
            erased_own = retry_step(own_data.erase_own_copies, request, now, what="erase Lethe's own copies")
            outcome["lethe"] = erased_own
            retry_step(suppression.suppress, email, reason="erasure", source=request_id, what="suppress")
            _notify_once(
                request_id,
                "erasure_certificate",
                lambda: certificates.send_erasure_certificate(
                    email, request, results, now=now, own=erased_own, told=told
                ),
            )
    elif request.type in (RequestType.objection, RequestType.marketing_opt_out, RequestType.consent_withdrawal):
        if email:
            _withdraw_marketing(email, request_id)
        add_event(request_id, "consent_withdrawn", detail={"type": request.type.value, "purposes": ["marketing_email"]})
    elif request.type in (RequestType.rectification, RequestType.restriction) and email:
        _notify_once(request_id, "completion", lambda: certificates.send_completion(email, request, results, told=told))
    # After an erasure, the request itself keeps no way to reach the person: only the HMAC reference.
    forget_contact = (
        {"email": None, "name": None, "details": None, "corrections": None, "identities": None, "agent": None}
        if request.type in ERASURE_TYPES
        else {}
    )
    try:
        transition(
            request_id,
            Status.completed,
            allowed_from={Status.in_progress},
            actor="system",
            # The audit record says whether anything was kept back (CCPA § 7102 "in part"; lethe.logic.reports).
            detail={"in_part": completed_in_part(outcome)},
            outcome=outcome,
            **forget_contact,
        )
    except (InvalidTransition, ConflictingWrite):
        logger.info("request already finalized", request_id=request_id)
    if request.type in ERASURE_TYPES:
        identities.forget_links(request_id)


def _parts(tasks: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The export part files of each dataset: one per round it was read in."""
    parts: dict[str, list[str]] = {}
    for task in sorted(tasks, key=lambda t: parse_task(t)[1]):
        parts.setdefault(parse_task(task)[0], []).append(task)
    return parts


def _proven_erased(request: DataSubjectRequest, inventory: Inventory, results: dict[str, dict[str, Any]]) -> bool:
    """Read every dataset again for every identity of the subject. Nothing may remain in a live
    table (what is kept is in the vault, with its reason and date). A residue fails the request,
    naming the datasets, instead of certifying it; an operator's retry reads them again."""
    left = erasure_proof.remaining(request, inventory)
    for name, count in left.items():
        results.setdefault(name, {})["remaining"] = count
    residue = {name: count for name, count in sorted(left.items()) if count}
    if not residue:
        return True
    logger.warning("erasure not certified: items remain", request_id=request.request_id, datasets=sorted(residue))
    try:
        transition(
            request.request_id,
            Status.failed,
            allowed_from={Status.in_progress},
            actor="system",
            detail={"residue": residue},
            datasets_failed=set(residue),
        )
    except (InvalidTransition, ConflictingWrite):
        logger.info("request already moved on", request_id=request.request_id)
    return False


def _notify_once(request_id: str, notice: str, send: Callable[[], object]) -> None:
    """Send the subject's final notice once, however often finalization runs: a row in the request's
    partition records that it went (lethe.data.request_tasks). Finalization can fail after the email
    and run again on redelivery; without the row the subject would get the email again."""
    if request_tasks.notice_sent(request_id, notice):
        return
    send()
    request_tasks.record_notice_sent(request_id, notice)


def _withdraw_marketing(email: str, request_id: str) -> None:
    from lethe.logic import consent

    consent.withdraw_marketing(email, source=request_id)


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "action",
        "items",
        "found",
        "deleted",
        "anonymized",
        "isolated",
        "rectified",
        "restricted",
        "kept_because",
        "kept",
        "found_through",
        "remaining",
        "by_hand",
    )
    return {k: result[k] for k in keep if result.get(k) is not None}
