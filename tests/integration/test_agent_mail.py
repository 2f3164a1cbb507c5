"""Agents work by email (issue 7), through the real paths: the customer's mail is appended to
Dovecot, `run_once` takes it in and sends the acknowledgement and the agents' notifications
to the recording aiosmtpd; the agent's answer is built from the notification THEY received
(as Thunderbird or Gmail would write it), appended to Dovecot, and `run_once` runs again.
What is checked: the stored ticket, its events and messages, and what aiosmtpd received."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.app import App
from daemon.runtime import run_once
from daemon.store.models import AttachmentRow, Link, Quarantine, Ticket
from daemon.store.queries import attachment_content, show_ticket
from tests.agentclient import (
    Client,
    fresh,
    kind_of,
    message_id,
    only,
    parsed,
    reply,
    sent_to,
    subject,
    text,
    with_subject,
)
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.servers.dovecot import Dovecot, MailUser
from tests.servers.smtpd import ReceivedMail, SmtpServer

SUPPORT = "support@example.com"
ALICE = "Alice Baker <alice@example.com>"
OLENA = "olena@customer.example"
VENDOR = "support@acme.example"
TRUSTED_PASS = "mx.example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
RESOLUTION = "The fuser unit has been replaced; the printer on floor 2 prints again."
MAIN_COMMANDS = f"#assign bob\n#priority high\n#resolve\n\n{RESOLUTION}\n"


@dataclass
class Desk:
    """Postdesk on Dovecot and aiosmtpd, with a clock that moves a minute per pass."""

    app: App
    dovecot: Dovecot
    user: MailUser
    smtp: SmtpServer
    now: datetime = NOW
    customers: int = 0
    log: list[list[ReceivedMail]] = field(default_factory=list)

    def deliver(self, *raws: bytes) -> list[ReceivedMail]:
        """Append the mails to the support mailbox, run one pass; what aiosmtpd received in it."""
        before = len(self.smtp.messages)
        self.dovecot.append_many(self.user.name, list(raws))
        self.now += timedelta(minutes=1)
        moment = self.now
        intake, sent = run_once(self.app, lambda: moment)
        assert (intake.taken + intake.quarantined, intake.errors, sent.failed, sent.retried) == (len(raws), [], 0, 0)
        self.log.append(self.smtp.messages[before:])
        return self.log[-1]

    def customer_mail(self, subject_line: str = "Printer on floor 2 prints nothing", sender: str = OLENA,
                      body: str = "Every page comes out blank since this morning.\n") -> bytes:
        self.customers += 1
        return raw_mail(sender=f"Olena Petrenko <{sender}>", to=SUPPORT, subject=subject_line, body=body,
                        message_id=f"<c{self.customers}-{id(self)}@customer.example>", date=self.now)

    def open_ticket(self, subject_line: str = "Printer on floor 2 prints nothing") -> Opened:
        sent = self.deliver(self.customer_mail(subject_line))
        number = max(self.numbers())
        return Opened(number, only(sent_to(sent, "alice@example.com"), "New ticket"),
                      only(sent_to(sent, "bob@example.com"), "New ticket"), only(sent_to(sent, OLENA), "Received"))

    def ticket(self, number: int) -> dict[str, Any]:
        with self.app.db.read() as session:
            shown = show_ticket(session, number)
        assert shown is not None, f"no ticket #{number}"
        return shown

    def numbers(self) -> list[int]:
        with self.app.db.read() as session:
            return list(session.scalars(select(Ticket.number)))


@dataclass(frozen=True)
class Opened:
    number: int
    alice: ReceivedMail  # the new-ticket notification Alice received
    bob: ReceivedMail
    acknowledgement: ReceivedMail  # what the customer received


MakeDesk = Callable[..., Desk]


@pytest.fixture
def make_desk(tmp_path: Path, dovecot: Dovecot, imap_user: MailUser, smtp: SmtpServer) -> Iterator[MakeDesk]:
    """`make_desk(db_url, extra="")`: Postdesk reading `imap_user`'s INBOX and sending through
    `smtp`. An empty rules folder: no routing rule, so both agents hear of every new ticket."""
    apps: list[App] = []
    (tmp_path / "rules").mkdir()

    def make(db_url: str, extra: str = "") -> Desk:
        site = Site(tmp_path, db_url).imap(dovecot, imap_user, address=SUPPORT).smtp(smtp)
        site.extra = f'[paths]\nrules = "{tmp_path / "rules"}"\n\n' + extra
        app = site.app()
        apps.append(app)
        return Desk(app, dovecot, imap_user, smtp)

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def desk(make_desk: MakeDesk, sqlite_url: str) -> Desk:
    return make_desk(sqlite_url)


def events(ticket: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in ticket["events"] if e["kind"] == kind]


def last_in(ticket: dict[str, Any]) -> dict[str, Any]:
    """The last mail the ticket received (not one it sent)."""
    found: list[dict[str, Any]] = [m for m in ticket["messages"] if m["direction"] == "in"]
    return found[-1]


def html(mail: ReceivedMail) -> str:
    """The HTML part's text with entities decoded ("" when there is none)."""
    part = parsed(mail).get_body(("html",))
    return unescape(str(part.get_content())) if part is not None else ""


