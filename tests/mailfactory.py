"""Build raw mails for tests, the way real clients write them, and parse them with the real parser."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from daemon.core.parse import parse
from daemon.core.values import InboundMail

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def raw_mail(sender: str = "Olena Petrenko <olena@customer.example>", to: str = "help@example.com",
             subject: str = "Printer on floor 2 prints nothing", body: str = "It prints nothing.\n",
             message_id: str | None = "<m1@customer.example>", date: datetime | None = NOW,
             headers: dict[str, str] | None = None, cc: str | None = None) -> bytes:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = to
    if cc:
        mail["Cc"] = cc
    mail["Subject"] = subject
    if date is not None:
        mail["Date"] = format_datetime(date)
    if message_id:
        mail["Message-ID"] = message_id
    mail.set_content(body)  # before the extra headers: it drops every Content-* header
    for name, value in (headers or {}).items():
        mail[name] = value
    return mail.as_bytes()


def inbound(**kwargs: object) -> InboundMail:
    return parse(raw_mail(**kwargs), received_at=NOW)  # type: ignore[arg-type]
