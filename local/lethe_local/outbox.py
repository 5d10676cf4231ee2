"""The local outbox: every email sent through SES (moto) is printed and saved as an .eml file.

Moto keeps sent messages in memory; the local stack runs moto in this process, so the outbox reads
its backend directly after each invocation and writes the messages it has not seen yet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

DEFAULT_ACCOUNT = "123456789012"


def local_dir() -> Path:
    """Where the local stack writes its files (admin token, outbox): LETHE_LOCAL_DIR, default .local."""
    return Path(os.environ.get("LETHE_LOCAL_DIR") or ".local")


def _sent_messages(account: str, region: str) -> list[Any]:
    from moto.ses.models import ses_backends

    return list(ses_backends[account][region].sent_messages)


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return "" if part is None else str(part.get_content()).strip()


class Outbox:
    """Writes `<UTC timestamp>-<message id>.eml` for each message moto's SES has accepted."""

    def __init__(
        self,
        directory: Path,
        *,
        account: str = DEFAULT_ACCOUNT,
        region: str = "us-east-1",
        echo: Callable[[str], None] | None = print,
    ) -> None:
        self.directory = directory
        self.account, self.region = account, region
        self.echo = echo
        self._seen: set[str] = set()

    def flush(self) -> list[Path]:
        """Save and print the messages sent since the last flush; returns the files written."""
        written = []
        for sent in _sent_messages(self.account, self.region):
            if sent.id in self._seen:
                continue
            self._seen.add(sent.id)
            written.append(self._save(sent))
        return written

    def _save(self, sent: Any) -> Path:
        raw = getattr(sent, "raw_data", None)
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else bytes(raw)
        else:  # SendEmail (not raw): rebuild a message from moto's fields
            built = EmailMessage()
            built["From"] = sent.source
            built["To"] = ", ".join(getattr(sent, "destinations", {}).get("ToAddresses", []))
            built["Subject"] = getattr(sent, "subject", "")
            built.set_content(getattr(sent, "body", ""))
            data = built.as_bytes()
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{sent.id}.eml"
        path.write_bytes(data)
        if self.echo is not None:
            message = message_from_bytes(data, policy=policy.default)
            assert isinstance(message, EmailMessage)
            self.echo(self._render(message, path))
        return path

    @staticmethod
    def _render(message: EmailMessage, path: Path) -> str:
        rule = "─" * 72
        body = "\n".join(f"  │ {line}" for line in text_part(message).splitlines())
        return (
            f"\n  ✉  email → {path}\n  {rule}\n"
            f"  From:    {message['From']}\n  To:      {message['To']}\n  Subject: {message['Subject']}\n"
            f"  {rule}\n{body}\n  {rule}\n"
        )
