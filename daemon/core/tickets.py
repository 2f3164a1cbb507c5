"""Building a new ticket from a mail: requester, participants, language."""

from __future__ import annotations

from datetime import datetime

from daemon.core.classify import nature_of
from daemon.core.values import Address, Facts, InboundMail, Nature, Setup, Status, TicketView


def new_ticket_view(mail: InboundMail, facts: Facts, setup: Setup, mailbox: str, now: datetime) -> TicketView:
    requester = requester_of(mail)
    language = ticket_language(mail, facts, setup, mailbox)
    return TicketView(
        number=0, subject=mail.subject.strip() or "(no subject)", status=Status.NEW, requester=requester,
        created_at=now, status_changed_at=now, cc=other_participants(mail, setup, (requester.email,)),
        mailbox=mailbox, language=language,
    )


def requester_of(mail: InboundMail) -> Address:
    """From; but a form or a machine sender with one Reply-To means the person in Reply-To."""
    if len(mail.reply_to) == 1 and nature_of(mail) is Nature.MACHINE:
        return mail.reply_to[0]
    return mail.sender


def other_participants(mail: InboundMail, setup: Setup, known: tuple[str, ...]) -> tuple[Address, ...]:
    skip = set(known) | setup.own_addresses
    agents = {a for agent in setup.agents for a in agent.addresses}
    found: dict[str, Address] = {}
    for address in mail.cc:
        local, _, domain = address.email.rpartition("@")
        plain = f"{local.partition('+')[0]}@{domain}"
        if address.email and address.email not in skip and plain not in skip and address.email not in agents:
            found.setdefault(address.email, address)
    return tuple(found.values())


def ticket_language(mail: InboundMail, facts: Facts, setup: Setup, mailbox: str) -> str:
    """The contact's language, the mailbox's, the mail's Content-Language, what its text is
    written in, then the default; only languages there are templates for count."""
    for candidate in (facts.contact.language if facts.contact else "", setup.mailbox(mailbox).language,
                      mail.language, written_in(f"{mail.subject}\n{mail.new_text}")):
        if candidate in setup.languages:
            return candidate
    return setup.default_language


_UKRAINIAN_ONLY = frozenset("іїєґІЇЄҐ")
_RUSSIAN_ONLY = frozenset("ыэъёЫЭЪЁ")


def written_in(text: str) -> str:
    """A cautious guess from letters only one language uses: "uk", "ru" or "" (unknown)."""
    sample = text[:2000]
    ukrainian = sum(sample.count(letter) for letter in _UKRAINIAN_ONLY)
    russian = sum(sample.count(letter) for letter in _RUSSIAN_ONLY)
    if ukrainian > russian:
        return "uk"
    if russian > ukrainian:
        return "ru"
    return ""
