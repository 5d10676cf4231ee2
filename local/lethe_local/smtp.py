"""The local privacy inbox: an SMTP server (aiosmtpd) on 127.0.0.1:LETHE_SMTP_PORT (default 2525) that
does what template.yaml's SES receipt rule does in AWS.

It reads the rule (AWS::SES::ReceiptRule) from the template: mail is accepted only for the rule's
recipients (550 for any other), a message larger than LETHE_INBOUND_MAX_BYTES is refused with 552
(aiosmtpd's SIZE limit, announced in EHLO), and an accepted one is stored raw in the rule's bucket
under its prefix and handed to the rule's function as an SES event, before the 250 answer. So
`python -m smtplib`-style clients and `swaks --server 127.0.0.1:2525` work against it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from lethe_local.template import Resolver, TemplateError

DEFAULT_PORT = 2525


@dataclass(frozen=True)
class ReceiptRule:
    """What a receipt rule does: for these recipients, store under bucket/prefix, then invoke a function."""

    recipients: frozenset[str]
    bucket: str
    prefix: str
    function: str


def receipt_rule(template: dict[str, Any], physical: dict[str, str]) -> ReceiptRule | None:
    """The template's receipt rule with an S3 and a Lambda action, resolved against the local stack."""
    resolver = Resolver(template)
    resolver.physical.update(physical)
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::SES::ReceiptRule":
            continue
        rule = (resource.get("Properties") or {}).get("Rule") or {}
        actions = rule.get("Actions") or []
        store = next((a["S3Action"] for a in actions if "S3Action" in a), None)
        run = next((a["LambdaAction"] for a in actions if "LambdaAction" in a), None)
        if store is None or run is None:
            continue
        function = run.get("FunctionArn")
        if not (isinstance(function, dict) and "Fn::GetAtt" in function):
            raise TemplateError(f"template.yaml: {logical_id} must name its function with !GetAtt <Function>.Arn")
        return ReceiptRule(
            recipients=frozenset(str(resolver.value(r)).lower() for r in rule.get("Recipients") or []),
            bucket=str(resolver.value(store["BucketName"])),
            prefix=str(resolver.value(store.get("ObjectKeyPrefix", ""))),
            function=str(function["Fn::GetAtt"][0]),
        )
    return None


def ses_event(message_id: str, envelope: Envelope, rule: ReceiptRule, at: datetime) -> dict[str, Any]:
    """The event SES's Lambda action sends (the message itself is in the bucket)."""
    stamp = at.isoformat().replace("+00:00", "Z")
    passed = {"status": "PASS"}
    return {
        "Records": [
            {
                "eventSource": "aws:ses",
                "eventVersion": "1.0",
                "ses": {
                    "mail": {
                        "timestamp": stamp,
                        "source": envelope.mail_from or "",
                        "messageId": message_id,
                        "destination": list(envelope.rcpt_tos),
                    },
                    "receipt": {
                        "timestamp": stamp,
                        "recipients": list(envelope.rcpt_tos),
                        "spamVerdict": passed,
                        "virusVerdict": passed,
                        "action": {"type": "Lambda", "functionArn": rule.function, "invocationType": "Event"},
                    },
                },
            }
        ]
    }


class PrivacyInbox:
    """aiosmtpd's handler: RCPT and DATA as the receipt rule answers them."""

    def __init__(self, rule: ReceiptRule, s3: Any, invoke: Callable[[str, dict[str, Any]], Any]) -> None:
        self.rule, self.s3, self.invoke = rule, s3, invoke

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() not in self.rule.recipients:
            return "550 5.1.1 this server accepts mail for the privacy address only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        import asyncio

        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape")
        message_id = secrets.token_hex(20)
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.deliver, message_id, data, envelope)
        except Exception as exc:  # the sender is told to try again, as a receiving MTA would
            print(f"  ! privacy inbox: delivery failed ({type(exc).__name__})", flush=True)
            return "451 4.3.0 delivery failed; try again later"
        return f"250 OK {message_id}"

    def deliver(self, message_id: str, data: bytes, envelope: Envelope) -> None:
        self.s3.put_object(Bucket=self.rule.bucket, Key=f"{self.rule.prefix}{message_id}", Body=data)
        self.invoke(self.rule.function, ses_event(message_id, envelope, self.rule, datetime.now(UTC)))


def start(
    rule: ReceiptRule, *, host: str, port: int, max_bytes: int, s3: Any, invoke: Callable[[str, dict[str, Any]], Any]
) -> Controller:
    controller = Controller(
        PrivacyInbox(rule, s3, invoke),
        hostname=host,
        port=port,
        data_size_limit=max_bytes,
        server_hostname="lethe.local",
        ready_timeout=10.0,
    )
    controller.start()
    return controller
