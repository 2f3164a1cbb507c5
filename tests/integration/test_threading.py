"""Threading and the ticket lifecycle with real mail shapes, through the real intake.

Every answer here is built from a mail Postdesk really sent (taken from the recording SMTP
server or the Maildir outbox): replies as Gmail, Outlook, Apple Mail and Thunderbird write
them, corpus mails (`tests/mail/`) re-aimed at it, delivery reports quoting it. Then the
test looks in the store: which ticket each mail joined, what changed, what was sent.
"""

from __future__ import annotations

import email
import email.policy
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.app import App
from daemon.intake import IntakeResult, take_in
from daemon.runtime import run_once
from daemon.store.apply import merge_into_target
from daemon.store.models import Event, Link, Message, Outbox, Tag, Ticket
from tests.harness import Site
from tests.mailfactory import NOW
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.smtpd import SmtpServer
from tests.threadgen import (
    DSN_SHAPES,
    MANGLED,
    OOO_SHAPES,
    Person,
    Seen,
    Simulation,
    aimed,
    bounce,
    mangle,
    new_mail,
    out_of_office,
    play,
    read,
    reply,
    ticket_of,
)
from tests.threadgen import Outbox as OutboxReader

RULES = Path(__file__).resolve().parents[2] / "rules"
SUPPORT = "help@example.com"
ALICE = Person("Alice", "alice@example.com", "thunderbird")
OLENA = Person("Olena Petrenko", "olena.petrenko@gmail.com", "gmail")
HANS = Person("Hans Müller", "hans.mueller@kunde.example", "outlook", "de")
MILLER = Person("Hans Miller", "h.miller@customer.example", "outlook", "en")
JANE = Person("Jane Cooper", "jane.cooper@customer.example", "apple")
MARKUS = Person("Markus Brandt", "m.brandt@kunde.example", "thunderbird", "de")
ANNA = Person("Anna Schmidt", "anna.schmidt@firma.example", "apple", "de")
CLIENT_CORPUS = {  # corpus replies, re-aimed at the real acknowledgement of their sender's ticket
    "gmail-reply-toppost.eml": OLENA, "outlook-reply-aw-german.eml": HANS, "owa-reply-deep-prefixes.eml": MILLER,
    "apple-mail-reply.eml": JANE, "thunderbird-reply-toppost-flowed.eml": MARKUS,
    "outlook-android-reply.eml": MILLER, "k9-mail-reply.eml": OLENA, "iphone-reply-sent-from.eml": JANE,
}


def rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


class Desk:
    """A Postdesk with a Maildir intake and a Maildir outbox; what it sent, as customers see it."""

    def __init__(self, root: Path, url: str, extra: str = "", rules: bool = False) -> None:
        site = Site(root, url).maildir()
        site.extra = (f'[paths]\nrules = "{RULES}"\n\n' if rules else "") + extra
        self.app: App = site.app()
        self.outbox = OutboxReader(self.app)
        self.sent: list[Seen] = []
        self.rng = rng()

    def take(self, raw: bytes, at: datetime = NOW) -> IntakeResult:
        result = take_in(self.app, raw, "local", at)
        self.sent += self.outbox.send(at)
        return result

    def to(self, address: str, since: int = 0) -> list[Seen]:
        return [mail for mail in self.sent[since:] if address in mail.recipients]

    def last(self, address: str, kind: str, number: int | None = None) -> Seen:
        found = [m for m in self.to(address) if m.kind == kind
                 and (number is None or ticket_of(m.subject) == number)]
        assert found, f"no {kind} mail to {address} about #{number}"
        return found[-1]

    def open(self, person: Person, subject: str, text: str, at: datetime = NOW, cc: tuple[str, ...] = ()) -> int:
        result = self.take(new_mail(person, to=SUPPORT, subject=subject, text=text, at=at, rng=self.rng, cc=cc).raw,
                           at)
        assert result.ticket_number is not None, result.reason
        return result.ticket_number

    def agent(self, number: int, text: str, at: datetime = NOW) -> IntakeResult:
        """Alice answers the notification about ticket `number` (commands at the top)."""
        notice = self.last(ALICE.email, "agent_new_ticket", number)
        return self.take(reply(ALICE, notice, text, at=at, rng=self.rng, to=[SUPPORT]).raw, at)

    def close(self) -> None:
        self.outbox.close()
        self.app.close()


