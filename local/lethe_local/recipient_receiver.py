"""The demo recipient's webhook on the local stack: `POST /_local/recipients/{name}` checks the
notice's X-Lethe-Signature (HMAC-SHA256 of the raw body under the key the inventory's `secret` names,
read from the local Secrets Manager), prints one line, appends the notice to
<local dir>/recipients/<name>.jsonl, and answers 200 (401 for a bad signature). The demo data map
points CaféX UK's webhook here (at port 3000); a stack on another port points it at itself
(`point_inventory_here`). It exists only locally."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path

import boto3
from werkzeug.wrappers import Request, Response

PREFIX = "/_local/recipients/"
_NAME = re.compile(r"^[a-z0-9-]{1,40}$")
# The demo recipients of config/inventory.yaml that point here, and the secret each one holds.
SECRETS = {"cafex-uk": "RecipientWebhookSecret"}
# The address the data map gives this receiver: the local stack on its default port.
DEFAULT_BASE = "http://127.0.0.1:3000/_local/recipients/"


def point_inventory_here(port: int, directory: Path) -> Path | None:
    """On a port other than 3000, a copy of the data map whose webhooks to this receiver name the stack's
    own port, written to <local dir>/inventory.yaml and set as LETHE_INVENTORY, so the demo notices reach
    this stack and not whatever listens on port 3000. None (nothing changed) when no webhook points here."""
    from lethe.settings import get_settings

    source = get_settings().inventory
    text = source.read_text(encoding="utf-8")
    here = f"http://127.0.0.1:{port}{PREFIX}"
    if DEFAULT_BASE not in text or here == DEFAULT_BASE:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    copy = directory / "inventory.yaml"
    copy.write_text(text.replace(DEFAULT_BASE, here), encoding="utf-8")
    os.environ["LETHE_INVENTORY"] = str(copy)
    return copy


def _key(secret: str, region: str) -> bytes | None:
    from lethe.settings import get_settings

    try:
        raw = boto3.client("secretsmanager", region_name=region).get_secret_value(
            SecretId=get_settings().secret_id(secret)
        )["SecretString"]
    except Exception:  # no such secret: the notice cannot be checked
        return None
    value = json.loads(raw).get("value") if raw.startswith("{") else raw
    return str(value).encode()


def receive(request: Request, name: str, directory: Path, region: str) -> Response:
    if not _NAME.match(name) or name not in SECRETS:
        return Response(json.dumps({"error": "no such recipient"}), status=404, content_type="application/json")
    body = request.get_data()
    key = _key(SECRETS[name], region)
    expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest() if key else ""
    valid = bool(key) and hmac.compare_digest(request.headers.get("X-Lethe-Signature", ""), expected)
    notice_id = request.headers.get("X-Lethe-Notice-Id", "")
    print(f"  recipient {name}: notice {notice_id[:60]} {'signature ok' if valid else 'BAD SIGNATURE'}", flush=True)
    if not valid:
        return Response(json.dumps({"error": "bad signature"}), status=401, content_type="application/json")
    folder = directory / "recipients"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{name}.jsonl").open("ab") as out:
        out.write(body + b"\n")
    return Response(json.dumps({"received": notice_id}), status=200, content_type="application/json")