def assert_says_only(mail: ReceivedMail, words: str, *, never: tuple[str, ...]) -> None:
    """The agent's words are in the mail (text and HTML), none of `never`, and no quoted line."""
    for body in (text(mail), html(mail)):
        if not body:
            continue
        assert words in body, body
        for bad in never:
            assert bad not in body, f"{bad!r} reached the customer:\n{body}"
    lines = [line.strip() for line in text(mail).splitlines()]
    assert not [line for line in lines if line.startswith(">") or re.match(r"#[a-z]", line)], text(mail)


NOT_FOR_CUSTOMERS = ("#assign", "#priority", "#resolve", "#wait", "#note", "New ticket", "Commands:",
                     "wrote:", "Alice Baker | Support", "Every page comes out blank")


# ----------------------------------------------------------------------------------------
# The main scenario: #assign bob, #priority high, #resolve with the resolution text


@pytest.mark.parametrize("client", ["thunderbird", "gmail"])
def test_assign_priority_resolve_changes_the_ticket_and_the_customer_gets_only_the_resolution(
        make_desk: MakeDesk, db_url: str, client: Client) -> None:
    desk = make_desk(db_url)
    opened = desk.open_ticket()
    assert desk.ticket(opened.number)["status"] == "new"

    answer = reply(opened.alice, ALICE, MAIN_COMMANDS, client=client, signature="Alice Baker | Support")
    sent = desk.deliver(answer)

    ticket = desk.ticket(opened.number)
    assert (ticket["owner"], ticket["priority"], ticket["status"]) == ("bob@example.com", "high", "resolved")
    assert ticket["resolved_at"] and ticket["first_response_at"]
    commands = events(ticket, "commands")
    assert len(commands) == 1 and commands[0]["lines"] == "#assign bob\n#priority high\n#resolve"
    assert commands[0]["authenticated"].startswith("signed reference")
    assert [e["to"] for e in events(ticket, "status")] == ["resolved"]
    assert last_in(ticket)["visibility"] == "internal" and last_in(ticket)["from"] == "alice@example.com"

    to_customer = sent_to(sent, OLENA)
    assert len(to_customer) == 1, [subject(m) for m in to_customer]
    resolution = to_customer[0]
    assert kind_of(resolution) == "resolution" and f"[Support #{opened.number}]" in subject(resolution)
    assert list(resolution.rcpt_tos) == [OLENA]
    assert_says_only(resolution, RESOLUTION, never=NOT_FOR_CUSTOMERS)

    confirmation = only(sent_to(sent, "alice@example.com"))
    assert kind_of(confirmation) == "command_result"
    done = text(confirmation)
    assert "owner: - → bob@example.com" in done and "priority: medium → high" in done
    assert "status: new → resolved" in done
    assert kind_of(only(sent_to(sent, "bob@example.com"))) == "agent_assignment"
    assert len(sent) == 3


