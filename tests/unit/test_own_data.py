"""The words and lines Lethe uses about its own data (no AWS involved)."""

from __future__ import annotations

from lethe.inventory import get_inventory, parse_inventory
from lethe.logic.certificates import erasure_lines
from lethe.logic.own_data import certificate_lines, masked_word

KEYED_BY_EMAIL = parse_inventory(
    """
version: 1
datasets:
  contacts:
    table: ContactsTable
    description: Contacts kept under their address
    controller: self
    subject: {attribute: email}
    key: {hash: email, range: added_at}
    fields:
      name:  {category: user.name, erase: redact}
    purposes: [testing]
    on_erasure: anonymize
"""
).dataset("contacts")


def test_masked_items_are_anonymized_unless_still_filed_under_the_subjects_identifier() -> None:
    # Given an account row masked in place (kept under its account id, which is no personal field)
    # Then it is anonymized: every strategy is one-way once the request's key is gone
    assert masked_word(get_inventory().dataset("accounts")) == "anonymized"
    # Given rows kept under the subject's address itself (their other fields masked)
    # Then the certificate does not call them anonymized
    assert masked_word(KEYED_BY_EMAIL) == "masked but still filed under your identifier"


def test_certificate_uses_the_true_word_per_dataset() -> None:
    lines = erasure_lines({"accounts": {"action": "anonymize", "anonymized": 2}})
    assert any("2 anonymized" in line for line in lines)


def test_certificate_lines_name_lethes_own_copies_and_what_stays_open() -> None:
    # Given what an erasure did to Lethe's own copies
    own = {
        "export_objects_deleted": 4,
        "exports_revoked": 2,
        "consent_contacts_cleared": 1,
        "other_requests_cleared": 3,
        "open_requests": 1,
    }
    # When the certificate's lines are written
    text = "\n".join(certificate_lines(own))
    # Then each copy is accounted for, and an open request's address is said to stay until answered
    assert "4 file(s) deleted" in text and "from 2 export(s)" in text and "links no longer work" in text
    assert "Consent records that could reach your address: 1 cleared" in text
    assert "erased from 3" in text
    assert "1 other request(s) still open keep your address until we have answered them (then 90 days)" in text