@pytest.fixture
def desk(tmp_path: Path, sqlite_url: str) -> Iterator[Desk]:
    found = Desk(tmp_path, sqlite_url)
    yield found
    found.close()


def ticket_row(app: App, number: int) -> Ticket:
    with app.db.read() as session:
        row = session.scalar(select(Ticket).where(Ticket.number == number))
        assert row is not None
        session.expunge(row)
        return row


def ticket_of_message(app: App, message_id: str) -> int | None:
    with app.db.read() as session:
        return session.scalar(select(Ticket.number).join(Message, Message.ticket_id == Ticket.id)
                              .where(Message.message_id == message_id, Message.direction == "in"))


def messages(app: App, number: int, direction: str = "in") -> list[Message]:
    with app.db.read() as session:
        rows = session.scalars(select(Message).join(Ticket, Ticket.id == Message.ticket_id)
                               .where(Ticket.number == number, Message.direction == direction)
                               .order_by(Message.id)).all()
        session.expunge_all()
        return list(rows)


def events(app: App, kind: str, number: int | None = None) -> list[dict[str, str]]:
    with app.db.read() as session:
        query = select(Event.detail).where(Event.kind == kind).order_by(Event.id)
        if number is not None:
            query = query.join(Ticket, Ticket.id == Event.ticket_id).where(Ticket.number == number)
        return [dict(d) for d in session.scalars(query).all()]


def ticket_count(app: App) -> int:
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Ticket)) or 0


def how_joined(app: App, message_id: str) -> str:
    found = [e["how"] for e in events(app, "mail") if e.get("message_id") == message_id]
    return found[0] if found else ""


def everything_readable(mail: Seen) -> str:
    """Subject, every header value and every decoded text part: what a recipient can read."""
    message = email.message_from_bytes(mail.raw, policy=email.policy.default)
    parts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(str(part.get_content()))
    return "\n".join(parts)


