"""The fields a condition can read from a `RuleInput`: a registry filled at import.

`FIELDS` maps a name (`subject`, `sender_domain`, `header`, `contact`, `ticket`, ...) to how
its values are read; a field has a tuple of values (recipients and attachments have many,
`ticket.*` has none for a new ticket). `header`, `contact` and `ticket` take a name after a
dot (`header.x-priority`); `weekday`, `time` and `date` take a `timezone` option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daemon.core.rules.model import RuleInput, Values
from daemon.core.values import Level, Priority, Status


@dataclass(frozen=True, slots=True)
class FieldSpec:
    extract: Callable[[RuleInput, str], Values]
    help: str
    param: str = ""  # "" none; "name": a header/attribute/ticket field after a dot; "timezone"
    choices: tuple[str, ...] = ()  # the only values equals/in may name ("" = any)
    shape: str = ""  # a regex whole-value arguments must match (times, dates)
    params: Mapping[str, tuple[str, ...]] | None = None  # allowed names after the dot, with their choices


FIELDS: dict[str, FieldSpec] = {}


def field_reader(name: str, help_text: str, **options: object) -> Callable[[Callable[[RuleInput, str], Values]],
                                                                          Callable[[RuleInput, str], Values]]:
    def register(extract: Callable[[RuleInput, str], Values]) -> Callable[[RuleInput, str], Values]:
        FIELDS[name] = FieldSpec(extract, help_text, **options)  # type: ignore[arg-type]
        return extract

    return register


@field_reader("mailbox", "the name of the mailbox the mail came to")
def _mailbox(subject: RuleInput, _: str) -> Values:
    return (subject.mailbox,)


@field_reader("sender", "the sender's address (From)")
def _sender(subject: RuleInput, _: str) -> Values:
    return (subject.mail.sender.email,)


@field_reader("sender_name", "the sender's display name")
def _sender_name(subject: RuleInput, _: str) -> Values:
    return (subject.mail.sender.name,)


@field_reader("sender_domain", "the domain of the sender's address")
def _sender_domain(subject: RuleInput, _: str) -> Values:
    return (subject.mail.sender.email.rpartition("@")[2],)


@field_reader("reply_to", "the Reply-To addresses")
def _reply_to(subject: RuleInput, _: str) -> Values:
    return tuple(a.email for a in subject.mail.reply_to)


@field_reader("to", "the To addresses")
def _to(subject: RuleInput, _: str) -> Values:
    return tuple(a.email for a in subject.mail.to)


@field_reader("cc", "the Cc addresses")
def _cc(subject: RuleInput, _: str) -> Values:
    return tuple(a.email for a in subject.mail.cc)


@field_reader("recipients", "the To and Cc addresses")
def _recipients(subject: RuleInput, _: str) -> Values:
    return tuple(a.email for a in subject.mail.recipients)


@field_reader("recipient_domain", "the domains of the To and Cc addresses")
def _recipient_domain(subject: RuleInput, _: str) -> Values:
    return tuple(a.email.rpartition("@")[2] for a in subject.mail.recipients)


@field_reader("subject", "the subject")
def _subject(subject: RuleInput, _: str) -> Values:
    return (subject.mail.subject,)


@field_reader("new_text", "the author's own text: no quoted history, no signature")
def _new_text(subject: RuleInput, _: str) -> Values:
    return (subject.mail.new_text,)


@field_reader("body", "the whole text of the mail, quotes and signature included")
def _body(subject: RuleInput, _: str) -> Values:
    return (subject.mail.body_text,)


@field_reader("language", "the mail's Content-Language (\"uk\", \"en\"), or \"\"")
def _language(subject: RuleInput, _: str) -> Values:
    return (subject.mail.language,)


@field_reader("attachment_name", "the file names of the attachments")
def _attachment_name(subject: RuleInput, _: str) -> Values:
    return tuple(a.filename for a in subject.mail.attachments)


@field_reader("attachment_type", "the content types of the attachments (\"application/pdf\")")
def _attachment_type(subject: RuleInput, _: str) -> Values:
    return tuple(a.content_type for a in subject.mail.attachments)


@field_reader("is_new", "true when the mail opens a new ticket, false for a follow-up", choices=("true", "false"))
def _is_new(subject: RuleInput, _: str) -> Values:
    return ("true",) if subject.ticket is None else ("false",)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local(subject: RuleInput, timezone: str) -> datetime:
    return subject.now.astimezone(zone(timezone or subject.timezone))


@field_reader("weekday", "the day of the week (mon ... sun) in the timezone", param="timezone", choices=WEEKDAYS)
def _weekday(subject: RuleInput, timezone: str) -> Values:
    return (WEEKDAYS[_local(subject, timezone).weekday()],)


@field_reader("time", "the time of day as HH:MM in the timezone", param="timezone", shape=r"\d\d:\d\d")
def _time(subject: RuleInput, timezone: str) -> Values:
    return (_local(subject, timezone).strftime("%H:%M"),)


@field_reader("date", "the date as YYYY-MM-DD in the timezone", param="timezone", shape=r"\d{4}-\d\d-\d\d")
def _date(subject: RuleInput, timezone: str) -> Values:
    return (_local(subject, timezone).strftime("%Y-%m-%d"),)


@field_reader("header", "header.NAME: the values of a header (any name, e.g. header.x-priority)", param="name")
def _header(subject: RuleInput, name: str) -> Values:
    return subject.mail.header_values(name)


@field_reader("contact", "contact.NAME: the sender's contact: email, name, organisation, language or an "
              "attribute from the contacts file (contact.contract)", param="name")
def _contact(subject: RuleInput, name: str) -> Values:
    contact = subject.contact
    if contact is None:
        return ()
    if name in ("email", "name", "organisation", "language"):
        value: str = getattr(contact, name)
        return (value,) if value else ()
    return tuple(value for key, value in contact.attributes if key.lower() == name)


_LEVELS = tuple(level.value for level in Level)
TICKET_FIELDS: dict[str, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status), "type": (), "priority": tuple(p.value for p in Priority),
    "impact": _LEVELS, "urgency": _LEVELS, "category": (), "group": (), "owner": (), "tags": (),
    "sla_policy": (), "language": (), "mailbox": (), "third_party": (), "alert_key": (), "subject": (),
}


@field_reader("ticket", "ticket.NAME: a field of the ticket a follow-up belongs to (nothing for a new ticket): "
              + ", ".join(TICKET_FIELDS), param="name", params=TICKET_FIELDS)
def _ticket(subject: RuleInput, name: str) -> Values:
    ticket = subject.ticket
    if ticket is None:
        return ()
    if name == "tags":
        return ticket.tags
    value = getattr(ticket, name)
    return () if value is None or value == "" else (str(value),)


def valid_timezone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
