"""Mail clients for the tests: read what Postdesk sent (as recorded by the SMTP server) and
answer it the way Thunderbird or Gmail would.

    notice = only(sent_to(smtp.messages, "alice@example.com"), "New ticket")
    raw = reply(notice, "Alice <alice@example.com>", "#assign bob\\n#resolve\\n\\nFixed.",
                signature="Alice Baker | Support")
    dovecot.append(user.name, raw)

A reply has what a real client writes: `Re: ` + the subject, In-Reply-To the notice's
Message-ID, References its References + its Message-ID, the new text on top, then an
"On ... wrote:" attribution and the notice quoted with "> ". Gmail also sends an HTML
alternative with the quote in `<div class="gmail_quote">`.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr, parsedate_to_datetime
from html import escape
from typing import Literal

from tests.mailfactory import NOW
from tests.servers.smtpd import ReceivedMail

Client = Literal["thunderbird", "gmail"]
_ids = itertools.count(1)


# ----------------------------------------------------------------------------------------
# Reading what was sent


def parsed(mail: ReceivedMail | bytes) -> EmailMessage:
    raw = mail.raw if isinstance(mail, ReceivedMail) else mail
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def subject(mail: ReceivedMail) -> str:
    return str(parsed(mail)["Subject"] or "")


def text(mail: ReceivedMail) -> str:
    """The plain-text body, decoded."""
    body = parsed(mail).get_body(("plain",))
    assert body is not None, f"no text/plain part in {subject(mail)!r}"
    content = body.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def message_id(mail: ReceivedMail) -> str:
    """The Message-ID without <>."""
    return str(parsed(mail)["Message-ID"] or "").strip().strip("<>")


def sent_to(mails: Iterable[ReceivedMail], address: str) -> list[ReceivedMail]:
    """The mails whose envelope recipients include `address`."""
    return [m for m in mails if address.lower() in (r.lower() for r in m.rcpt_tos)]


KINDS = {  # what the tests call a mail -> the kind Postdesk stamps on it (X-Postdesk-Kind)
    "New ticket": "agent_new_ticket", "Received": "acknowledgement", "Resolved": "resolution",
    "Done": "command_result", "Not done": "command_error", "Assigned to you": "agent_assignment",
    "Assigned": "agent_assignment", "Customer replied": "agent_update", "Information needed": "info_request",
    "Escalation": "escalation", "Closed": "closure", "Reopened": "reopen_notice", "Declined": "refusal",
}


def kind_of(mail: ReceivedMail) -> str:
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    found = re.search(rb"^X-Postdesk-Kind:\s*(\S+)", head, re.MULTILINE)
    return found.group(1).decode() if found else ""


def with_subject(mails: Iterable[ReceivedMail], words: str) -> list[ReceivedMail]:
    """Mails of the kind `words` names (see KINDS), or else with `words` in the subject."""
    if words in KINDS:
        return [m for m in mails if kind_of(m) == KINDS[words]]
    return [m for m in mails if words in subject(m)]


def only(mails: Sequence[ReceivedMail], words: str = "") -> ReceivedMail:
    """The one mail (whose subject contains `words`); fails saying what there was."""
    found = with_subject(mails, words) if words else list(mails)
    assert len(found) == 1, f"expected one mail with {words!r} in the subject, got: {[subject(m) for m in mails]}"
    return found[0]


def since(mails: Sequence[ReceivedMail], before: int) -> list[ReceivedMail]:
    """The mails recorded after the first `before` ones (what one pass sent)."""
    return list(mails[before:])


# ----------------------------------------------------------------------------------------
# Answering


def reply(original: ReceivedMail | bytes, sender: str, body: str, *, client: Client = "thunderbird",
          signature: str | None = None, headers: dict[str, str] | None = None, date: datetime | None = None,
          message_id: str | None = None, to: str | None = None) -> bytes:
    """The raw reply of `sender` to `original`: `body` (commands and text) on top, the original
    quoted below it. `headers` are put on top of the mail, as a receiving server adds them
    (Authentication-Results, Received)."""
    source = parsed(original)
    date = date or NOW + timedelta(minutes=5)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "example.com"
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = sender
    mail["To"] = to or str(source["Reply-To"] or source["From"])
    mail["Subject"] = _re(str(source["Subject"] or ""))
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = message_id or f"<reply-{next(_ids)}-{client}@{domain}>"
    parent = str(source["Message-ID"] or "").strip()
    if parent:
        mail["In-Reply-To"] = parent
        mail["References"] = " ".join([*str(source["References"] or "").split(), parent])
    mail["MIME-Version"] = "1.0"
    quoted_text = _source_text(source)
    attribution = _attribution(source, client)
    new = body.rstrip("\n") + "\n"
    if client == "thunderbird":
        mail["User-Agent"] = "Mozilla Thunderbird"
        signature_part = f"\n-- \n{signature}\n" if signature else ""
        plain = f"{new}{signature_part}\n{attribution}\n{_quote(quoted_text)}"
        mail.set_content(plain)
    else:
        signature_part = f"\n-- \n{signature}\n" if signature else ""
        plain = f"{new}{signature_part}\n{attribution}\n\n{_quote(quoted_text)}"
        mail.set_content(plain)
        html_new = "".join(f"<div>{escape(line) or '<br>'}</div>" for line in new.splitlines())
        html_signature = (f'<br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>'
                          f'<div class="gmail_signature">{escape(signature)}</div>') if signature else ""
        html_quote = ('<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">' + escape(attribution)
                      + '<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
                      'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
                      + escape(quoted_text).replace("\n", "<br>\n") + "</blockquote></div>")
        mail.add_alternative(f'<div dir="ltr">{html_new}{html_signature}</div>{html_quote}\n', subtype="html")
    return _on_top(mail, headers)


def fresh(sender: str, to: str, subject_line: str, body: str, *, headers: dict[str, str] | None = None,
          references: str | None = None, date: datetime | None = None, message_id: str | None = None) -> bytes:
    """A new mail (no In-Reply-To); with `references`, a References header naming that id."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "example.com"
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject_line
    mail["Date"] = format_datetime(date or NOW + timedelta(minutes=5))
    mail["Message-ID"] = message_id or f"<fresh-{next(_ids)}@{domain}>"
    if references:
        mail["References"] = f"<{references.strip('<>')}>"
    mail.set_content(body.rstrip("\n") + "\n")
    return _on_top(mail, headers)


def _on_top(mail: EmailMessage, headers: dict[str, str] | None) -> bytes:
    raw = mail.as_bytes()
    added = b"".join(f"{name}: {value}\r\n".encode() for name, value in (headers or {}).items())
    return added + raw


def _re(subject_line: str) -> str:
    return subject_line if subject_line.lower().startswith("re:") else f"Re: {subject_line}"


def _source_text(source: EmailMessage) -> str:
    part = source.get_body(("plain",))
    content = part.get_content() if part is not None else ""
    return str(content).replace("\r\n", "\n").rstrip("\n")


def _quote(body: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in body.split("\n")) + "\n"


def _attribution(source: EmailMessage, client: Client) -> str:
    name, address = getaddresses([str(source["From"] or "")])[0]
    when = parsedate_to_datetime(str(source["Date"])) if source["Date"] else NOW
    who = f"{name} <{address}>" if name else address
    if client == "gmail":
        return f"On {when.strftime('%a, %d %b %Y at %H:%M')}, {who} wrote:"
    return f"On {when.strftime('%d.%m.%y %H:%M')}, {who} wrote:"