# ----------------------------------------------------------------------------------------
# Replies from real clients join their ticket


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_each_client_answering_the_real_acknowledgement_joins_its_ticket(
        db: str, tmp_path: Path, dovecot: Dovecot, imap_user: MailUser, smtp: SmtpServer, sqlite_url: str,
        fresh_pg_url: Callable[[], str]) -> None:
    url = sqlite_url if db == "sqlite" else fresh_pg_url()
    app = Site(tmp_path, url).imap(dovecot, imap_user).smtp(smtp).app()
    support, generator = "support@example.com", rng(5)
    customers = (OLENA, HANS, MILLER, JANE, MARKUS)
    try:
        firsts = [new_mail(p, to=support, subject=s, text=t, at=NOW, rng=generator) for p, s, t in (
            (OLENA, "Printer on floor 2 prints nothing", "The printer takes the jobs but prints nothing."),
            (HANS, "VPN-Verbindung bricht ab", "Die VPN-Verbindung bricht alle zehn Minuten ab."),
            (MILLER, "VPN keeps disconnecting", "The VPN drops every ten minutes."),
            (JANE, "Shared drive not mounting", "The shared drive does not mount since the update."),
            (MARKUS, "ERP: database locked", "The ERP says 'Database locked by another user'."))]
        dovecot.append_many(imap_user.name, [f.raw for f in firsts])
        run_once(app, lambda: NOW)
        tickets = {p.email: ticket_of_message(app, f.message_id) for p, f in zip(customers, firsts, strict=True)}
        assert sorted(tickets.values()) == [1, 2, 3, 4, 5]  # type: ignore[type-var]
        ack = {p.email: read(only(smtp, p.email)) for p in customers}
        assert all(outbox_kind(app, a.message_id) == "acknowledgement" for a in ack.values())

        later = NOW + timedelta(hours=1)
        built = [
            (reply(OLENA, ack[OLENA.email], "It still prints nothing.", at=later, rng=generator), OLENA, "Gmail"),
            (reply(HANS, ack[HANS.email], "Leider immer noch.", at=later, rng=generator, refs="in-reply-to"), HANS,
             "Outlook AW: with In-Reply-To only"),
            (reply(MILLER, ack[MILLER.email], "Still dropping.", at=later, rng=generator), MILLER,
             "Outlook RE: with References cut to the first and the last"),
            (reply(JANE, ack[JANE.email], "Here is a screenshot.", at=later, rng=generator,
                   subject="Re: the drive again"), JANE, "Apple Mail, the token removed from the subject"),
            (reply(MARKUS, ack[MARKUS.email], "Der Fehler ist wieder da.", at=later, rng=generator), MARKUS,
             "Thunderbird, German, bottom-posting"),
        ]
        raws = [(written.raw, person, what) for written, person, what in built]
        outlook = [read(written.raw) for written, person, _ in built if person.client == "outlook"]
        assert [m.subject.split()[0] for m in outlook] == ["AW:", "RE:"]
        assert all(m.thread_index and "Example Support <support@example.com>" in m.text for m in outlook)
        assert "Von: Example Support" in outlook[0].text and "Sent: " in outlook[1].text
        for name, person in CLIENT_CORPUS.items():
            raws.append((aimed(name, sender=person, support=support, parent=ack[person.email],
                               number=tickets[person.email], at=later, rng=generator), person, name))
        before = len(smtp.messages)
        dovecot.append_many(imap_user.name, [raw for raw, _, _ in raws])
        intake, _ = run_once(app, lambda: later)
        assert (intake.taken, intake.quarantined) == (len(raws), 0)
        for raw, person, what in raws:
            message_id = read(raw).message_id
            assert ticket_of_message(app, message_id) == tickets[person.email], what
            assert how_joined(app, message_id) == "references", what
        assert ticket_count(app) == 5
        assert not [m for m in smtp.messages[before:] if set(m.rcpt_tos) & {p.email for p in customers}], \
            "a follow-up is not acknowledged"
    finally:
        app.close()


def only(smtp: SmtpServer, address: str) -> bytes:
    found = [m.raw for m in smtp.messages if address in m.rcpt_tos]
    assert len(found) == 1, f"{len(found)} mails to {address}"
    return found[0]


# ----------------------------------------------------------------------------------------
# A reply that lost its headers still joins: the subject token, mangled or not; support+N@


def test_a_reply_without_thread_headers_joins_by_subject_token_or_plus_address(desk: Desk) -> None:
    desk.open(ANNA, "Drucker im 2. OG druckt nicht", "Der Drucker druckt nichts.")
    number = desk.open(OLENA, "Printer on floor 2 prints nothing", "The printer takes jobs but prints nothing.")
    desk.open(HANS, "VPN-Verbindung bricht ab", "Die VPN-Verbindung bricht ab.")
    ack = desk.last(OLENA.email, "acknowledgement", number)
    at, joined = NOW + timedelta(hours=2), []
    for variant in range(len(MANGLED)):  # Olena's client lost In-Reply-To/References; she kept some token
        subject = mangle(f"Re: {ack.subject}", variant)
        written = reply(OLENA, ack, f"Attempt {variant}: still nothing.", at=at, rng=desk.rng, refs="none",
                        subject=subject)
        joined.append((written.raw, "subject", subject))
    for name in ("gmail-reply-mangled-token-nospace.eml", "gmail-new-token-parentheses.eml",
                 "outlook2016-token-without-brackets.eml", "owa-reply-deep-prefixes.eml"):
        raw = aimed(name, sender=OLENA, support=SUPPORT, parent=ack, number=number, at=at, rng=desk.rng,
                    thread_headers_kept=False)
        joined.append((raw, "subject", name))
    plus = aimed("gmail-reply-plus-address.eml", sender=OLENA, support=SUPPORT, parent=ack, number=number, at=at,
                 rng=desk.rng, thread_headers_kept=False)
    assert f"help+{number}@example.com".encode() in plus
    joined.append((plus, "address", "gmail-reply-plus-address.eml"))
    written = reply(OLENA, ack, "One more detail.", at=at, rng=desk.rng, refs="none", subject="Re: the printer",
                    to=[f"help+{number}-olena@example.com"])
    joined.append((written.raw, "address", "support+N-anything@"))
    for raw, how, what in joined:
        result = desk.take(raw, at)
        assert result.ticket_number == number, (what, result.reason)
        assert how_joined(desk.app, read(raw).message_id) == how, what
    assert ticket_count(desk.app) == 3
    assert len(messages(desk.app, number)) == 1 + len(joined)

    unknown = reply(OLENA, ack, "About my old request.", at=at, rng=desk.rng, refs="none",
                    subject="Re: [Support #999] Printer")
    result = desk.take(unknown.raw, at)
    assert result.ticket_number == 4, "a token naming no ticket starts a new one"
    assert "#999, which does not exist" in events(desk.app, "created", 4)[0]["note"]


