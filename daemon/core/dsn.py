"""Bounces: what an RFC 3464 delivery status notification or a home-made bounce says.

`read_delivery_report` reads the per-recipient fields of `multipart/report;
report-type=delivery-status` and the bounced mail's Message-ID from its `message/rfc822`
or `text/rfc822-headers` part. For the common non-standard bounces (a mailer daemon or
the null sender, and a subject such as "Undelivered Mail Returned to Sender") it finds
what it can in the text. Auto-replies (out of office) are not bounces: not read here.
"""

from __future__ import annotations

import email.parser
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Final

from daemon.core.mimetree import attached_mail, stored_payload
from daemon.core.values import DeliveryReport

MAX_DIAGNOSTIC: Final = 300
MAX_SCANNED_TEXT: Final = 256 * 1024
MAX_RECIPIENTS: Final = 20
_REPORT_PART_TYPES: Final = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ORIGINAL_PART_TYPES: Final = frozenset({"message/rfc822", "message/global", "text/rfc822-headers"})
_DAEMON_LOCAL_PARTS: Final = frozenset(
    {"mailer-daemon", "mailerdaemon", "mail-daemon", "postmaster", "mail-delivery-system", "mdaemon"}
)
_BOUNCE_SUBJECT: Final = re.compile(
    r"\s*(?:undelivered mail returned to sender|undeliver(?:able|ed)\b|mail delivery failed"
    r"|delivery status notification \((?:failure|delay)\)|failure notice|returned mail\b"
    r"|(?:mail )?delivery (?:failure|failed|problem)|delivery has failed|message not delivered"
    r"|non-?deliver(?:able|y)|warning: could not send message|unzustellbar|non remis|non distribuable"
    r"|no se puede entregar|non recapitabile|onbestelbaar|nie można dostarczyć|не доставлено|недоставлен)",
    re.IGNORECASE,
)
_STATUS: Final = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])")
_SMTP_REPLY: Final = re.compile(r"(?<!\d)[45]\d\d(?!\d)")
_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+=!#$&'*/?^`{|}~-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_QUOTED_MESSAGE_ID: Final = re.compile(r"^[ \t>]*Message-ID:[ \t]*<([^<>\s]{1,500})>", re.IGNORECASE | re.MULTILINE)
_ORIGINAL_START: Final = re.compile(
    r"^[ \t>]*(?:received|return-path|message-id|from|date|subject|to|dkim-signature):"
    r"|original message|copy of the message|message headers|undelivered message|returned message",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class _Recipient:
    address: str
    action: str
    status: str
    diagnostic: str


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    if value is None:
        return ""
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.split())


def _typed_value(value: str) -> str:
    """'rfc822; user@example.com' → 'user@example.com'; 'smtp; 550 …' → '550 …'."""
    return value.split(";", 1)[1].strip() if ";" in value else value.strip()


def shorten(text: str, limit: int = MAX_DIAGNOSTIC) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _recipient(block: Message) -> _Recipient | None:
    address = _typed_value(_field(block, "final-recipient") or _field(block, "original-recipient"))
    address = address.strip("<> ").lower()
    if not address:
        return None
    diagnostic = _typed_value(_field(block, "diagnostic-code"))
    status = _STATUS.search(_field(block, "status")) or _STATUS.search(diagnostic)
    action = _field(block, "action").lower().split(" ", 1)[0]
    return _Recipient(address, action, status.group(0) if status else "", shorten(diagnostic))


def _status_blocks(part: Message) -> list[Message]:
    payload = stored_payload(part)
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload or "")
    blocks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [email.parser.HeaderParser().parsestr(block) for block in blocks[: MAX_RECIPIENTS + 1]]


def _parts(message: Message, depth: int = 3) -> Iterator[Message]:
    """Parts of the report, without descending into the attached original."""
    yield message
    payload = stored_payload(message) if message.get_content_maintype() == "multipart" else None
    if depth and isinstance(payload, list):
        for child in payload[:50]:
            if isinstance(child, Message):
                yield from _parts(child, depth - 1)