def test_a_reply_without_commands_is_relayed_to_the_customer_as_the_agent_wrote_it(desk: Desk) -> None:
    opened = desk.open_ticket()
    words = "Could you try printing a test page from the printer's own menu?"
    sent = desk.deliver(reply(opened.alice, ALICE, words, client="gmail", signature="Alice Baker | Support"))
    relayed = only(sent_to(sent, OLENA))
    assert_says_only(relayed, words, never=NOT_FOR_CUSTOMERS)
    assert not sent_to(sent, "alice@example.com"), "a plain reply gets no confirmation"
    ticket = desk.ticket(opened.number)
    assert ticket["status"] == "open" and ticket["first_response_at"]
    assert [m["to"] for m in ticket["messages"] if m["direction"] == "out" and OLENA in m["to"]][-1] == [OLENA]


def test_an_agents_attachment_reaches_the_customer_intact(desk: Desk) -> None:
    opened = desk.open_ticket()
    manual = bytes(range(256)) * 300  # binary, 76,800 bytes
    mail = email.message_from_bytes(reply(opened.alice, ALICE, "The driver manual is attached."),
                                    policy=email.policy.SMTP)
    mail.add_attachment(manual, maintype="application", subtype="pdf", filename="Посібник драйвера.pdf")
    sent = desk.deliver(mail.as_bytes())
    relayed = email.message_from_bytes(only(sent_to(sent, OLENA)).raw, policy=email.policy.default)
    attachments = list(relayed.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [
        ("Посібник драйвера.pdf", "application/pdf")]
    assert attachments[0].get_content() == manual
    ticket = desk.ticket(opened.number)
    out = [m for m in ticket["messages"] if m["direction"] == "out" and OLENA in m["to"]][-1]
    assert [a["filename"] for a in out["attachments"]] == ["Посібник драйвера.pdf"]
    with desk.app.db.read() as session:  # the agent's (in its raw mail) and the relayed one's (a blob)
        rows = session.scalars(select(AttachmentRow).where(AttachmentRow.filename == "Посібник драйвера.pdf")).all()
        assert sorted(row.blob_sha256 is None for row in rows) == [False, True]
        assert [attachment_content(session, row) for row in rows] == [manual, manual]


def test_note_sends_nothing_to_the_customer(desk: Desk) -> None:
    opened = desk.open_ticket()
    note = "Olena called: the toner was replaced yesterday. Suspect the fuser."
    sent = desk.deliver(reply(opened.alice, ALICE, f"#note\n\n{note}\n"))
    assert sent_to(sent, OLENA) == []
    assert kind_of(only(sent_to(sent, "alice@example.com"))) == "command_result"
    assert len(sent) == 1
    ticket = desk.ticket(opened.number)
    assert events(ticket, "note") and ticket["status"] == "open"
    stored = last_in(ticket)
    assert (stored["visibility"], stored["kind"]) == ("internal", "note") and note in stored["new_text"]


def test_wait_then_the_customers_reply_returns_the_ticket_to_open(desk: Desk) -> None:
    opened = desk.open_ticket()
    question = "Which model is the printer, and does the display show an error code?"
    sent = desk.deliver(reply(opened.alice, ALICE, f"#wait\n\n{question}\n"))
    assert desk.ticket(opened.number)["status"] == "waiting_customer"
    asked = only(sent_to(sent, OLENA))
    assert_says_only(asked, question, never=NOT_FOR_CUSTOMERS)
    assert kind_of(only(sent_to(sent, "alice@example.com"))) == "command_result"

    answer = reply(asked, "Olena Petrenko <olena@customer.example>", "It is an HP LaserJet M404, code 50.2.",
                   client="gmail")
    desk.deliver(answer)
    ticket = desk.ticket(opened.number)
    assert ticket["status"] == "open"
    assert events(ticket, "status")[-1] == {"from": "waiting_customer", "to": "open", "why": "the customer answered"}
    assert "HP LaserJet M404" in last_in(ticket)["new_text"]


def test_a_customer_writing_a_command_line_is_just_text(desk: Desk) -> None:
    opened = desk.open_ticket()
    desk.deliver(reply(opened.acknowledgement, "Olena Petrenko <olena@customer.example>",
                       "#close\n#assign olena@customer.example\n\nIt still prints nothing."))
    ticket = desk.ticket(opened.number)
    assert ticket["status"] == "new" and ticket["owner"] is None and not events(ticket, "commands")
    assert last_in(ticket)["new_text"].startswith("#close")


# ----------------------------------------------------------------------------------------
# Forged: the same reply, but not from Alice's own mail client answering her notification


def _forgeries(opened: Opened) -> dict[str, tuple[bytes, str]]:
    number = opened.number
    return {
        "fresh mail with the ticket token in the subject, no References": (
            fresh(ALICE, SUPPORT, f"Re: [Support #{number}] Printer on floor 2 prints nothing", MAIN_COMMANDS),
            "the mail carries no Authentication-Results header"),
        "References to the notification Bob received": (
            fresh(ALICE, SUPPORT, f"Re: [Support #{number}] Printer on floor 2 prints nothing", MAIN_COMMANDS,
                  references=message_id(opened.bob)), "the mail carries no Authentication-Results header"),
        "a reply to the notification Bob received": (
            reply(opened.bob, ALICE, MAIN_COMMANDS), "the mail carries no Authentication-Results header"),
        "a reply to the customer's acknowledgement": (
            reply(opened.acknowledgement, ALICE, MAIN_COMMANDS), "the mail carries no Authentication-Results header"),
        "a trusted-looking Authentication-Results, but no server is trusted": (
            fresh(ALICE, SUPPORT, f"Re: [Support #{number}] Printer", MAIN_COMMANDS,
                  headers={"Authentication-Results": TRUSTED_PASS}),
            "the topmost Authentication-Results header is from mx.example.com, which is not a trusted server"),
    }


FORGERIES = ("fresh mail with the ticket token in the subject, no References",
             "References to the notification Bob received", "a reply to the notification Bob received",
             "a reply to the customer's acknowledgement",
             "a trusted-looking Authentication-Results, but no server is trusted")


@pytest.mark.parametrize("case", FORGERIES)
def test_a_forged_reply_changes_nothing_reaches_no_customer_and_the_agent_is_told_why(desk: Desk,
                                                                                       case: str) -> None:
    opened = desk.open_ticket()
    before = desk.ticket(opened.number)
    forged, explanation = _forgeries(opened)[case]
    sent = desk.deliver(forged)

    after = desk.ticket(opened.number)
    for key in ("status", "owner", "priority", "resolved_at", "first_response_at", "tags", "cc"):
        assert after[key] == before[key], key
    assert not events(after, "commands") and not events(after, "assign")
    assert [e["why"] for e in events(after, "unauthenticated")] and \
        explanation in events(after, "unauthenticated")[0]["why"]
    stored = last_in(after)
    assert (stored["visibility"], stored["kind"]) == ("internal", "unauthenticated")

    assert sent_to(sent, OLENA) == [] and sent_to(sent, "bob@example.com") == []
    notice = only(sent, "Not done")
    assert list(notice.rcpt_tos) == ["alice@example.com"] and len(sent) == 1
    told = " ".join(text(notice).split())
    assert "does not answer a notification Postdesk sent to you about this ticket" in told
    assert explanation in told and "nothing was run or sent to the customer" in told


def test_a_reply_authenticated_by_a_trusted_authentication_results_runs(make_desk: MakeDesk,
                                                                       sqlite_url: str) -> None:
    desk = make_desk(sqlite_url, '[security]\ntrusted_authserv_ids = ["mx.example.com"]\n')
    opened = desk.open_ticket()
    mail = fresh(ALICE, SUPPORT, f"Re: [Support #{opened.number}] Printer on floor 2 prints nothing",
                 MAIN_COMMANDS, headers={"Authentication-Results": TRUSTED_PASS,
                                         "Received": "from laptop.example.com by mx.example.com; "
                                                     "Mon, 23 Nov 2026 09:04:00 +0000"})
    sent = desk.deliver(mail)
    ticket = desk.ticket(opened.number)
    assert (ticket["owner"], ticket["priority"], ticket["status"]) == ("bob@example.com", "high", "resolved")
    assert events(ticket, "commands")[0]["authenticated"] == "DKIM signature of example.com verified by mx.example.com"
    assert_says_only(only(sent_to(sent, OLENA), "Resolved"), RESOLUTION, never=NOT_FOR_CUSTOMERS)
    assert kind_of(only(sent_to(sent, "alice@example.com"))) == "command_result"


# ----------------------------------------------------------------------------------------
# Every command that changes the status or sends mail: success


def test_close_and_cancel(desk: Desk) -> None:
    for command, status in (("#close", "closed"), ("#cancel", "cancelled")):
        opened = desk.open_ticket(f"Printer {command}")
        sent = desk.deliver(reply(opened.alice, ALICE, f"{command}\n"))
        assert desk.ticket(opened.number)["status"] == status
        assert sent_to(sent, OLENA) == [], "nothing is sent to the customer"
        assert f"status: new → {status}" in text(only(sent_to(sent, "alice@example.com"), "Done"))


def test_reopen_a_resolved_ticket_by_answering_the_confirmation(desk: Desk) -> None:
    opened = desk.open_ticket()
    sent = desk.deliver(reply(opened.alice, ALICE, f"#resolve\n\n{RESOLUTION}\n"))
    assert desk.ticket(opened.number)["status"] == "resolved"
    confirmation = only(sent_to(sent, "alice@example.com"), "Done")
    sent = desk.deliver(reply(confirmation, ALICE, "#reopen\n"))
    ticket = desk.ticket(opened.number)
    assert ticket["status"] == "open" and ticket["resolved_at"] is None
    assert "status: resolved → open" in text(only(sent_to(sent, "alice@example.com"), "Done"))
    assert sent_to(sent, OLENA) == [], "a mail with only commands sends nothing to the customer"


def test_third_party_mails_the_vendor_and_the_vendors_answer_brings_the_ticket_back(desk: Desk) -> None:
    opened = desk.open_ticket()
    message = "Please send a replacement fuser unit for the HP LaserJet M404, serial PHBQ123456."
    sent = desk.deliver(reply(opened.alice, ALICE, f"#third-party Acme Support <{VENDOR}>\n\n{message}\n"))
    ticket = desk.ticket(opened.number)
    assert ticket["status"] == "waiting_third_party"
    assert sent_to(sent, OLENA) == []
    to_vendor = only(sent_to(sent, VENDOR))
    assert message in text(to_vendor) and f"[Support #{opened.number}]" in subject(to_vendor)
    assert "#third-party" not in text(to_vendor)
    assert "the message was sent to support@acme.example" in text(only(sent_to(sent, "alice@example.com"), "Done"))

    sent = desk.deliver(reply(to_vendor, f"Acme Support <{VENDOR}>", "The part ships tomorrow by courier."))
    ticket = desk.ticket(opened.number)
    assert ticket["status"] == "open"
    assert last_in(ticket)["visibility"] == "internal" and events(ticket, "third_party_reply")
    assert sent_to(sent, OLENA) == [] and sent_to(sent, VENDOR) == []


def test_merge_moves_the_duplicate_into_the_older_ticket(desk: Desk) -> None:
    first = desk.open_ticket("Printer on floor 2 prints nothing")
    second = desk.open_ticket("Printer floor 2 again")
    sent = desk.deliver(reply(second.alice, ALICE, f"#merge {first.number}\n"))
    duplicate, kept = desk.ticket(second.number), desk.ticket(first.number)
    assert (duplicate["status"], duplicate["merged_into"]) == ("closed", first.number)
    assert "Printer floor 2 again" in [m["subject"] for m in kept["messages"]]
    assert events(kept, "merged") and sent_to(sent, OLENA) == []
    assert f"merged into #{first.number}" in text(only(sent_to(sent, "alice@example.com"), "Done"))


def test_new_opens_a_ticket_on_the_customers_behalf(make_desk: MakeDesk, sqlite_url: str) -> None:
    desk = make_desk(sqlite_url, '[security]\ntrusted_authserv_ids = ["mx.example.com"]\n')
    body = ("#new Kateryna Bondar <kateryna@customer.example>\n#priority high\n\n"
            "Kateryna called: the VPN drops every five minutes since the update.\n")
    sent = desk.deliver(fresh(ALICE, SUPPORT, "VPN drops every five minutes", body,
                              headers={"Authentication-Results": TRUSTED_PASS}))
    (number,) = desk.numbers()
    ticket = desk.ticket(number)
    assert (ticket["requester"], ticket["priority"], ticket["subject"]) == (
        "kateryna@customer.example", "high", "VPN drops every five minutes")
    assert ticket["status"] == "open" and events(ticket, "created")[0]["requester"] == "kateryna@customer.example"
    first = ticket["messages"][0]
    assert (first["direction"], first["visibility"], first["from"]) == ("in", "internal", "alice@example.com")
    acknowledgement = only(sent_to(sent, "kateryna@customer.example"))
    assert kind_of(acknowledgement) == "acknowledgement" and "#new" not in text(acknowledgement)
    assert "ticket opened for Kateryna Bondar <kateryna@customer.example>" in text(
        only(sent_to(sent, "alice@example.com"), "Done"))
    assert with_subject(sent_to(sent, "bob@example.com"), "New ticket"), "the other agents hear of it"


# ----------------------------------------------------------------------------------------
# ... and their error messages: nothing changes, nobody but the agent hears of it


ERRORS = {
    "resolve": ("#resolve\n", "#resolve needs the resolution", "#resolve [CODE]"),
    "wait": ("#wait\n", "#wait needs the question for the customer", "#wait"),
    "third-party": (f"#third-party {VENDOR}\n", f"write the message for {VENDOR} below the command lines",
                    "#third-party NAME|ADDRESS"),
    "close": ("#close now\n\nDone here.", "#close takes no arguments (got 'now')", "#close"),
    "reopen": ("#reopen\n", "is new; only a resolved or closed ticket can be reopened", "#reopen"),
    "cancel": ("#cancel this one\n", "#cancel takes no arguments", "#cancel"),
    "merge": ("#merge 99\n", "there is no ticket #99", "#merge N"),
    "new": ("#new kateryna@customer.example\n", "#new opens a ticket: send it in a new mail to the support "
            "address, not in a reply to ticket", "#new CUSTOMER-ADDRESS"),
    "all or nothing": (f"#assign bob\n#priority hgih\n#resolve\n\n{RESOLUTION}\n",
                       "'hgih' is not a valid priority; use one of: urgent, high, medium, low, auto",
                       "#priority urgent|high|medium|low|auto"),
}


@pytest.mark.parametrize("case", ERRORS)
def test_a_bad_command_changes_nothing_and_the_agent_gets_the_error_and_the_valid_form(desk: Desk,
                                                                                      case: str) -> None:
    body, error, syntax = ERRORS[case]
    opened = desk.open_ticket()
    before = desk.ticket(opened.number)
    sent = desk.deliver(reply(opened.alice, ALICE, body))

    after = desk.ticket(opened.number)
    for key in ("status", "owner", "priority", "resolved_at", "merged_into", "requester", "tags"):
        assert after[key] == before[key], key
    assert [e["error"] for e in events(after, "command_error")] and error in events(after, "command_error")[0]["error"]
    notice = only(sent, "Not done")
    assert list(notice.rcpt_tos) == ["alice@example.com"] and len(sent) == 1, [subject(m) for m in sent]
    said = text(notice)
    assert error in " ".join(said.split())
    assert "The line was:" in said and body.splitlines()[1 if case == "all or nothing" else 0] in said
    assert "Valid commands:" in said and syntax in said


BAD_NEW = "#new kateryna at customer\n\nShe called: the VPN drops every five minutes."


def test_new_with_a_bad_address_is_quarantined_with_the_reason(make_desk: MakeDesk, sqlite_url: str) -> None:
    desk = make_desk(sqlite_url, '[security]\ntrusted_authserv_ids = ["mx.example.com"]\n')
    sent = desk.deliver(fresh(ALICE, SUPPORT, "Phone call", BAD_NEW, headers={"Authentication-Results": TRUSTED_PASS}))
    assert desk.numbers() == [] and sent_to(sent, "kateryna@customer.example") == []
    with desk.app.db.read() as session:
        reasons = list(session.scalars(select(Quarantine.reason)))
    assert len(reasons) == 1 and "#new needs the customer's address" in reasons[0]
    assert len(desk.dovecot.folder_uids(desk.user.name, "Postdesk/Quarantine")) == 1


def test_new_with_a_bad_address_tells_the_agent(make_desk: MakeDesk, sqlite_url: str) -> None:
    desk = make_desk(sqlite_url, '[security]\ntrusted_authserv_ids = ["mx.example.com"]\n')
    sent = desk.deliver(fresh(ALICE, SUPPORT, "Phone call", BAD_NEW, headers={"Authentication-Results": TRUSTED_PASS}))
    notice = only(sent_to(sent, "alice@example.com"))
    assert "#new needs the customer's address" in " ".join(text(notice).split())
    assert "#new kateryna at customer" in text(notice)


def test_new_without_authentication_opens_nothing(desk: Desk) -> None:
    sent = desk.deliver(fresh(ALICE, SUPPORT, "Phone call", "#new kateryna@customer.example\n\nShe called."))
    assert desk.numbers() == [] and sent == []
    with desk.app.db.read() as session:
        reasons = list(session.scalars(select(Quarantine.reason)))
    assert len(reasons) == 1 and "is not authenticated" in reasons[0]


# ----------------------------------------------------------------------------------------
# The field commands together, in one mail


def test_field_commands_in_one_mail(desk: Desk) -> None:
    other = desk.open_ticket("Scanner on floor 2")
    opened = desk.open_ticket()
    body = ("#type service_request\n#category printers\n#tag hardware floor-2 loaner\n#untag loaner\n"
            "#cc petro@customer.example, ivan@customer.example\n#uncc ivan@customer.example\n"
            "#impact high\n#urgency high\n#link CR-1234\n#link #" + str(other.number) + "\n"
            "#escalate the whole floor cannot print\n")
    sent = desk.deliver(reply(opened.alice, ALICE, body))

    ticket = desk.ticket(opened.number)
    assert (ticket["type"], ticket["category"], ticket["impact"], ticket["urgency"], ticket["priority"]) == (
        "service_request", "printers", "high", "high", "urgent")
    assert sorted(ticket["tags"]) == ["escalated", "floor-2", "hardware"]
    assert ticket["cc"] == ["petro@customer.example"]
    with desk.app.db.read() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == opened.number))
        rows = session.scalars(select(Link).where(Link.ticket_id == ticket_id))
        links = sorted((link.kind, link.ref) for link in rows)
    assert links == [("change", "CR-1234"), ("ticket", str(other.number))]
    kinds = [e["kind"] for e in ticket["events"]]
    for kind in ("type", "category", "tag", "untag", "cc", "uncc", "impact", "urgency", "link", "escalated"):
        assert kind in kinds, kind

    assert sent_to(sent, OLENA) == [] and sent_to(sent, "petro@customer.example") == []
    escalation = only(sent_to(sent, "bob@example.com"))
    assert "the whole floor cannot print" in text(escalation)
    done = text(only(sent_to(sent, "alice@example.com"), "Done"))
    for words in ("type: incident → service_request", "category: - → printers", "tags: + hardware, floor-2, loaner",
                  "tags: - loaner", "cc: + petro@customer.example, ivan@customer.example",
                  "cc: - ivan@customer.example", "impact: medium → high", "priority: high → urgent",
                  "link: + change CR-1234", f"link: + ticket {other.number}", "escalated (the whole floor"):
        assert words in done, (words, done)
