"""Policy notices without storage: who in a batch is emailed, and with which idempotency key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lethe.data.consents import ConsentState
from lethe.logic import policy_versions
from lethe.logic.policy_versions import NoticeSender, PolicyNotice, parse_notice

AT = datetime(2026, 11, 1, tzinfo=UTC)


def state(subject_id: str, *, granted: bool = True, contact: str | None = None) -> ConsentState:
    return ConsentState(
        subject_id=subject_id,
        purpose="policy_updates",
        granted=granted,
        policy_version="2026-01",
        source="settings",
        at=AT,
        contact=contact,
        contact_ref=f"k1:{contact}-ref" if contact else None,
    )


class RecordingSender:
    """Implements NoticeSender; records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, *, notice_key: dict[str, str], email: str, version: str, summary: str) -> Any:
        self.sent.append({"key": notice_key, "email": email, "version": version, "summary": summary})
        return {"message_id": str(len(self.sent))}


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> dict[str, ConsentState]:
    rows: dict[str, ConsentState] = {}
    audited: list[dict[str, Any]] = []
    monkeypatch.setattr(policy_versions.ledger, "current_row", lambda subject_id, purpose: rows.get(subject_id))
    monkeypatch.setattr(policy_versions, "is_suppressed", lambda email: email.startswith("gone"))
    monkeypatch.setattr(policy_versions.audit, "append", lambda action, **kw: audited.append({"action": action, **kw}))
    return rows


def test_only_reachable_subscribed_unsuppressed_subjects_are_sent_to(ledger: dict[str, ConsentState]) -> None:
    # Given a batch naming a subscriber, a withdrawn one, one without an address, a suppressed one and a stranger
    ledger.update(
        {
            "dev-ok": state("dev-ok", contact="ok@example.com"),
            "dev-withdrawn": state("dev-withdrawn", granted=False),
            "dev-nocontact": state("dev-nocontact"),
            "dev-gone": state("dev-gone", contact="gone@example.com"),
        }
    )
    notice = PolicyNotice(
        version="2026-11",
        summary="Shorter",
        subscribers=["dev-ok", "dev-withdrawn", "dev-nocontact", "dev-gone", "dev-unknown", "dev-ok"],
    )
    sender = RecordingSender()
    sender_protocol: NoticeSender = sender
    # When the batch is delivered
    result = policy_versions.deliver_notices(notice, sender_protocol)
    # Then one email goes out, keyed on the version and the recipient's reference, never the address
    assert [s["email"] for s in sender.sent] == ["ok@example.com"]
    assert sender.sent[0]["key"] == {"version": "2026-11", "recipient_ref": "k1:ok@example.com-ref"}
    assert (result.notified, result.unreachable, result.suppressed) == (1, 3, 1)


def test_a_message_may_name_one_subscriber() -> None:
    notice = parse_notice('{"kind": "policy_notice", "version": "2026-11", "subscriber": "device-sample"}')
    assert notice.subscribers == ["device-sample"]


@pytest.mark.parametrize(
    "body",
    [
        '{"kind": "other", "version": "2026-11"}',
        '{"kind": "policy_notice", "version": "bad version"}',
        '{"kind": "policy_notice", "version": "v1", "subscribers": ' + str(["d"] * 51).replace("'", '"') + "}",
    ],
)
def test_malformed_messages_are_refused(body: str) -> None:
    with pytest.raises(ValueError):
        parse_notice(body)


def test_the_notice_names_the_version_and_carries_a_one_click_unsubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    from lethe.keys import KeyRing
    from lethe.logic import unsubscribe

    monkeypatch.setattr(unsubscribe, "key_ring", lambda: KeyRing(current="k1", keys={"k1": b"a" * 32}))
    subject, text, headers = policy_versions.notice_email(
        "2026-11", "We keep diagnostics for 30 days.", "o@example.com"
    )
    assert "2026-11" in subject
    assert "We keep diagnostics for 30 days." in text
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].split(">", 1)[0].lstrip("<")
    assert "/unsubscribe?token=p." in url
    # "Your choices" is that same link: a page for a GET, never the POST-only /consents
    assert f"Your choices, or to stop these notices: {url}" in text and "/consents" not in text
    assert unsubscribe.check(url.split("token=", 1)[1]) == "policy_updates"
