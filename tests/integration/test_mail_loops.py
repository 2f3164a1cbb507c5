"""Postdesk never joins a mail loop: two instances answering each other stop by themselves,
a naive autoresponder is stopped by the per-sender limit, and Postdesk's own mail coming
back is dropped with an event.

The instances run as the daemon's `run --once` does (Maildir intake, Maildir outbox); the
test is the mail system between them: it carries each mail from one instance's outbox into
the inbox of the instance it is addressed to, and counts.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.app import App
from daemon.config import load_config
from daemon.intake import take_in
from daemon.runtime import run_once
from daemon.store.models import Event, Message, Ticket
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.threadgen import Outbox as OutboxReader
from tests.threadgen import Person, new_mail, read, reply, set_headers


def configured(site: Site, changes: dict[str, str]) -> App:
    """The site's Postdesk with some lines of its postdesk.toml changed (what Site cannot say)."""
    path = site.write()
    text = path.read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return App.from_config(load_config(path, {}))


RFC3834_MARKERS = ("Auto-Submitted", "X-Auto-Response-Suppress", "Precedence", "X-Postdesk-Loop")


class Instance:
    """One Postdesk (own domain, database, Maildir inbox and outbox) as `run --once` runs it."""

    def __init__(self, root: Path, domain: str, address: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        site = Site(root, f"sqlite:///{root / 'postdesk.db'}").maildir(address=address)
        self.app = configured(site, {'domain = "example.com"': f'domain = "{domain}"'})
        self.address = address
        self.inbox = root / "mail" / "local" / "new"
        self.outbox = Path(self.app.config.outbound.maildir) / "new"
        self.inbox.mkdir(parents=True, exist_ok=True)

    def deliver(self, raw: bytes, name: str) -> None:
        (self.inbox / name).write_bytes(raw)

    def run(self, at: datetime) -> list[bytes]:
        """One pass; the mails it sent (taken out of its outbox)."""
        intake, sent = run_once(self.app, lambda: at)
        assert not intake.errors and not sent.errors and intake.quarantined == 0
        found = []
        for entry in sorted(os.scandir(self.outbox), key=lambda e: e.name):
            found.append(Path(entry.path).read_bytes())
            os.remove(entry.path)
        return found

    def tickets(self) -> list[tuple[int, str, str]]:
        with self.app.db.read() as session:
            return [tuple(r) for r in session.execute(  # type: ignore[misc]
                select(Ticket.number, Ticket.requester, Ticket.subject).order_by(Ticket.number)).all()]

    def messages_of(self, number: int) -> int:
        with self.app.db.read() as session:
            return session.scalar(select(func.count()).select_from(Message).join(Ticket, Ticket.id == Message.ticket_id)
                                  .where(Ticket.number == number, Message.direction == "in")) or 0


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[tuple[Instance, Instance]]:
    a = Instance(tmp_path / "a", "a.example", "support@a.example")
    b = Instance(tmp_path / "b", "b.example", "help@b.example")
    yield a, b
    a.app.close()
    b.app.close()


def customers_of(instance: Instance, count: int, at: datetime) -> None:
    """Other customers' tickets first, so that the subject tokens of the two desks collide."""
    for index in range(count):
        take_in(instance.app, raw_mail(sender=f"Customer {index} <c{index}@customer{index}.example>",
                                       to=instance.address, subject=f"Earlier problem {index}",
                                       message_id=f"<early{index}@customers.example>"), "local", at)


@pytest.mark.parametrize("carrier", ["faithful", "strips RFC 3834 headers"])
def test_two_instances_answering_each_other_stop_by_themselves(carrier: str,
                                                               instances: tuple[Instance, Instance]) -> None:
    a, b = instances
    customers_of(a, 5, NOW)  # A's tickets 1-5: B's next ticket number names one of them
    customers_of(b, 3, NOW)
    for instance in (a, b):
        instance.run(NOW)
    someone_at_a = Person("Support A", a.address, "thunderbird")
    first = new_mail(someone_at_a, to=b.address, subject="Your API returns 500 on /orders",
                     text="Hello,\n\nyour API returns 500 for every order we send since this morning.\n",
                     at=NOW, rng=random.Random(1))
    b.deliver(first.raw, "start")
    crossed: list[str] = [f"A→B {read(first.raw).subject}"]
    at, quiet = NOW, 0
    for step in range(40):
        at += timedelta(minutes=2)
        moved = 0
        for source, target, arrow in ((b, a, "B→A"), (a, b, "A→B")):
            for raw in source.run(at):
                if target.address not in read(raw).recipients:
                    continue  # a notification to an agent: not for the other desk
                if carrier != "faithful":
                    raw = set_headers(raw, dict.fromkeys(RFC3834_MARKERS))
                target.deliver(raw, f"{arrow}-{step}-{moved}")
                crossed.append(f"{arrow} {read(raw).subject}")
                moved += 1
        quiet = quiet + 1 if moved == 0 else 0
        if quiet == 3:
            break
    assert quiet == 3, "the exchange did not stop:\n" + "\n".join(crossed)
    assert len(crossed) <= 4, "\n".join(crossed)
    for instance, others in ((a, 5), (b, 3)):  # no other customer's ticket got anything of it
        for number in range(1, others + 1):
            assert instance.messages_of(number) == 1, (instance.address, number, crossed)
    assert len(b.tickets()) == 3 + 1
    assert len(a.tickets()) <= 5 + 1


def test_a_naive_autoresponder_is_stopped_by_the_per_sender_limit(tmp_path: Path) -> None:
    """A vendor's robot answers every mail within a minute, with a fresh subject and no
    Auto-Submitted, In-Reply-To or token: each answer looks like a new request (RFC 3834
    cannot see this loop). Only the per-sender limit can stop it."""
    app = Site(tmp_path, f"sqlite:///{tmp_path / 'postdesk.db'}").maildir().app()
    try:
        to_robot, from_robot = play_with_robot(app, answer_after=timedelta(minutes=1), hours=3)
        assert len(to_robot) == 5, "five acknowledgements, then silence"
        assert len(from_robot) == 6 and max(from_robot) - NOW < timedelta(minutes=10), "the loop stopped itself"
        with app.db.read() as session:
            why = session.scalars(select(Event.detail).where(Event.kind == "auto_answer_suppressed")).all()
        assert [d["why"] for d in why] == [f"5 automatic mails to {ROBOT} in the last hour (limit 5)"]
    finally:
        app.close()


def test_a_slow_autoresponder_gets_at_most_five_automatic_mails_in_any_hour(tmp_path: Path) -> None:
    """A robot slower than the limit's pace (one answer per 20 minutes) never meets the limit:
    the loop goes on at three mails an hour (see the report of issue 5), but the limit holds."""
    app = Site(tmp_path, f"sqlite:///{tmp_path / 'postdesk.db'}").maildir().app()
    try:
        to_robot, _ = play_with_robot(app, answer_after=timedelta(minutes=20), hours=6)
        assert len(to_robot) > 5
        for start in to_robot:
            assert len([t for t in to_robot if start <= t < start + timedelta(hours=1)]) <= 5
    finally:
        app.close()


ROBOT = "robot@vendor.example"


def play_with_robot(app: App, answer_after: timedelta, hours: int) -> tuple[list[datetime], list[datetime]]:
    """The robot writes first; then it answers each mail Postdesk sends it. The times of the
    mails to the robot and from it, over `hours` of simulated time."""
    outbox = OutboxReader(app)
    to_robot: list[datetime] = []
    from_robot: list[datetime] = []
    waiting = [(NOW, robot_mail(ROBOT, 4711, NOW))]
    try:
        while waiting and waiting[0][0] < NOW + timedelta(hours=hours):
            at, raw = waiting.pop(0)
            take_in(app, raw, "local", at)
            from_robot.append(at)
            for sent in outbox.send(at):
                if ROBOT in sent.recipients:
                    to_robot.append(at)
                    waiting.append((at + answer_after, robot_mail(ROBOT, 4711 + len(to_robot), at + answer_after)))
    finally:
        outbox.close()
    return to_robot, from_robot


def robot_mail(robot: str, order: int, at: datetime) -> bytes:
    return raw_mail(sender=f"Vendor Orders <{robot}>", to="help@example.com",
                    subject=f"Thank you for your message (ref {order})",
                    body=f"Thank you for contacting Vendor. Your reference is {order}.\n",
                    message_id=f"<ref{order}@vendor.example>", date=at)


def test_own_mail_and_mail_with_the_loop_header_are_dropped_with_an_event(tmp_path: Path) -> None:
    site = Site(tmp_path, f"sqlite:///{tmp_path / 'postdesk.db'}").maildir()
    app = configured(site, {'address = "help@example.com"\n': 'address = "help@example.com"\n'
                                                               'aliases = ["helpdesk@example.com"]\n'})
    outbox = OutboxReader(app)
    try:
        rng = random.Random(3)
        customer = Person("Olena Petrenko", "olena@customer.example", "gmail")
        first = new_mail(customer, to="help@example.com", subject="Printer", text="It prints nothing.", at=NOW,
                         rng=rng)
        take_in(app, first.raw, "local", NOW)
        ack = next(mail for mail in outbox.send(NOW) if customer.email in mail.recipients)
        assert ack.kind == "acknowledgement"
        at = NOW + timedelta(minutes=5)
        forwarded_back = set_headers(ack.raw, {"From": customer.address, "Message-ID": "<fwd1@customer.example>",
                                               "Date": format_datetime(at)})  # the customer's forwarding rule
        loops = {
            "our acknowledgement comes back": ack.raw,
            "a customer's server forwards it back (our loop header)": forwarded_back,
            "mail from our own address": raw_mail(sender="Example Support <help@example.com>",
                                                  message_id="<own1@example.com>", subject="Test"),
            "mail from an alias of the mailbox": raw_mail(sender="helpdesk@example.com",
                                                          message_id="<own2@example.com>", subject="Test"),
            "a reply that carries our loop header": reply(customer, ack, "Auto-forwarded.", at=at, rng=rng).raw
            .replace(b"\r\n\r\n", b"\r\nX-Postdesk-Loop: example.com\r\n\r\n", 1),
        }
        for what, raw in loops.items():
            result = take_in(app, raw, "local", at)
            assert (result.verdict.value, result.ticket_number) == ("ignored", None), what
            assert result.reason.startswith("mail loop"), what
        assert outbox.send(at) == [], "nothing answers a loop"
        with app.db.read() as session:
            dropped = session.execute(select(Event.ticket_id, Event.detail).where(Event.kind == "loop_dropped")).all()
            tickets = session.scalar(select(func.count()).select_from(Ticket))
        assert len(dropped) == len(loops) and all(ticket is None and detail["why"] for ticket, detail in dropped)
        assert tickets == 1
    finally:
        outbox.close()
        app.close()