# ----------------------------------------------------------------------------------------
# Mail to a closed ticket follows the configured policy


@pytest.mark.parametrize(("policy", "days", "outcome"), [
    ("reopen", 3, "reopened"), ("reopen", 20, "linked"), ("new", 1, "linked"), ("reply", 1, "answered")])
def test_a_reply_to_a_closed_ticket_follows_the_policy(policy: str, days: int, outcome: str, tmp_path: Path,
                                                       sqlite_url: str) -> None:
    desk = Desk(tmp_path, sqlite_url, f'[lifecycle]\nclosed_followup = "{policy}"\nreopen_within = "14d"\n')
    try:
        number = desk.open(OLENA, "Printer on floor 2 prints nothing", "It prints nothing.")
        ack = desk.last(OLENA.email, "acknowledgement", number)
        desk.agent(number, "#close\n\nThe printer was replaced.", NOW + timedelta(hours=1))
        assert ticket_row(desk.app, number).status == "closed"
        kept_before = len(messages(desk.app, number))
        at = NOW + timedelta(hours=1, days=days)
        seen_before = len(desk.sent)
        written = reply(OLENA, ack, "The new printer prints nothing either.", at=at, rng=desk.rng)
        result = desk.take(written.raw, at)
        to_olena = desk.to(OLENA.email, seen_before)
        if outcome == "reopened":
            assert result.ticket_number == number and ticket_row(desk.app, number).status == "open"
            assert "reopened" in events(desk.app, "status", number)[-1]["why"]
            assert ticket_count(desk.app) == 1
        elif outcome == "linked":
            assert result.ticket_number == number + 1
            assert ticket_row(desk.app, number).status == "closed", "a closed ticket never changes"
            assert len(messages(desk.app, number)) == kept_before
            with desk.app.db.read() as session:
                links = session.execute(select(Link.kind, Link.ref).join(Ticket, Ticket.id == Link.ticket_id)
                                        .where(Ticket.number == number + 1)).all()
            assert [tuple(link) for link in links] == [("related", str(number))]
            assert [m.kind for m in to_olena] == ["acknowledgement"]
            assert ticket_of(to_olena[0].subject) == number + 1
        else:
            assert result.ticket_number == number and ticket_row(desk.app, number).status == "closed"
            kept = messages(desk.app, number)[-1]
            assert (kept.message_id, kept.kind, kept.visibility) == (written.message_id, "after_close", "internal")
            assert [m.kind for m in to_olena] == ["closed_ticket"]
            assert "already closed" in to_olena[0].text and ticket_count(desk.app) == 1
    finally:
        desk.close()


# ----------------------------------------------------------------------------------------
# Someone else using a ticket's token


ORIGINAL_SECRETS = ("Printer on floor 2", "room 2.14", "E-47", "Olena", "Petrenko", "olena.petrenko")


