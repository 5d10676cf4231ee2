"""Outgoing email through SES (raw MIME, so List-Unsubscribe and other headers survive).
Addresses are never logged."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from lethe.aws import client
from lethe.settings import get_settings

# CRLF, and lines up to RFC 5322's 998: a List-Unsubscribe URL longer than 78 characters is then sent
# as it is, not as RFC 2047 encoded words that no mail client reads as a link.
MIME_POLICY = policy.SMTP.clone(max_line_length=998)


def send_email(
    to: str,
    subject: str,
    text: str,
    *,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    settings = get_settings()
    message = EmailMessage(policy=MIME_POLICY)
    message["From"] = settings.sender_email
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="lethe.local")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    response = client("ses").send_raw_email(
        Source=settings.sender_email, Destinations=[to], RawMessage={"Data": message.as_bytes()}
    )
    return str(response["MessageId"])
