"""Postdesk's threading headers keep each ticket one conversation in clients that group
mail by their own rules: Gmail (subject without Re:/AW:/Fwd: prefixes, plus a reference to
a message already in the conversation) and Outlook (the Thread-Index header block, or the
Thread-Topic when there is none)."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from daemon.core.compose import Envelope, compose
from daemon.core.values import Address, OutboundDraft, OutboundKind, Setup, Status, TicketView
from daemon.templates import load_renderer

SETUP = Setup(secret=b"threading-secret-0123456789", domain="support.example.com", subject_prefix="Support")
RENDERER = load_renderer(None)
ENVELOPE = Envelope("help@support.example.com", "ACME Support")
OLENA = Address("olena@customer.example", "Olena Petrenko")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|antw|ответ|відп|tr|r)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def ids(value: object) -> list[str]:
    return re.findall(r"<([^>]+)>", str(value or ""))


def gmail_conversations(messages: list[email.message.EmailMessage]) -> list[list[str]]:
    """Gmail: a mail joins a conversation when its subject (without reply prefixes) is the
    conversation's and it references one of the conversation's messages."""
    conversations: list[tuple[str, list[str]]] = []
    for message in messages:
        subject = PREFIX.sub("", str(message["Subject"])).strip().lower()
        refs = set(ids(message["In-Reply-To"])) | set(ids(message["References"]))
        home = next((c for c in conversations if c[0] == subject and refs & set(c[1])), None)
        if home is None:
            home = (subject, [])
            conversations.append(home)
        home[1].append(ids(message["Message-ID"])[0])
    return [c[1] for c in conversations]


def outlook_conversations(messages: list[email.message.EmailMessage]) -> list[list[str]]:
    """Outlook: the first 22 bytes of Thread-Index name the conversation; without the header,
    the Thread-Topic (or the subject without prefixes) does."""
    groups: dict[bytes | str, list[str]] = {}
    for message in messages:
        index = message["Thread-Index"]
        key: bytes | str = base64.b64decode(str(index))[:22] if index else \
            PREFIX.sub("", str(message["Thread-Topic"] or message["Subject"])).strip().lower()
        groups.setdefault(key, []).append(ids(message["Message-ID"])[0])
    return list(groups.values())


def customer_reply(to: email.message.EmailMessage, client: str, number: int) -> email.message.EmailMessage:
    """What Gmail or Outlook sends when the customer answers `to`."""
    parent = ids(to["Message-ID"])[0]
    lines = [f"From: {OLENA.formatted()}", "To: help@support.example.com",
             f"Message-ID: <reply{number}.{client}@customer.example>", f"In-Reply-To: <{parent}>"]
    if client == "gmail":
        lines += [f"Subject: Re: {to['Subject']}", f"References: {' '.join(f'<{i}>' for i in ids(to['References']))} "
                                                      f"<{parent}>"]
    else:  # Outlook keeps the Thread-Index block and adds its own five bytes; AW: in German
        index = base64.b64decode(str(to["Thread-Index"])) + bytes([number % 256] * 5)
        lines += [f"Subject: AW: {to['Subject']}", f"Thread-Topic: {to['Thread-Topic']}",
                  f"Thread-Index: {base64.b64encode(index).decode()}"]
    return parsed(("\r\n".join(lines) + "\r\n\r\nThanks.\r\n").encode())


def life_of_a_ticket(number: int, client: str) -> list[email.message.EmailMessage]:
    """The mails of one ticket as the customer's mailbox holds them, in order."""
    ticket = TicketView(number=number, subject=f"Printer {number} prints nothing", status=Status.NEW,
                        requester=OLENA, created_at=T0, status_changed_at=T0)
    first = parsed(f"From: {OLENA.formatted()}\r\nSubject: Printer {number} prints nothing\r\n"
                   f"Message-ID: <first{number}@customer.example>\r\n\r\nHelp\r\n".encode())
    mails: list[email.message.EmailMessage] = [first]
    answering = ids(first["Message-ID"])[0]
    kinds = [OutboundKind.ACKNOWLEDGEMENT, OutboundKind.INFO_REQUEST, OutboundKind.AGENT_REPLY,
             OutboundKind.RESOLUTION, OutboundKind.CLOSURE]
    for step, kind in enumerate(kinds):
        draft = OutboundDraft(kind=kind, to=(OLENA,), auto=kind is OutboundKind.ACKNOWLEDGEMENT,
                              in_reply_to=answering, variables=(("text", "Please restart it."),))
        sent = parsed(compose((draft,), ticket, SETUP, RENDERER, ENVELOPE, f"seed{step}",
                              T0 + timedelta(hours=step))[0].raw)
        mails.append(sent)
        ticket = replace(ticket, thread_ids=(*ticket.thread_ids, answering, ids(sent["Message-ID"])[0]))
        if kind is not OutboundKind.CLOSURE:
            answer = customer_reply(sent, client, number * 10 + step)
            mails.append(answer)
            answering = ids(answer["Message-ID"])[0]
    return mails


def test_gmail_keeps_every_mail_of_a_ticket_after_the_acknowledgement_in_one_conversation() -> None:
    mails = life_of_a_ticket(1234, "gmail") + life_of_a_ticket(1235, "gmail")
    conversations = gmail_conversations(mails[1:])  # the customer's first mail has no token in its subject
    ours = [c for c in conversations if any(i.startswith("pd.1234.") for i in c)]
    assert len(ours) == 1 and len(ours[0]) == 9  # five of ours, four answers
    assert not any(i.startswith("pd.1235.") for i in ours[0])


def test_outlook_keeps_every_mail_of_a_ticket_in_one_conversation() -> None:
    mails = life_of_a_ticket(1234, "outlook") + life_of_a_ticket(1235, "outlook")
    conversations = outlook_conversations([m for m in mails if m["Thread-Index"]])
    assert sorted(len(c) for c in conversations) == [9, 9]
    assert all(len({i.split(".")[1] for i in c if i.startswith("pd.")}) == 1 for c in conversations)


def test_the_subject_and_the_thread_index_header_stay_the_same_for_a_ticket() -> None:
    ours = [m for m in life_of_a_ticket(77, "gmail") if ids(m["Message-ID"])[0].startswith("pd.")]
    assert {PREFIX.sub("", str(m["Subject"])) for m in ours} == {"[Support #77] Printer 77 prints nothing"}
    assert {base64.b64decode(str(m["Thread-Index"]))[:22] for m in ours} == \
        {base64.b64decode(str(ours[0]["Thread-Index"]))[:22]}
    assert all(len(base64.b64decode(str(m["Thread-Index"]))) == 27 for m in ours)