@pytest.mark.parametrize("policy", ["new", "hold", "append"])
def test_a_stranger_with_a_token_gets_a_new_ticket_and_sees_nothing_of_the_old(policy: str, tmp_path: Path,
                                                                                sqlite_url: str) -> None:
    desk = Desk(tmp_path, sqlite_url, f'[lifecycle]\nstranger = "{policy}"\n')
    mallory = Person("Mallory Black", "mallory@other.example", "gmail")
    trent = Person("Trent White", "trent@other.example", "outlook", "en")
    try:
        number = desk.open(OLENA, "Printer on floor 2 prints nothing",
                           "The printer in room 2.14 shows error E-47 and prints nothing.")
        ack = desk.last(OLENA.email, "acknowledgement", number)
        at, seen_before = NOW + timedelta(hours=1), len(desk.sent)
        guessed = reply(mallory, ack, "Please give me access to the shared drive.", at=at, rng=desk.rng,
                        refs="none", subject=f"Re: [Support #{number}] Need access to the shared drive")
        forwarded = reply(trent, ack, "Our payroll export fails since Monday.", at=at, rng=desk.rng,
                          subject=f"RE: [Support #{number}] Payroll export fails")  # In-Reply-To: the real ack
        results = [desk.take(guessed.raw, at), desk.take(forwarded.raw, at)]
        if policy == "append":
            assert [r.ticket_number for r in results] == [number, number]
            assert len(messages(desk.app, number)) == 3
        else:
            assert [r.ticket_number for r in results] == [number + 1, number + 2]
            assert len(messages(desk.app, number)) == 1, "nothing joins the original ticket"
            assert [e["token_ticket"] for e in events(desk.app, "stranger")] == [str(number)] * 2
            for new in (number + 1, number + 2):
                with desk.app.db.read() as session:
                    tags = session.scalars(select(Tag.name).join(Ticket, Ticket.id == Tag.ticket_id)
                                           .where(Ticket.number == new)).all()
                    link = session.execute(select(Link.kind, Link.ref).join(Ticket, Ticket.id == Link.ticket_id)
                                           .where(Ticket.number == new)).all()
                assert ("held" in tags) == (policy == "hold")
                assert [tuple(x) for x in link] == [("related", str(number))]
        for stranger in (mallory, trent):
            received = desk.to(stranger.email, seen_before)
            if policy == "new":
                assert [m.kind for m in received] == ["acknowledgement"]
            else:
                assert received == []
            for mail in received:
                readable = everything_readable(mail)
                assert not [s for s in ORIGINAL_SECRETS if s in readable], readable
        assert desk.to(OLENA.email, seen_before) == [], "the requester hears nothing of it"
        assert ticket_row(desk.app, number).status == "new"
    finally:
        desk.close()


# ----------------------------------------------------------------------------------------
# Resolved: a thanks closes, a problem reopens


THANKS = [("outlook-reply-thanks-english.eml", MILLER), ("gmail-reply-german-thanks.eml", OLENA),
          ("gmail-reply-ukrainian-thanks.eml", OLENA), ("yandex-reply-thanks.eml", HANS),
          ("apple-mail-reply.eml", JANE)]
WRITTEN_THANKS = [(Person("Sophie Laurent", "sophie@client.example", "outlook", "fr"), "Merci beaucoup, ça marche."),
                  (Person("Erik Berg", "erik@firma.example", "outlook", "sv"), "Tack så mycket, det fungerar!"),
                  (Person("Yuki Sato", "yuki@agency.example", "apple"), "ありがとうございます。解決しました。"),
                  (MARKUS, "Vielen Dank, funktioniert jetzt.")]
PROBLEMS = [("gmail-reply-toppost.eml", OLENA), ("outlook-reply-aw-german.eml", HANS)]


def test_a_thanks_closes_a_resolved_ticket_and_a_problem_reopens_it(desk: Desk) -> None:
    cases = [(person, name, "closed") for name, person in THANKS] + \
        [(person, text, "closed") for person, text in WRITTEN_THANKS] + \
        [(person, name, "open") for name, person in PROBLEMS]
    at = NOW + timedelta(hours=3)
    for index, (person, what, wanted) in enumerate(cases):
        number = desk.open(person, f"Problem {index}", "Something does not work.")
        desk.agent(number, "#resolve\n\nWe reset your profile; it should work now.", NOW + timedelta(hours=1))
        resolution = desk.last(person.email, "resolution", number)
        seen_before = len(desk.sent)
        if what.endswith(".eml"):
            raw = aimed(what, sender=person, support=SUPPORT, parent=resolution, number=number, at=at, rng=desk.rng)
        else:
            raw = reply(person, resolution, what, at=at, rng=desk.rng).raw
        assert desk.take(raw, at).ticket_number == number, what
        assert ticket_row(desk.app, number).status == wanted, (what, events(desk.app, "status", number)[-1])
        why = events(desk.app, "status", number)[-1]["why"]
        notices = [m.kind for m in desk.to(person.email, seen_before)]
        if wanted == "closed":
            assert "confirmed the resolution" in why and notices == [], what
        else:
            assert "reopened" in why and notices == ["reopen_notice"], what


