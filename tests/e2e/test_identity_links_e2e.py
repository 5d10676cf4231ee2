"""Identity links on the local stack, as a newcomer would see them with curl and the outbox: Ada's
access export by email holds her meetings, which carry only her account id; Linus's erasure
anonymizes his meeting, and the certificate says it was found through his account id and that
nothing remains. The stack is this module's own, so its demo data is not shared."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack, started_stack
from tests.support.outbox import TIMEOUT, file_and_verify, wait_completed, wait_for_mail

LINK = re.compile(r"(http://\S+/exports/\S+)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with started_stack(tmp_path_factory.mktemp("lethe-links")) as own:
        yield own


def admin_get(stack: LocalStack, path: str) -> Any:
    answer = requests.get(
        f"{stack.base_url}{path}", headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_adas_export_by_email_holds_her_meetings_found_through_her_account_id(stack: LocalStack) -> None:
    # Given the demo data, when Ada asks for her data by email and verifies
    request_id = file_and_verify(stack, "access", "ada@example.com")
    wait_completed(stack, request_id)
    # Then the export link she is emailed gives her meetings, which hold only her account id
    link = LINK.search(wait_for_mail(stack.outbox, "ada@example.com", "Your personal data is ready"))
    assert link is not None
    export = requests.get(link.group(1), params={"format": "json"}, timeout=TIMEOUT)
    assert export.status_code == 200, export.text
    meetings = export.json()["datasets"]["meetings"]
    assert sorted(m["meeting_id"] for m in meetings["items"]) == ["mtg-ada-board", "mtg-ada-weekly"]
    assert meetings["found_through"] == "found through your account id"
    # And the operator sees the second round that reached them
    detail = admin_get(stack, f"/admin/requests/{request_id}")
    assert "meetings@2" in detail["datasets_done"]


def test_linus_erasure_anonymizes_his_meeting_and_certifies_nothing_remains(stack: LocalStack) -> None:
    # When Linus asks for erasure by email and verifies
    request_id = file_and_verify(stack, "erasure", "linus@example.com")
    wait_completed(stack, request_id)
    # Then the certificate says his meeting was found through his account id, and 0 remain anywhere
    certificate = wait_for_mail(stack.outbox, "linus@example.com", "Erasure certificate")
    meeting_line = next(line for line in certificate.splitlines() if "found through your account id" in line)
    assert "1 anonymized" in meeting_line
    assert "Read again after the erasure: 0 remaining." in certificate
    outcome = admin_get(stack, f"/admin/requests/{request_id}")["outcome"]
    assert outcome["datasets"]["meetings"] == {
        "action": "anonymize",
        "found": 1,
        "deleted": 0,
        "anonymized": 1,
        "isolated": 0,
        "found_through": "account_id",
        "remaining": 0,
    }
