"""Which ticket a mail belongs to, in two pure halves around one store lookup.

`keys(mail, setup)` says what to look up (Message-IDs it answers, the `[Prefix #N]` subject
token, a `support+N@` recipient); the store finds the tickets; `match(keys, facts)` decides,
in this order: In-Reply-To/References known to the store, the subject token, the address.
A token naming a ticket that does not exist starts a new ticket.
"""

from __future__ import annotations

import re
from functools import lru_cache

from daemon.core.commands.parse import named_tickets
from daemon.core.values import Address, Facts, InboundMail, Setup, ThreadKeys, ThreadMatch

MAX_REFERENCES = 50  # a References header can carry hundreds of ids; the newest matter


def keys(mail: InboundMail, setup: Setup) -> ThreadKeys:
    return ThreadKeys(
        message_ids=referenced_ids(mail),
        subject_number=subject_number(mail.subject, setup.subject_prefix),
        address_number=address_number(mail, setup),
        extra_numbers=named_tickets(mail, setup),
    )


def referenced_ids(mail: InboundMail) -> tuple[str, ...]:
    """A bounce's original first, then In-Reply-To, then References newest first, without repeats."""
    bounced = (mail.delivery_report.original_message_id,) if mail.delivery_report else ()
    ordered = [*bounced, *mail.in_reply_to, *reversed(mail.references)]
    seen: dict[str, None] = {}
    for message_id in ordered:
        if message_id and message_id != mail.message_id:
            seen.setdefault(message_id, None)
    return tuple(seen)[:MAX_REFERENCES]


@lru_cache(maxsize=16)
def _subject_pattern(prefix: str) -> re.Pattern[str]:
    words = r"[\s_]*".join(re.escape(w) for w in prefix.split())
    return re.compile(
        rf"[\[\(（［{{<]?\s*{words}\s*[#＃№]\s*(\d{{1,12}})\s*[\]\)）］}}>]?",
        re.IGNORECASE,
    )


def subject_number(subject: str, prefix: str) -> int | None:
    """The ticket number in `[Support #1234]`, tolerant of mangled brackets and spaces."""
    match = _subject_pattern(prefix).search(subject)
    return int(match.group(1)) if match else None


def address_number(mail: InboundMail, setup: Setup) -> int | None:
    """`support+1234@example.com` (or `support+1234-anything@`) addressed to one of our mailboxes."""
    own = setup.own_addresses
    for recipient in (*mail.to, *mail.cc, *_delivered_to(mail)):
        local, _, domain = recipient.email.rpartition("@")
        base, plus, tag = local.partition("+")
        if plus and f"{base}@{domain}" in own:
            digits = re.match(r"(\d{1,12})(?:\D|$)", tag)
            if digits:
                return int(digits.group(1))
    return None


def _delivered_to(mail: InboundMail) -> tuple[Address, ...]:
    return tuple(Address(v.strip().strip("<>").lower()) for v in mail.header_values("delivered-to")
                 + mail.header_values("x-original-to"))


def match(found: ThreadKeys, facts: Facts) -> ThreadMatch:
    by_id = dict(facts.ticket_by_message_id)
    for message_id in found.message_ids:
        ticket = facts.ticket(by_id.get(message_id))
        if ticket is not None:
            return ThreadMatch(ticket.number, "references")
    notes = []
    for number, how in ((found.subject_number, "subject"), (found.address_number, "address")):
        if number is None:
            continue
        ticket = facts.ticket(number)
        if ticket is not None:
            return ThreadMatch(ticket.number, how)
        notes.append(f"the {how} names ticket #{number}, which does not exist")
    return ThreadMatch(None, "", "; ".join(notes))