# ----------------------------------------------------------------------------------------
# Machines: bounces, out-of-office, lists; the per-sender limit


def test_bounces_attach_to_the_ticket_mark_the_mail_failed_and_open_nothing(desk: Desk) -> None:
    owners = {}
    for index, shape in enumerate(DSN_SHAPES):
        person = Person(f"Customer {index}", f"c{index}@customer{index}.example", "gmail")
        owners[shape] = (person, desk.open(person, f"Request {index}", "Please help."))
    outbox_rows = count_outbox(desk.app)
    at = NOW + timedelta(minutes=5)
    for shape, (person, number) in owners.items():
        ack = desk.last(person.email, "acknowledgement", number)
        result = desk.take(bounce(shape, ack, person.email, at=at, rng=desk.rng), at)
        assert (result.verdict.value, result.ticket_number) == ("stored", number), (shape, result.reason)
        kept = messages(desk.app, number)[-1]
        assert (kept.kind, kept.auto, kept.visibility) == ("bounce", True, "internal"), shape
        assert events(desk.app, "bounce", number)[-1]["original"] == ack.message_id
        status = outbox_status(desk.app, ack.message_id)
        assert status == ("sent" if "delayed" in shape else "failed"), shape
        assert ticket_row(desk.app, number).status == "new"
    forged = Seen(b"", "spam.4711@example.com", "Your invoice", ("", SUPPORT), (("", "x@victim.example"),), (), at,
                  "", (), "")
    result = desk.take(bounce("postfix-dsn-user-unknown.eml", forged, "x@victim.example", at=at, rng=desk.rng), at)
    assert (result.verdict.value, result.ticket_number) == ("ignored", None)
    assert ticket_count(desk.app) == len(DSN_SHAPES)
    assert count_outbox(desk.app) == outbox_rows, "nothing answers a bounce"


def outbox_kind(app: App, message_id: str) -> str:
    with app.db.read() as session:
        return session.scalar(select(Outbox.kind).where(Outbox.message_id == message_id)) or ""


def count_outbox(app: App) -> int:
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(Outbox)) or 0


def outbox_status(app: App, message_id: str) -> str:
    with app.db.read() as session:
        return session.scalar(select(Outbox.status).where(Outbox.message_id == message_id)) or ""


def test_out_of_office_replies_attach_as_automatic_and_change_no_status(desk: Desk) -> None:
    number = desk.open(OLENA, "Printer on floor 2 prints nothing", "It prints nothing.")
    ack = desk.last(OLENA.email, "acknowledgement", number)
    desk.agent(number, "#wait\n\nWhich printer model is it?", NOW + timedelta(minutes=30))
    question = desk.last(OLENA.email, "info_request", number)
    assert ticket_row(desk.app, number).status == "waiting_customer"
    at, seen_before, outbox_rows = NOW + timedelta(hours=1), len(desk.sent), count_outbox(desk.app)
    for index, shape in enumerate(OOO_SHAPES):
        parent = question if index % 2 else ack
        result = desk.take(out_of_office(shape, OLENA, parent, at=at, rng=desk.rng), at)
        assert result.ticket_number == number, (shape, result.reason)
        kept = messages(desk.app, number)[-1]
        assert (kept.kind, kept.auto) == ("auto_reply", True), shape
        assert ticket_row(desk.app, number).status == "waiting_customer", shape
    assert count_outbox(desk.app) == outbox_rows and desk.to(OLENA.email, seen_before) == []
    # the out-of-office of someone not on the ticket, answering a copy of the acknowledgement that
    # a redirect rule re-sent under a new Message-ID: it names the ticket by its token only
    rachel = Person("Rachel Green", "rachel.green@customer.example", "outlook")
    forwarded = Seen(b"", "redirect.1@customer.example", ack.subject, ack.sender, (("", rachel.email),), (), at,
                     "", (), "")
    stored = len(messages(desk.app, number))
    result = desk.take(out_of_office("exchange-ooo-automatic-reply.eml", rachel, forwarded, at=at, rng=desk.rng), at)
    assert (result.verdict.value, result.ticket_number) == ("ignored", None), result.reason
    assert len(messages(desk.app, number)) == stored
    assert ticket_count(desk.app) == 1


