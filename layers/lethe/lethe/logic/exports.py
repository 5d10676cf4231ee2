"""Access and portability exports: each dataset's items are streamed to a part file under
exports/<request_id>/, then assembled into export.json (machine-readable) and export.html (for a
person). Everything streams through S3 multipart uploads, so memory stays flat however many items
a subject has. The subject receives a signed link that expires (7 days at most)."""

from __future__ import annotations

import hmac
import html
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from lethe.data import export_files
from lethe.data.export_files import S3Writer
from lethe.errors import ExportLinkExpired, InvalidToken
from lethe.inventory import Dataset, Inventory, identity_label
from lethe.keys import key_ring
from lethe.logic.own_data import LETHE_DATASET, OwnSections, vault_html, vault_json
from lethe.settings import get_settings

CONTROLLER = {
    "name": "CaféX Communications Inc.",
    "contact": "privacy@cafex.com",
}


def prefix(request_id: str) -> str:
    return f"exports/{request_id}/"


def part_key(request_id: str, part: str) -> str:
    """A dataset's part file; a dataset read in more than one identity round has one per round."""
    return f"{prefix(request_id)}parts/{part}.jsonl"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)


def write_part(request_id: str, dataset: Dataset, items: Iterable[dict[str, Any]], *, part: str | None = None) -> int:
    """Stream one dataset's items (one JSON object a line) to its part file. Rewriting it on a
    redelivery gives the same file. Returns the number of items."""
    writer = S3Writer(part_key(request_id, part or dataset.name), "application/x-ndjson")
    count = 0
    try:
        for item in items:
            writer.write(dumps(item) + "\n")
            count += 1
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return count


def _part_lines(request_id: str, part: str) -> Iterator[dict[str, Any]]:
    return export_files.lines(part_key(request_id, part))


def dataset_header(dataset: Dataset) -> dict[str, Any]:
    retention = None
    if dataset.retention is not None:
        retention = {
            "kept_for": str(dataset.retention.after),
            "counted_from": dataset.retention.since,
            "then": dataset.retention.action.value,
            "basis": dataset.retention.basis,
        }
    return {
        "description": dataset.description,
        "controller": "us" if dataset.controller == "self" else "the customer who invited you (we act for it)",
        "purposes": list(dataset.purposes),
        "recipients": dataset.recipient_names,
        "retention": retention,
        "categories": {name: spec.category for name, spec in dataset.fields.items()},
    }


def _found_through(dataset: Dataset, found_through: Mapping[str, str | None] | None) -> str | None:
    """Which identity led to the dataset, as the subject reads it; never the identity's value."""
    if found_through is None or dataset.name not in found_through:
        return None
    identity = found_through[dataset.name]
    what = identity_label(identity or dataset.subject.identity)
    return f"found through {what}" if identity else f"looked for by {what}, which we do not know: nothing found"


def assemble(
    request_id: str,
    inventory: Inventory,
    *,
    request_type: str,
    now: datetime,
    parts: Mapping[str, Sequence[str]] | None = None,
    found_through: Mapping[str, str | None] | None = None,
    own: OwnSections | None = None,
    by_hand: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, int]:
    """Write export.json and export.html from the part files, streaming. Returns item counts.
    `parts` names each dataset's part files (default: one, named after the dataset; a dataset
    missing from a given `parts` was not read, so it has none);
    `found_through` the identity each dataset was reached through (None: not reached);
    `own` adds what Lethe itself and its vault hold (lethe.logic.own_data);
    `by_hand` what a person did for a manual dataset: who, when and their note (lethe.logic.manual_tasks)."""
    counts: dict[str, int] = {}
    as_json = S3Writer(f"{prefix(request_id)}export.json", "application/json")
    as_html = S3Writer(f"{prefix(request_id)}export.html", "text/html; charset=utf-8")
    try:
        as_json.write(
            "{"
            + f'"request_id": {dumps(request_id)}, "type": {dumps(request_type)}, '
            + f'"generated_at": {dumps(now.isoformat())}, "controller": {dumps(CONTROLLER)}, "datasets": {{'
        )
        as_html.write(_html_head(request_id, now))
        for index, (name, dataset) in enumerate(inventory.datasets.items()):
            header = dataset_header(dataset)
            reached = _found_through(dataset, found_through)
            if reached:
                header["found_through"] = reached
            if by_hand and name in by_hand:
                done = by_hand[name]
                header["done_by_hand"] = {"by": done.get("by"), "at": done.get("at"), "note": done.get("note")}
            header_json = dumps(header)[:-1]  # reopen the object to append "items"
            as_json.write(("," if index else "") + f"{dumps(name)}: {header_json}, " + '"items": [')
            as_html.write(_html_dataset(name, header))
            count = 0
            for part in [name] if parts is None else parts.get(name, []):
                for item in _part_lines(request_id, part):
                    as_json.write(("," if count else "") + dumps(item))
                    as_html.write(_html_item(item, header["categories"]))
                    count += 1
            as_json.write("]}")
            as_html.write(f"<p class=count>{count} item(s).</p></section>\n" if count else _html_none())
            counts[name] = count
        if own is not None:
            as_json.write(
                ("," if counts else "") + f"{dumps(LETHE_DATASET)}: " + dumps({**own.header, "items": own.items})
            )
            as_html.write(_html_dataset(LETHE_DATASET, own.header))
            as_html.write("".join(_html_item(item, own.header["categories"]) for item in own.items))
            as_html.write(f"<p class=count>{len(own.items)} item(s).</p></section>\n" if own.items else _html_none())
            as_html.write(vault_html(own, _html_item))
            counts[LETHE_DATASET] = len(own.items)
        as_json.write("}" + (f', "vault": {dumps(vault_json(own))}' if own is not None else "") + "}")
        as_html.write("</main></body></html>\n")
        as_json.close()
        as_html.close()
    except BaseException:
        as_json.abort()
        as_html.abort()
        raise
    return counts