def _headers_of_original(part: Message) -> Message | None:
    if part.get_content_type() != "text/rfc822-headers":
        return attached_mail(part)
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
    return email.parser.HeaderParser().parsestr(text, headersonly=True)


def _original_message_id(message: Message) -> str:
    for part in _parts(message):
        if part.get_content_type() in _ORIGINAL_PART_TYPES:
            headers = _headers_of_original(part)
            found = re.search(r"<([^<>\s]+)>", _field(headers, "message-id")) if headers else None
            if found:
                return found.group(1)
    return ""


def is_delivery_status_notification(message: Message) -> bool:
    if message.get_content_type() == "multipart/report":
        report_type = str(message.get_param("report-type", "")).lower()
        if report_type == "delivery-status":
            return True
    return any(part.get_content_type() in _REPORT_PART_TYPES for part in _parts(message, 2))


def _standard_report(message: Message) -> DeliveryReport:
    recipients: list[_Recipient] = []
    for part in _parts(message):
        if part.get_content_type() in _REPORT_PART_TYPES:
            found = (_recipient(block) for block in _status_blocks(part))
            recipients.extend(recipient for recipient in found if recipient is not None)
    failed = [recipient for recipient in recipients if recipient.action == "failed"]
    main = (failed or recipients or [_Recipient("", "", "", "")])[0]
    same_action = [recipient.address for recipient in recipients if recipient.action == main.action]
    return DeliveryReport(
        original_message_id=_original_message_id(message),
        failed_recipients=tuple(dict.fromkeys(same_action))[:MAX_RECIPIENTS],
        action=main.action,
        status=main.status,
        diagnostic=main.diagnostic,
    )


def _is_daemon(sender_email: str) -> bool:
    local_part = sender_email.split("@", 1)[0].lower()
    return local_part in _DAEMON_LOCAL_PARTS or local_part.startswith("microsoftexchange")


def _explanation(body_text: str) -> str:
    """The bounce's own words: the text before the copy of the original mail."""
    text = body_text[:MAX_SCANNED_TEXT]
    start = _ORIGINAL_START.search(text)
    return text[: start.start()] if start else text


def _diagnostic_line(explanation: str) -> str:
    for line in explanation.splitlines():
        if _STATUS.search(line) or _SMTP_REPLY.search(line):
            return shorten(line)
    return ""


def _nonstandard_report(message: Message, subject: str, sender_email: str, body_text: str) -> DeliveryReport:
    explanation = _explanation(body_text)
    quoted_id = _QUOTED_MESSAGE_ID.search(body_text[:MAX_SCANNED_TEXT])
    original = _original_message_id(message) or (quoted_id.group(1) if quoted_id else "")
    addresses = [found.lower() for found in _EMAIL.findall(explanation)]
    recipients = [item for item in dict.fromkeys(addresses) if item != sender_email and not _is_daemon(item)]
    status = _STATUS.search(explanation)
    delayed = "delay" in subject.lower() or "delayed" in explanation.lower()[:2000]
    return DeliveryReport(
        original_message_id=original,
        failed_recipients=tuple(recipients[:MAX_RECIPIENTS]),
        action="delayed" if delayed else "failed",
        status=status.group(0) if status else "",
        diagnostic=_diagnostic_line(explanation),
    )


def read_delivery_report(
    message: Message, *, subject: str, sender_email: str, null_sender: bool, body_text: str
) -> DeliveryReport | None:
    """The bounce report of `message`, or None when it is not a bounce."""
    if is_delivery_status_notification(message):
        return _standard_report(message)
    if not _BOUNCE_SUBJECT.match(subject):
        return None
    if _is_daemon(sender_email) or null_sender:
        return _nonstandard_report(message, subject, sender_email, body_text)
    report = _nonstandard_report(message, subject, sender_email, body_text)
    return report if report.original_message_id else None