def test_a_read_receipt_does_not_reopen_a_resolved_ticket(desk: Desk) -> None:
    number = desk.open(MILLER, "VPN keeps disconnecting", "The VPN drops every ten minutes.")
    desk.agent(number, "#resolve\n\nWe reset your VPN profile.", NOW + timedelta(minutes=5))
    resolution = desk.last(MILLER.email, "resolution", number)
    at, seen_before = NOW + timedelta(minutes=10), len(desk.sent)
    receipt = aimed("outlook-read-receipt-mdn.eml", sender=MILLER, support=SUPPORT, parent=resolution,
                    number=number, at=at, rng=desk.rng)
    assert desk.take(receipt, at).ticket_number == number
    assert (messages(desk.app, number)[-1].kind, ticket_row(desk.app, number).status) == ("auto_reply", "resolved")
    assert desk.to(MILLER.email, seen_before) == [], "no reopen notice for a read receipt"


def test_another_help_desks_automatic_answers_change_nothing(desk: Desk) -> None:
    """A vendor's ticket system acknowledges what we passed to it (Znuny: Auto-Submitted:
    auto-generated, X-OTRS-Loop): that is not the vendor's answer. RT answers the customer's
    acknowledgement; another desk acknowledges with its own token only."""
    number = desk.open(OLENA, "Licence key for 20 seats", "We need a licence key for 20 seats.")
    desk.agent(number, "#third-party service@vendor.example\n\nPlease send a licence key for 20 seats.",
               NOW + timedelta(minutes=5))
    assert ticket_row(desk.app, number).status == "waiting_third_party"
    passed = next(m for m in desk.sent if "service@vendor.example" in m.recipients)
    ack = desk.last(OLENA.email, "acknowledgement", number)
    at, outbox_rows = NOW + timedelta(minutes=10), count_outbox(desk.app)
    znuny = aimed("znuny-autoreply-ticketnumber.eml", sender=Person("Vendor Service", "service@vendor.example"),
                  support=SUPPORT, parent=passed, number=number, at=at, rng=desk.rng)
    rt = aimed("rt-autoreply-acme-ticket.eml", sender=Person("Acme IT Helpdesk", "helpdesk@acme.example"),
               support=SUPPORT, parent=ack, number=number, at=at, rng=desk.rng)
    for raw in (znuny, rt):
        result = desk.take(raw, at)
        assert (result.ticket_number, messages(desk.app, number)[-1].kind) == (number, "auto_reply"), result.reason
    assert ticket_row(desk.app, number).status == "waiting_third_party", "a robot's receipt is no answer"
    other = aimed("helpdesk-autoack-xloop.eml", sender=Person("Acme Support", "support@acme.example"),
                  support=SUPPORT, parent=None, number=None, at=at, rng=desk.rng)
    assert desk.take(other, at).ticket_number is None
    assert ticket_count(desk.app) == 1 and count_outbox(desk.app) == outbox_rows


LIST_AND_BULK = ("mailman2-list-post.eml", "mailman3-list-dmarc-munged.eml", "googlegroups-list-post.eml",
                 "newsletter-mailchimp.eml", "newsletter-phplist-precedence-bulk.eml",
                 "noreply-billing-notification.eml", "jira-notification-auto-generated.eml",
                 "quarantine-digest-null-return-path.eml")


