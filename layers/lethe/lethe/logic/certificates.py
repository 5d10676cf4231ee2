"""What the subject is told when a request is carried out: the export link, the erasure certificate
(per dataset what was deleted, anonymized or isolated, and why anything was kept), a confirmation."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from lethe.data import datasets
from lethe.data.mail import plain_text, send_email
from lethe.data.requests import DataSubjectRequest
from lethe.inventory import get_inventory, identity_label
from lethe.logic import own_data
from lethe.settings import get_settings

# Operator text quoted in an email (a hold, denial or extension reason) is data: one line, this long at most.
_REASON_LIMIT = 2000
_CUSTOMER_NOTE = (
    "Some of this data is held for a customer of ours who invited you (we process it on their behalf). "
    "We have passed your request on to them as well; they may contact you about it."
)


def _description(name: str) -> str:
    dataset = get_inventory().datasets.get(name)
    return dataset.description if dataset is not None else name


def _customer_told(results: dict[str, dict[str, Any]]) -> bool:
    return any(int(r.get("customers_told") or 0) > 0 for r in results.values())


def _day(value: str) -> str:
    return datetime.fromisoformat(value).strftime("%d %B %Y")


def _kept(result: dict[str, Any]) -> str:
    """What is kept of a dataset, why and until when, as the task recorded it (never more than it knows)."""
    isolated = int(result.get("isolated") or 0)
    if not isolated:
        return ""
    reason = plain_text(str(result.get("kept_because") or "its retention period"), limit=_REASON_LIMIT)
    if result.get("hold_ids"):
        return (
            f". Kept (isolated, out of all processing) because of a {reason}; "
            "deleted once the hold is lifted and its retention period has ended"
        )
    ended = int(result.get("retention_ended") or 0)
    parts = []
    if isolated - ended:
        until = f"until {_day(result['kept_until'])}" if result.get("kept_until") else "until its retention ends"
        parts.append(
            f"{isolated - ended} kept (isolated, out of all processing) {until} because: {reason}; then deleted"
        )
    if ended:
        parts.append(
            f"{ended} whose retention period ({reason}) has already ended: isolated, out of all processing, "
            "and deleted at the next daily vault purge"
        )
    return ". " + ". ".join(parts)


def _masked_word(name: str) -> str:
    dataset = get_inventory().datasets.get(name)
    return own_data.masked_word(dataset) if dataset is not None and not dataset.is_manual else "masked"


def erasure_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name in sorted(results):
        result = results[name]
        parts = [
            f"{result[k]} {label}"
            for k, label in (("deleted", "deleted"), ("anonymized", _masked_word(name)), ("isolated", "isolated"))
            if int(result.get(k) or 0)
        ]
        if result.get("by_hand"):
            lines.append(f"- {_description(name)}: {by_hand_text(result['by_hand'])}")
            continue
        line = f"- {_description(name)}{_through(result)}: " + (", ".join(parts) if parts else "nothing held about you")
        lines.append(line + _kept(result))
        if "remaining" in result:
            lines.append(f"  Read again after the erasure: {_remains(result)}")
    return lines


def _through(result: dict[str, Any]) -> str:
    """Which identity led there (never its value): "found through your account id"."""
    identity = result.get("found_through")
    if not identity:
        return ""
    if result.get("reached") is False:
        return f" (looked for by {identity_label(identity)}, which we do not know)"
    return f" (found through {identity_label(identity)})"


_KEPT_BECAUSE = {
    "legal_hold": "a legal hold",
    "statutory_retention": "statutory retention",
    "restriction": "a restriction of processing",
}


def _remains(result: dict[str, Any]) -> str:
    """What the re-read found: 0 remaining in the live data, and each kept item, why and until when."""
    text = f"{int(result.get('remaining') or 0)} remaining"
    kept = result.get("kept") or []
    if kept:
        text += "; kept in isolation: " + "; ".join(
            f"{k['items']} item(s) under {_KEPT_BECAUSE.get(k['reason'], k['reason'])}, until at least {k['until']}"
            for k in kept
        )
    return text + "."


_LONGEST_PITR_DAYS = 35  # what DynamoDB keeps at most


def backup_lines(results: dict[str, dict[str, Any]], *, now: datetime) -> list[str]:
    """Until when each table the erasure changed may still be restored as it was before: its
    point-in-time recovery window from now. A restore is erased again before use (lethe backups replay)."""
    by_day: dict[str, list[str]] = {}
    inventory = get_inventory()
    for name in sorted(results):
        result = results[name]
        if name not in inventory.datasets or not any(int(result.get(k) or 0) for k in _ERASED):
            continue
        if inventory.dataset(name).in_s3:
            continue  # an object's old versions are deleted with the rows: no restore brings them back
        days = datasets.recovery_window_days(inventory.dataset(name))
        if days == 0:
            continue
        day = (now + timedelta(days=_LONGEST_PITR_DAYS if days is None else days)).date().isoformat()
        by_day.setdefault(day, []).append(_description(name))
    if not by_day:
        return []
    return [
        "Backups: our tables can be restored as they were for a limited time, so backups may still hold "
        "the data above until:",
        *(f"- {day}: {', '.join(names)}" for day, names in sorted(by_day.items())),
        "If a backup is restored before then, we erase your data from it again before it is used.",
    ]


_ERASED = ("deleted", "anonymized", "isolated")


# ---------------------------------------------------------------- by hand, and recipients told


def by_hand_text(by_hand: dict[str, Any]) -> str:
    """What a person did in a system we cannot reach: who, when, and their note (quoted as data)."""
    note = plain_text(str(by_hand.get("note") or ""), limit=500)
    who = plain_text(str(by_hand.get("by") or "its owner"), limit=200)
    at = str(by_hand.get("at") or "")
    return f"done by hand by {who} on {_day(at) if at else 'a day not recorded'}" + (f": {note}" if note else "")


def recipient_lines(told: Sequence[Any] | None) -> list[str]:
    """Who we told of the request (GDPR Art. 19), and when; a notice not yet delivered is retried."""
    if not told:
        return []
    lines = ["We told those we had disclosed your data to (GDPR Art. 19):"]
    for notice in told:
        where = _description(notice.dataset)
        if notice.state == "sent" and notice.told_at:
            lines.append(f"- {notice.recipient} ({where}): told by {notice.channel} on {notice.told_at}")
        else:
            lines.append(f"- {notice.recipient} ({where}): pending, we keep trying until it is delivered")
    return lines


def erasure_certificate(
    request: DataSubjectRequest,
    results: dict[str, dict[str, Any]],
    *,
    now: datetime,
    own: dict[str, Any] | None = None,
    told: Sequence[Any] | None = None,
) -> str:
    text = [
        "Erasure certificate",
        "",
        f"Request: {request.request_id}",
        f"Completed: {now.isoformat(timespec='seconds')}",
        "",
        "What we did, per place where we held your data:",
        *erasure_lines(results),
        *(["", *own_data.certificate_lines(own)] if own is not None else []),
        "",
        "Masked values that were replaced by a pseudonym used a key made for this request alone, "
        "destroyed when it ended: no one, us included, can link them back to you.",
        "Isolated data is kept apart from every processing activity and deleted when its retention ends "
        "(or when the legal hold on it is lifted and its retention has ended).",
        "Your address is now on our suppression list (stored only as a keyed hash), "
        "so you will not receive marketing from us again.",
    ]
    if backups := backup_lines(results, now=now):
        text += ["", *backups]
    if told:
        text += ["", *recipient_lines(told)]
    if _customer_told(results):
        text += ["", _CUSTOMER_NOTE]
    return "\n".join(text) + "\n"


def send_erasure_certificate(
    email: str,
    request: DataSubjectRequest,
    results: dict[str, dict[str, Any]],
    *,
    now: datetime,
    own: dict[str, Any] | None = None,
    told: Sequence[Any] | None = None,
) -> str:
    body = erasure_certificate(request, results, now=now, own=own, told=told)
    return send_email(
        email,
        "Your erasure request is complete",
        body,
        html=f"<pre>{html.escape(body)}</pre>",
    )


def send_export_link(email: str, request: DataSubjectRequest, link: str, results: dict[str, dict[str, Any]]) -> str:
    days = max(1, get_settings().export_link_ttl_seconds // 86400)
    text = [
        "Your personal data is ready.",
        "",
        f"Download it here (valid for {days} day(s)): {link}",
        "",
        "It holds, for each place where we keep data about you: the data itself, the kind of data "
        "in each field, why we hold it, who receives it and how long we keep it. "
        f"Add ?format=json to the link for a machine-readable copy (request {request.request_id}).",
    ]
    if _customer_told(results):
        text += ["", _CUSTOMER_NOTE]
    body = "\n".join(text) + "\n"
    return send_email(email, "Your personal data export", body)


def send_completion(
    email: str, request: DataSubjectRequest, results: dict[str, dict[str, Any]], *, told: Sequence[Any] | None = None
) -> str:
    lines = []
    for name in sorted(results):
        result = results[name]
        if result.get("by_hand"):
            lines.append(f"- {_description(name)}: {by_hand_text(result['by_hand'])}")
            continue
        count = int(result.get("rectified") or result.get("restricted") or 0)
        if count:
            lines.append(f"- {_description(name)}: {count} record(s)")
    what = "corrected" if request.type.value == "rectification" else "restricted (kept, but no longer processed)"
    body = "\n".join(
        [
            f"Your {request.type.label} request {request.request_id} is complete.",
            "",
            f"Records {what}:" if lines else "We found nothing to change.",
            *lines,
        ]
    )
    if told:
        body += "\n\n" + "\n".join(recipient_lines(told))
    if _customer_told(results):
        body += "\n\n" + _CUSTOMER_NOTE
    return send_email(email, f"Your {request.type.label} request is complete", body + "\n")


def send_denial(email: str, request: DataSubjectRequest, reason: str) -> str:
    body = (
        f"We cannot carry out your {request.type.label} request {request.request_id}.\n\n"
        f"Reason: {plain_text(reason, limit=_REASON_LIMIT)}\n\n"
        "If you disagree, you may lodge a complaint with your data protection authority.\n"
    )
    return send_email(email, "About your privacy request", body)


def send_extension(email: str, request: DataSubjectRequest, reason: str, due_at: datetime) -> str:
    body = (
        f"We need more time for your {request.type.label} request {request.request_id}.\n\n"
        f"Reason: {plain_text(reason, limit=_REASON_LIMIT)}\n"
        f"We will answer by {due_at.strftime('%d %B %Y')}.\n"
    )
    return send_email(email, "Your privacy request: more time needed", body)