def _html_head(request_id: str, now: datetime) -> str:
    e = html.escape
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        "<title>Your personal data</title>"
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}</style></head><body><main>"
        f"<h1>Your personal data</h1><p>Request {e(request_id)}, prepared {e(now.strftime('%d %B %Y'))}. "
        f"Controller: {e(CONTROLLER['name'])} ({e(CONTROLLER['contact'])}).</p>\n"
    )


def _html_dataset(name: str, header: dict[str, Any]) -> str:
    e = html.escape
    retention = header["retention"]
    kept = (
        f"Kept for {e(retention['kept_for'])} from {e(retention['counted_from'])}, then {e(retention['then'])}."
        + (f" Why: {e(retention['basis'])}." if retention.get("basis") else "")
        if retention
        else "No fixed retention period."
    )
    return (
        f"<section><h2>{e(header['description'])}</h2><p><small>{e(name)}</small></p>"
        f"<p>Controller: {e(header['controller'])}.</p>"
        f"<p>Why we hold it: {e(', '.join(header['purposes']))}.</p>"
        f"<p>Who receives it: {e(', '.join(header['recipients']) or 'nobody')}.</p>"
        f"<p>{kept}</p>\n"
        + (f"<p>How we found it: {e(header['found_through'])}.</p>\n" if header.get("found_through") else "")
        + _html_by_hand(header.get("done_by_hand"))
    )


def _html_by_hand(done: Mapping[str, Any] | None) -> str:
    """A system we cannot reach: a person searched it; who, when and their note (escaped: it is data)."""
    if not done:
        return ""
    e = html.escape
    note = f": {e(str(done.get('note')))}" if done.get("note") else ""
    return (
        f"<p>Searched by hand by {e(str(done.get('by') or 'its owner'))} on {e(str(done.get('at') or ''))}{note}.</p>\n"
    )


def _html_item(item: dict[str, Any], categories: dict[str, str]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><th>{e(str(k))}</th><td>{e(_text(v))}</td><td>{e(categories.get(k, ''))}</td></tr>"
        for k, v in sorted(item.items())
    )
    return f"<table><tr><th>field</th><th>value</th><th>category</th></tr>{rows}</table>\n"


def _html_none() -> str:
    return "<p>We hold nothing about you here.</p></section>\n"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


# ------------------------------------------------------------------ links


def link_token(request_id: str, *, now: float | None = None) -> str:
    """A signed token naming the request and the moment the link expires."""
    expires = int((now if now is not None else time.time()) + get_settings().export_link_ttl_seconds)
    ring = key_ring()
    mac = ring.mac("export", f"{request_id}.{expires}")[:40]
    return f"{request_id}.{expires}.{ring.current}.{mac}"


def export_link(request_id: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/exports/{link_token(request_id)}"


def resolve_link(token: str, *, fmt: str = "html", now: float | None = None) -> str:
    """A presigned URL for a valid token (valid no longer than the link itself).
    Raises InvalidToken for a forged token and ExportLinkExpired for an expired one."""
    parts = token.split(".")
    if len(parts) != 4 or not parts[1].isdigit():
        raise InvalidToken("this export link is not valid")
    request_id, expires_text, key_id, mac = parts
    ring = key_ring()
    if key_id not in ring.keys:
        raise InvalidToken("this export link is not valid")
    expected = ring.mac("export", f"{request_id}.{expires_text}", key_id)[:40]
    if not hmac.compare_digest(expected, mac):
        raise InvalidToken("this export link is not valid")
    remaining = int(expires_text) - int(now if now is not None else time.time())
    if remaining <= 0:
        raise ExportLinkExpired("this export link has expired")
    key = f"{prefix(request_id)}export.{'json' if fmt == 'json' else 'html'}"
    if not export_files.exists(key):
        raise ExportLinkExpired("this export link has expired")
    return export_files.download_url(key, expires_in=min(remaining, 3600))