def test_list_and_bulk_mail_gets_no_acknowledgement(desk: Desk) -> None:
    from tests.threadgen import corpus, manifest

    for name in LIST_AND_BULK:
        sender = str(manifest()[name]["from"])
        before = len(desk.sent)
        desk.take(corpus(name), NOW)
        assert desk.to(sender, before) == [], name
    suppressed = events(desk.app, "auto_answer_suppressed")
    assert len(suppressed) == len(LIST_AND_BULK)
    assert all(e["kind"] == "acknowledgement" and e["why"] for e in suppressed)


def test_the_per_sender_limit_of_automatic_mails_holds(desk: Desk) -> None:
    for minute in range(0, 56, 8):  # 7 new tickets in 48 minutes
        desk.open(OLENA, f"Problem at minute {minute}", "Another problem.", NOW + timedelta(minutes=minute))
    assert len(desk.to(OLENA.email)) == 5
    assert [e["why"] for e in events(desk.app, "auto_answer_suppressed")][-1].endswith("(limit 5)")
    desk.open(OLENA, "Later problem", "After the hour.", NOW + timedelta(minutes=70))
    assert len(desk.to(OLENA.email)) == 6, "a new hour, a new acknowledgement"


# ----------------------------------------------------------------------------------------
# Merge: mail for either ticket finds the surviving one


@pytest.mark.parametrize("how", ["command", "store"])
def test_after_a_merge_mail_for_either_ticket_finds_the_surviving_one(how: str, tmp_path: Path, db_url: str) -> None:
    desk = Desk(tmp_path, db_url)
    try:
        merged_and_followed(desk, how)
    finally:
        desk.close()


def merged_and_followed(desk: Desk, how: str) -> None:
    first = desk.open(OLENA, "Printer on floor 2 prints nothing", "It prints nothing.")
    second = desk.open(OLENA, "Printer on floor 2 still prints nothing", "Sorry, again.",
                       NOW + timedelta(minutes=10))
    acks = {n: desk.last(OLENA.email, "acknowledgement", n) for n in (first, second)}
    at = NOW + timedelta(hours=1)
    if how == "command":
        result = desk.agent(second, f"#merge {first}\n", at)
        assert result.ticket_number == second, result.reason
    else:
        with desk.app.db.write() as session:
            source = session.scalar(select(Ticket).where(Ticket.number == second))
            assert source is not None
            merge_into_target(session.connection(), source, first, at)
    assert ticket_row(desk.app, second).merged_into == first
    later = at + timedelta(hours=1)
    mails = [reply(OLENA, acks[second], "Reply to the second one.", at=later, rng=desk.rng).raw,
             reply(OLENA, acks[second], "Lost headers.", at=later, rng=desk.rng, refs="none").raw,
             reply(OLENA, acks[second], "Plus address.", at=later, rng=desk.rng, refs="none",
                   subject="Re: printer", to=[f"help+{second}@example.com"]).raw,
             reply(OLENA, acks[first], "Reply to the first one.", at=later, rng=desk.rng).raw]
    for raw in mails:
        assert desk.take(raw, later).ticket_number == first
    assert {m.message_id for m in messages(desk.app, first)} >= {read(raw).message_id for raw in mails}
    assert ticket_count(desk.app) == 2


# ----------------------------------------------------------------------------------------
# A small synthetic conversation set (bench/threading.py runs 1,000 threads)


def test_synthetic_conversations_are_sorted_into_their_tickets(tmp_path: Path, sqlite_url: str) -> None:
    desk = Desk(tmp_path, sqlite_url, rules=True)
    try:
        desk.outbox.close()
        simulation = Simulation(threads=100, seed=11, support=SUPPORT)
        score = play(desk.app, simulation, "local")
    finally:
        desk.app.close()
    shapes = " | ".join(score.shapes)
    for needed in ("gmail reply", "outlook reply", "apple reply", "thunderbird reply", "bounce", "out-of-office",
                   "agent answer", "reply-all of a colleague in copy", "reply to a forward", "backscatter"):
        assert needed in shapes, f"the simulation made no {needed!r}"
    assert score.accuracy >= 0.995, score.summary() + "\n" + "\n".join(score.misfiled)
    assert score.cross == 0, "\n".join(score.misfiled)
