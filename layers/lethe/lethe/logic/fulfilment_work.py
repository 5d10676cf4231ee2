"""Fulfilment's work on one dataset, per request type: export it, erase it (delete, anonymize or
isolate, as the dataset and any legal hold say), rectify it, restrict it, or nothing (the types
settled once, when the request is finalized). Each effect is a conditional write of the data floor,
so a redelivered task applies nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from lethe.data import datasets, ledger, request_tasks, stores, vault
from lethe.data.expiry import parse_instant
from lethe.data.requests import DataSubjectRequest
from lethe.domain import RequestType
from lethe.inventory import Action, Dataset, get_inventory
from lethe.keys import KeyRing
from lethe.logic import exports, legal_holds, own_data
from lethe.logic.identities import Lookup
from lethe.logic.requests import add_event

EXPORT_TYPES = frozenset({RequestType.access, RequestType.portability})
ERASURE_TYPES = frozenset({RequestType.erasure, RequestType.child_data_report})
# Types that touch each dataset; the others are settled once, when the request is finalized.
DATASET_TYPES = EXPORT_TYPES | ERASURE_TYPES | {RequestType.rectification, RequestType.restriction}


def _customers_of(dataset: Dataset, items: Iterable[dict[str, Any]], found: set[str]) -> Iterator[dict[str, Any]]:
    for item in items:
        if dataset.customer and item.get(dataset.customer) is not None:
            found.add(str(item[dataset.customer]))
        yield item


def _tell_customers(request: DataSubjectRequest, dataset: Dataset, customers: set[str]) -> int:
    """Data held for a customer: the request is routed to it as an event (no raw email in it)."""
    if dataset.controller != "customer" or not customers:
        return 0
    detail = {
        "request_id": request.request_id,
        "type": request.type.value,
        "dataset": dataset.name,
        "customer_ids": sorted(customers),
        "subject_ref": request.subject_ref,
    }
    request_tasks.tell_customer(detail)
    return len(customers)


def _export(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    customers: set[str] = set()
    count = exports.write_part(
        request.request_id, dataset, _customers_of(dataset, lookup.items(), customers), part=lookup.task
    )
    routed = _tell_customers(request, dataset, customers)
    return {"action": "export", "items": count, "customers_told": routed}


def purge_at(dataset: Dataset, item: dict[str, Any], now: datetime) -> datetime:
    """The end of the item's retention (never before now): when the vault may let it go."""
    rule = dataset.retention
    since = parse_instant(item.get(rule.since)) if rule is not None else None
    if rule is None or since is None:
        return now
    return max(rule.after.after(since), now)


