"""Outgoing email through SES (raw MIME, so List-Unsubscribe and other headers survive).
Addresses are never logged.

A message is composed (and its recipient checked) before it is sent, so a caller can compose first,
write its own state next and send last: an address no message can be built for never leaves a row.
"""

from __future__ import annotations

import unicodedata
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from lethe.aws import client
from lethe.domain import ascii_host, is_plain_address
from lethe.settings import get_settings

# CRLF, and lines up to RFC 5322's 998: a List-Unsubscribe URL longer than 78 characters is then sent
# as it is, not as RFC 2047 encoded words that no mail client reads as a link.
MIME_POLICY = policy.SMTP.clone(max_line_length=998)


def plain_text(value: str, *, limit: int = 500) -> str:
    """Text a person supplied (a subject, an operator), made fit to quote in a message body: control
    characters (CR and LF included) become spaces, so it cannot forge lines, headers or a new part, and
    it is cut at `limit` characters. HTML bodies escape it as well."""
    flat = " ".join("".join(" " if unicodedata.category(c)[0] == "C" else c for c in value).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def compose(
    to: str,
    subject: str,
    text: str,
    *,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """The message to `to`, one plain address (lethe.domain.is_plain_address). Raises ValueError for any
    other recipient, and (the email library does) for a header value holding CR or LF."""
    if not is_plain_address(to):
        raise ValueError("the recipient is not one plain address")
    settings = get_settings()
    message = EmailMessage(policy=MIME_POLICY)
    message["From"] = settings.sender_email
    # Set as an addr-spec, never parsed as a header: no display name or group can be read into it.
    local, _, host = to.rpartition("@")
    message["To"] = Address(username=local, domain=ascii_host(host))
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="lethe.local")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(message: EmailMessage) -> str:
    """Send a composed message to its one recipient; returns the SES message id."""
    to = message["To"].addresses[0].addr_spec
    response = client("ses").send_raw_email(
        Source=get_settings().sender_email, Destinations=[to], RawMessage={"Data": message.as_bytes()}
    )
    return str(response["MessageId"])


def send_email(
    to: str,
    subject: str,
    text: str,
    *,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    return send(compose(to, subject, text, html=html, headers=headers))
