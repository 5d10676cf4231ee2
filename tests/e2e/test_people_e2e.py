"""Recipients and manual datasets on the local stack, as a newcomer would see them: an erasure for ada
POSTs a signed notice to CaféX UK's webhook (a server of this test's own, checking the signature under
the key in the stack's Secrets Manager) and emails the debugging partner, and her certificate lists
both; margaret's access request waits for the Azure recordings task and, after `lethe tasks complete`,
her export holds the storage team's items. The stack is this module's own."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml
from typer.testing import CliRunner

from lethe_cli.main import app
from tests.e2e.conftest import REPO, LocalStack, serving
from tests.support.outbox import TIMEOUT, file_and_verify, mail_texts, wait_for_mail
from tests.support.webhook_receiver import Receiver, webhook_receiver

LINK = re.compile(r"(http://\S+/exports/\S+)")
CAFEX = "CaféX Communications Limited (UK subsidiary)"


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Receiver]]:
    folder = tmp_path_factory.mktemp("lethe-people")
    endpoint: dict[str, str] = {}

    def key() -> bytes:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=endpoint["url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        raw = client.get_secret_value(SecretId="RecipientWebhookSecret")["SecretString"]
        return str(json.loads(raw)["value"]).encode()

    with webhook_receiver(key) as receiver:
        data = yaml.safe_load((REPO / "config" / "inventory.yaml").read_text())
        for recipient in data["datasets"]["accounts"]["recipients"]:
            if isinstance(recipient, dict) and recipient["name"] == CAFEX:
                recipient["notify"]["webhook"] = receiver.url
        inventory = folder / "inventory.yaml"
        inventory.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        with serving(folder / "local", token=secrets.token_urlsafe(16), LETHE_INVENTORY=str(inventory)) as stack:
            endpoint["url"] = stack.aws_endpoint
            yield stack, receiver


def wait_status(stack: LocalStack, request_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        status = requests.get(f"{stack.base_url}/requests/{request_id}", timeout=TIMEOUT).json()["status"]
        if status == wanted:
            return
        assert status not in ("failed", "denied"), status
        time.sleep(0.5)
    raise AssertionError(f"{request_id} is {status}, not {wanted}")


def lethe(stack: LocalStack, *args: str) -> Any:
    env = {"LETHE_API_URL": stack.base_url, "LETHE_ADMIN_TOKEN": stack.admin_token, "COLUMNS": "220"}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_an_erasure_tells_the_webhook_and_the_email_recipient_and_the_certificate_lists_both(
    people: tuple[LocalStack, Receiver],
) -> None:
    stack, receiver = people
    # When ada asks for erasure, as the form does
    request_id = file_and_verify(stack, "erasure", "ada@example.com")
    wait_status(stack, request_id, "completed")
    # Then CaféX UK's webhook got one notice for it, correctly signed
    notices = [d for d in receiver.deliveries if d.notice["request_id"] == request_id]
    assert [(d.signature_ok, d.answered, d.notice["dataset"], d.notice["type"]) for d in notices] == [
        (True, 200, "accounts", "erasure")
    ]
    # And the debugging partner was emailed once
    partner = [t for t in mail_texts(stack.outbox, "privacy@debugging-partner.example") if request_id in t]
    assert len(partner) == 1 and "Dataset: feedback" in partner[0]
    # And ada's certificate lists both as told
    certificate = wait_for_mail(stack.outbox, "ada@example.com", "Erasure certificate")
    assert f"- {CAFEX} (Account holders of the Meetings service (sign-up data)): told by webhook on" in certificate
    assert "- Third-party service providers (debugging) (Send-Feedback reports" in certificate
    assert "told by email on" in certificate
    # And `lethe recipients list` shows both sent
    listed = lethe(stack, "--json", "recipients", "list", request_id)
    assert listed.exit_code == 0, listed.output
    assert sorted((n["channel"], n["state"]) for n in json.loads(listed.stdout)["notices"]) == [
        ("email", "sent"),
        ("webhook", "sent"),
    ]


def test_an_access_request_waits_for_the_azure_task_and_exports_the_owners_items(
    people: tuple[LocalStack, Receiver], tmp_path: Path
) -> None:
    stack, _ = people
    # When margaret, whose meeting was recorded, asks for her data
    request_id = file_and_verify(stack, "access", "margaret@example.com")
    # Then the storage team is emailed the task, and the request waits for it
    task = wait_for_mail(stack.outbox, "storage-team@example.com", request_id)
    assert f"lethe tasks complete {request_id} azure_recordings" in task and "acct-margaret" in task
    wait_status(stack, request_id, "in_progress")
    listed = lethe(stack, "--json", "tasks", "list")
    assert listed.exit_code == 0, listed.output
    assert [t["dataset"] for t in json.loads(listed.stdout)["tasks"] if t["request_id"] == request_id] == [
        "azure_recordings"
    ]
    time.sleep(1)
    assert requests.get(f"{stack.base_url}/requests/{request_id}", timeout=TIMEOUT).json()["status"] == "in_progress"
    # When the owner completes it with the recording found
    found = tmp_path / "found.json"
    item = {"recording_id": "rec-0042", "meeting_topic": "Guidance software review", "recorded_at": "2026-11-25"}
    found.write_text(json.dumps([item]))
    done = lethe(
        stack, "tasks", "complete", request_id, "azure_recordings", "--note", "1 recording found", "--items", str(found)
    )
    assert done.exit_code == 0, done.output
    # Then the request completes, and the export holds the item, saying it was searched by hand
    wait_status(stack, request_id, "completed")
    link = LINK.search(wait_for_mail(stack.outbox, "margaret@example.com", "/exports/"))
    assert link is not None
    export = requests.get(link.group(1), params={"format": "json"}, timeout=TIMEOUT).json()
    section = export["datasets"]["azure_recordings"]
    assert section["items"] == [item]
    assert section["done_by_hand"]["note"] == "1 recording found" and section["done_by_hand"]["by"] == "operator"
    # And completing it twice is refused (409)
    again = lethe(stack, "tasks", "complete", request_id, "azure_recordings", "--note", "again")
    assert again.exit_code == 1 and "409" in again.output


def test_the_local_stacks_own_demo_webhook_checks_the_signature(people: tuple[LocalStack, Receiver]) -> None:
    import hashlib
    import hmac

    stack, receiver = people
    key = receiver.key() if callable(receiver.key) else receiver.key
    body = json.dumps({"notice_id": "accounts.demo.00000000", "type": "erasure"}).encode()
    url = f"{stack.base_url}/_local/recipients/cafex-uk"
    signed = {"X-Lethe-Signature": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()}
    # A notice signed with the demo recipient's key is accepted and kept; any other is refused
    assert requests.post(url, data=body, headers=signed, timeout=TIMEOUT).status_code == 200
    forged = {"X-Lethe-Signature": "sha256=" + hmac.new(b"guess", body, hashlib.sha256).hexdigest()}
    assert requests.post(url, data=body, headers=forged, timeout=TIMEOUT).status_code == 401
    kept = (stack.outbox.parent / "recipients" / "cafex-uk.jsonl").read_bytes()
    assert kept == body + b"\n"