def _erase(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    assert request.email is not None
    holds = legal_holds.holds_for_email(request.email, dataset.name)
    action = dataset.on_erasure
    kept_because = None
    if holds:
        # A legal hold wins over erasure: the items are isolated, never deleted or altered.
        action = Action.isolate
        kept_because = "legal hold: " + "; ".join(h.reason for h in holds)
    elif action is Action.isolate:
        kept_because = (dataset.retention.basis if dataset.retention and dataset.retention.basis else None) or (
            "kept until the end of its statutory retention"
        )
    customers: set[str] = set()
    # Every item is read, and its links recorded, before anything is written: once masked or
    # deleted, an item can no longer say which account it belonged to.
    items = list(_customers_of(dataset, lookup.items(), customers))
    lookup.persist()
    counts = {"found": 0, "deleted": 0, "anonymized": 0, "isolated": 0, "unchanged": 0, "retention_ended": 0}
    kept_until: datetime | None = None
    kept: dict[tuple[str, str], int] = {}
    # The erasure ledger knows the subject before anything is erased, each item once it is.
    erased = ledger.Erasure("erasure", request.subject_ref, request.request_id)
    ledger.record_subject(request.subject_ref, reference=request.request_id, now=now)
    if dataset.in_s3:
        return _erase_rows(request, dataset, lookup, ring, now, action, items, erased, holds, kept_because)
    store = stores.store_for(dataset, ring)
    if action is Action.delete:
        removed = store.delete(dataset, list(lookup.values), items, erased=erased)
        counts["found"] += removed.found
        counts["deleted"] = removed.deleted
    elif action is Action.anonymize:
        pseudonyms = own_data.pseudonyms_for(request.request_id)  # never the deployment's keys
        masked = store.mask(dataset, list(lookup.values), items, pseudonyms, now, erased=erased)
        counts["found"] += masked.found
        counts["anonymized"] += masked.anonymized
        counts["unchanged"] += masked.unchanged
    else:
        subject_ref = ring.subject_ref(request.email)
        reason = "legal_hold" if holds else "statutory_retention"
        for item in items:
            counts["found"] += 1
            until_end = purge_at(dataset, item, now)
            done = vault.isolate_item(
                dataset,
                datasets.key_of(dataset, item),
                item,
                reason=reason,
                purge_at=until_end,
                subject_ref=subject_ref,
                request_id=request.request_id,
                hold_ids=[h.hold_id for h in holds] or None,
                now=now,
                erased=erased,
            )
            counts["isolated" if done else "unchanged"] += 1
            # What the certificate may truthfully say: until when each item is kept, or that its period is over.
            if done and until_end <= now:
                counts["retention_ended"] += 1
            elif done:
                kept_until = max(kept_until or until_end, until_end)
            # What the vault keeps and until when (a held item is purged no earlier than this).
            until = until_end.date().isoformat()
            kept[(reason, until)] = kept.get((reason, until), 0) + 1
    routed = _tell_customers(request, dataset, customers)
    return {
        "action": action.value,
        **counts,
        "kept": [{"reason": r, "until": u, "items": n} for (r, u), n in sorted(kept.items())] or None,
        "kept_because": kept_because if counts["isolated"] else None,
        "kept_until": kept_until.isoformat(timespec="seconds") if kept_until else None,
        "hold_ids": [h.hold_id for h in holds],
        "customers_told": routed,
        "controller": dataset.controller,
    }


def _erase_rows(
    request: DataSubjectRequest,
    dataset: Dataset,
    lookup: Lookup,
    ring: KeyRing,
    now: datetime,
    action: Action,
    items: list[dict[str, Any]],
    erased: ledger.Erasure,
    holds: list[legal_holds.Hold],
    kept_because: str | None,
) -> dict[str, Any]:
    """An erasure in a store of rows inside objects (lethe.data.stores): the same decision as for a
    table, carried out by rewriting the objects that hold the subject. Rows under a legal hold
    cannot be moved to the vault one by one: they are left exactly as they are, and said so."""
    store = stores.store_for(dataset, ring)
    values = list(lookup.values)
    if action is Action.isolate:
        return {
            "action": "kept",
            "found": len(items),
            "deleted": 0,
            "anonymized": 0,
            "isolated": 0,
            "unchanged": len(items),
            "kept_because": kept_because,
            "hold_ids": [h.hold_id for h in holds],
            "controller": dataset.controller,
        }
    if action is Action.delete:
        done = store.delete(dataset, values, items, erased=erased)
    else:
        done = store.mask(dataset, values, items, own_data.pseudonyms_for(request.request_id), now, erased=erased)
    return {
        "action": action.value,
        **done.counts(),
        "found": max(done.found, len(items)),
        "isolated": 0,
        "objects_rewritten": done.objects_rewritten,
        "versions_deleted": done.versions_deleted,
        # Rows that did not parse are kept as they are: named per object, for a person to look at.
        "unparseable": dict(sorted(done.unparseable.items())) or None,
        "hold_ids": [],
        "customers_told": 0,
        "controller": dataset.controller,
    }


def _rectify(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    """Apply corrections to the fields of this dataset a subject may correct (never one that identifies
    whose an item is: its key, its subject or link attributes). Old and new values go to the request's
    events (never the audit)."""
    if dataset.in_s3:
        return _not_in_objects("rectify", lookup)
    corrections = dict(request.corrections or {})
    key_attributes = set(datasets.table_key(dataset).attributes)
    correctable = get_inventory().correctable_fields(dataset.name)
    allowed = {name: value for name, value in corrections.items() if name in correctable and name not in key_attributes}
    items = list(lookup.items())
    lookup.persist()
    if not allowed:
        return {"action": "rectify", "found": 0, "rectified": 0, "fields": []}
    attribute = dataset.subject.attribute
    found = rectified = 0
    for item in items:
        found += 1
        to_set = {name: value for name, value in allowed.items() if item.get(name) != value}
        if not to_set:
            continue
        done = datasets.update_item(
            dataset,
            item,
            to_set=to_set,
            condition_attribute=attribute,
            condition_value=item[attribute],
            unchanged=[name for name in to_set if name in item],
        )
        if done:
            rectified += 1
            add_event(
                request.request_id,
                "rectified",
                detail={
                    "dataset": dataset.name,
                    "key": {k: str(v) for k, v in datasets.key_of(dataset, item).items()},
                    "changes": {name: {"old": _plain(item.get(name)), "new": value} for name, value in to_set.items()},
                },
            )
    return {"action": "rectify", "found": found, "rectified": rectified, "fields": sorted(allowed)}


def _plain(value: Any) -> Any:
    return json.loads(exports.dumps(value)) if value is not None else None


def _restrict(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    """Mark each item restricted: retention and marketing skip items carrying the attribute."""
    if dataset.in_s3:
        return _not_in_objects("restrict", lookup)
    attribute = dataset.subject.attribute
    found = marked = 0
    items = list(lookup.items())
    lookup.persist()
    for item in items:
        found += 1
        if item.get(datasets.RESTRICTED_ATTRIBUTE) == request.request_id:
            continue
        if datasets.update_item(
            dataset,
            item,
            to_set={datasets.RESTRICTED_ATTRIBUTE: request.request_id},
            condition_attribute=attribute,
            condition_value=item[attribute],
        ):
            marked += 1
    return {"action": "restrict", "found": found, "restricted": marked}


def _not_in_objects(action: str, lookup: Lookup) -> dict[str, Any]:
    """Rows inside objects are not corrected or marked one by one: the task says so (counts only)."""
    found = sum(1 for _ in lookup.items())
    lookup.persist()
    return {"action": action, "found": found, "note": f"{action} is not carried out on rows inside objects"}


def _nothing(
    request: DataSubjectRequest, dataset: Dataset, lookup: Lookup, ring: KeyRing, now: datetime
) -> dict[str, Any]:
    return {"action": "none"}


WORK: dict[RequestType, Callable[[DataSubjectRequest, Dataset, Lookup, KeyRing, datetime], dict[str, Any]]] = {
    RequestType.access: _export,
    RequestType.portability: _export,
    RequestType.erasure: _erase,
    RequestType.child_data_report: _erase,
    RequestType.rectification: _rectify,
    RequestType.restriction: _restrict,
    RequestType.objection: _nothing,
    RequestType.marketing_opt_out: _nothing,
    RequestType.consent_withdrawal: _nothing,
    RequestType.complaint: _nothing,
}
