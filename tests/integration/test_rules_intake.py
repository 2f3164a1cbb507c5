"""The rules engine through the real intake (issue 8): every condition and every action, each
with a small rule file in a tmp rules folder, taken in with `take_in` (and, for a
representative subset, the `postdesk ingest` command); checked on the stored ticket, its
events (which rules fired) and the outbox (what would be sent). Monitoring alerts with the
SHIPPED rules and the real-shaped alert mails of tests/mail/."""

from __future__ import annotations

import email.policy
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from daemon.app import App
from daemon.intake import IntakeResult, take_in
from daemon.store.models import Event, IntakeRecord, Outbox, Ticket
from daemon.store.queries import show_ticket
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "mail"
SHIPPED_RULES = ROOT / "rules"
AGENTS = ('[[agents]]\nemail = "alice@example.com"\nname = "Alice"\ngroups = ["l1"]\n\n'
          '[[agents]]\nemail = "carol@example.com"\nname = "Carol"\ngroups = ["l1"]\n\n'
          '[[agents]]\nemail = "bob@example.com"\nname = "Bob"\ngroups = ["l2"]\n')
CONTACTS = ('[[contact]]\nemail = "olena@customer.example"\nname = "Olena Petrenko"\n'
            'organisation = "Customer Ltd"\nlanguage = "uk"\ncontract = "expired"\n\n'
            '[[contact]]\nemail = "petro@customer.example"\nname = "Petro"\norganisation = "Other Corp"\n'
            'contract = "active"\n')
_ids = itertools.count(1)


def mail(**kwargs: Any) -> bytes:
    """raw_mail with a Message-ID of its own (the same one twice would be a duplicate)."""
    kwargs.setdefault("message_id", f"<r{next(_ids)}@customer.example>")
    return raw_mail(**kwargs)


def with_attachment(filename: str, content_type: str, **kwargs: Any) -> bytes:
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = kwargs.get("sender", "Olena Petrenko <olena@customer.example>")
    message["To"] = "help@example.com"
    message["Subject"] = kwargs.get("subject", "See the attached file")
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = f"<r{next(_ids)}@customer.example>"
    message.set_content("Please have a look at the attachment.\n")
    maintype, subtype = content_type.split("/")
    message.add_attachment(b"\x00\x01binary content\x02", maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


@dataclass
class Desk:
    """Postdesk over two Maildir mailboxes ("local" help@, "sales" sales@) and the outbox
    Maildir (nothing is sent: the outbox table shows what would be)."""

    app: App
    root: Path
    seen_outbox: int = 0
    results: list[IntakeResult] = field(default_factory=list)

    def take(self, raw: bytes, mailbox: str = "local", now: datetime = NOW) -> IntakeResult:
        result = take_in(self.app, raw, mailbox, now)
        self.results.append(result)
        return result

    def ticket(self, number: int | None) -> dict[str, Any]:
        assert number is not None, self.results[-1]
        with self.app.db.read() as session:
            shown = show_ticket(session, number)
        assert shown is not None
        return shown

    def new_outbox(self) -> list[tuple[str, list[str], str]]:
        """(kind, recipients, the text of the mail) of the outbox rows since the last call."""
        with self.app.db.read() as session:
            rows = session.scalars(select(Outbox).where(Outbox.id > self.seen_outbox).order_by(Outbox.id)).all()
            found = [(r.kind, list(r.recipients), _plain(r.raw)) for r in rows]
            self.seen_outbox = max([self.seen_outbox, *(r.id for r in rows)])
        return found

    def rule_events(self) -> list[dict[str, Any]]:
        with self.app.db.read() as session:
            return [e.detail for e in session.scalars(select(Event).where(Event.kind == "rule").order_by(Event.id))]

    def column(self, number: int | None, name: str) -> Any:
        with self.app.db.read() as session:
            return getattr(session.scalar(select(Ticket).where(Ticket.number == number)), name)


def _plain(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


MakeDesk = Callable[..., Desk]


@pytest.fixture
def make_desk(tmp_path: Path, sqlite_url: str) -> Iterator[MakeDesk]:
    """`make_desk(rules_text, contacts=False, extra="", rules_dir=None)`: the text is written to
    rules/probe.toml (or the folder `rules_dir` is used as it is)."""
    apps: list[App] = []

    def make(rules: str = "", *, contacts: bool = False, extra: str = "", rules_dir: Path | None = None) -> Desk:
        folder = rules_dir or tmp_path / "rules"
        if rules_dir is None:
            folder.mkdir(exist_ok=True)
            (folder / "probe.toml").write_text(rules, encoding="utf-8")
        paths = f'[paths]\nrules = "{folder}"\n'
        if contacts:
            (tmp_path / "contacts.toml").write_text(CONTACTS, encoding="utf-8")
            paths += f'contacts = "{tmp_path / "contacts.toml"}"\n'
        site = Site(tmp_path, sqlite_url, agents=AGENTS).maildir().maildir(name="sales", address="sales@example.com")
        site.extra = paths + "\n" + extra
        app = site.app()
        apps.append(app)
        return Desk(app, tmp_path)

    yield make
    for app in apps:
        app.close()


def fired(ticket: dict[str, Any]) -> list[str]:
    return [e["detail"]["rule"] for e in ticket["events"] if e["kind"] == "rule"]


def did(ticket: dict[str, Any], rule: str) -> str:
    return "; ".join(e["detail"]["did"] for e in ticket["events"] if e["kind"] == "rule" and
                     e["detail"]["rule"] == rule)


def inbound(ticket: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in ticket["messages"] if m["direction"] == "in"]


def kinds(outbox: list[tuple[str, list[str], str]]) -> list[tuple[str, list[str]]]:
    return [(kind, recipients) for kind, recipients, _ in outbox]


# ----------------------------------------------------------------------------------------
# Every condition: a rule "probe" that tags; a mail that makes it fire and one that does not


@dataclass(frozen=True)
class Step:
    raw: bytes
    fires: bool
    mailbox: str = "local"
    now: datetime = NOW


def follow_up(number: int, body: str = "Any news?\n", **kwargs: Any) -> bytes:
    return mail(subject=f"Re: [Support #{number}] Printer", body=body, **kwargs)


SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
EVENING_UTC = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 19:00 in Kyiv
QUESTION_SETTER = ('[[rule]]\nname = "setter"\nwhen = { is_new = true, subject = { words = "question" } }\n'
                   'then.type = "question"\n\n')

CONDITIONS: dict[str, tuple[str, list[Step], str]] = {
    # name: (the [rule.when] entries, the steps, rules put before the probe)
    "mailbox": ('mailbox = "sales"', [Step(mail(), True, "sales"), Step(mail(), False, "local")], ""),
    "sender equals": ('sender = { equals = "olena@customer.example" }',
                      [Step(mail(), True), Step(mail(sender="petro@customer.example"), False)], ""),
    "sender_name contains": ('sender_name = { contains = "petrenko" }',
                             [Step(mail(), True), Step(mail(sender="Petro Ivanenko <petro@customer.example>"), False)],
                             ""),
    "sender_domain in (a list)": ('sender_domain = ["vip.example", "big.example"]',
                                  [Step(mail(sender="ceo@big.example"), True), Step(mail(), False)], ""),
    "sender_domain in (operator)": ('sender_domain = { in = ["vip.example"] }',
                                    [Step(mail(sender="ceo@VIP.example"), True), Step(mail(), False)], ""),
    "reply_to exists": ('reply_to = { exists = true }',
                        [Step(mail(headers={"Reply-To": "desk@customer.example"}), True), Step(mail(), False)], ""),
    "to starts_with": ('to = { starts_with = "hardware@" }',
                       [Step(mail(to="hardware@example.com"), True), Step(mail(), False)], ""),
    "cc ends_with": ('cc = { ends_with = ".gov.ua" }',
                     [Step(mail(cc="head@kyiv.gov.ua"), True), Step(mail(cc="head@customer.example"), False)], ""),
    "recipients glob": ('recipients = { glob = "*@partner.example" }',
                        [Step(mail(cc="ops@partner.example"), True), Step(mail(cc="ops@partner.example.org"), False)],
                        ""),
    "recipient_domain": ('recipient_domain = "partner.example"',
                         [Step(mail(to="help@example.com, desk@partner.example"), True), Step(mail(), False)], ""),
    "subject words": ('subject = { words = ["outage", "is down"] }',
                      [Step(mail(subject="The mail server is down."), True),
                       Step(mail(subject="The download is slow"), False)], ""),
    "subject regex": ("subject = { regex = '^INV-\\d{4}\\b' }",
                      [Step(mail(subject="INV-2026 is overdue"), True), Step(mail(subject="Re INV-2026"), False)], ""),
    "subject contains, case_sensitive": ('subject = { contains = "VIP", case_sensitive = true }',
                                         [Step(mail(subject="VIP order stuck"), True),
                                          Step(mail(subject="vip order stuck"), False)], ""),
    "new_text contains (not the quoted history)": (
        'new_text = { contains = "недоступн" }',
        [Step(mail(body="Сервер недоступний з ранку.\n"), True),
         Step(mail(body="Дякую, вже працює.\n\nOn Mon, 23 Nov 2026 at 09:00, Support <help@example.com> wrote:\n"
                        "> Сервер недоступний?\n"), False)], ""),
    "body regex (the quoted history too)": (
        "body = { regex = 'Original problem ID: \\d+' }",
        [Step(mail(body="Still broken.\n\nOn Mon, 23 Nov 2026 at 09:00, Zabbix <z@example.com> wrote:\n"
                        "> Original problem ID: 1849302\n"), True),
         Step(mail(body="Still broken.\n"), False)], ""),
    "language": ('language = "uk"', [Step(mail(headers={"Content-Language": "uk"}), True), Step(mail(), False)], ""),
    "attachment_name glob": ('attachment_name = { glob = ["*.exe", "*.js"] }',
                             [Step(with_attachment("setup.EXE", "application/octet-stream"), True),
                              Step(with_attachment("report.pdf", "application/pdf"), False)], ""),
    "attachment_type starts_with": ('attachment_type = { starts_with = "image/" }',
                                    [Step(with_attachment("photo.jpg", "image/jpeg"), True),
                                     Step(with_attachment("report.pdf", "application/pdf"), False)], ""),
    "is_new true": ("is_new = true", [Step(mail(), True), Step(follow_up(1), False)], ""),
    "is_new false (a follow-up)": ("is_new = false", [Step(mail(), False), Step(follow_up(1), True)], ""),
    "weekday": ('weekday = ["sat", "sun"]', [Step(mail(), True, now=SATURDAY), Step(mail(), False)], ""),
    "time between, with a timezone": ('time = { between = ["18:00", "08:00"], timezone = "Europe/Kyiv" }',
                                      [Step(mail(), True, now=EVENING_UTC), Step(mail(), False)], ""),
    "date between": ('date = { between = ["2026-12-24", "2027-01-02"] }',
                     [Step(mail(), True, now=datetime(2026, 12, 31, 12, tzinfo=UTC)), Step(mail(), False)], ""),
    "header.NAME starts_with": ('"header.x-priority" = { starts_with = ["1", "2"] }',
                                [Step(mail(headers={"X-Priority": "1 (Highest)"}), True),
                                 Step(mail(headers={"X-Priority": "3 (Normal)"}), False)], ""),
    "header nested form": ('header = { x-mailer = { contains = "outlook" } }',
                           [Step(mail(headers={"X-Mailer": "Microsoft Outlook 16.0"}), True),
                            Step(mail(headers={"X-Mailer": "Thunderbird"}), False)], ""),
    "header exists = false": ('"header.list-id" = { exists = false }',
                              [Step(mail(), True), Step(mail(headers={"List-Id": "<staff.lists.example>"}), False)],
                              ""),
    "contact.NAME (contacts file)": ('"contact.contract" = "expired"',
                                     [Step(mail(), True), Step(mail(sender="petro@customer.example"), False)], ""),
    "contact.organisation": ('"contact.organisation" = { contains = "customer ltd" }',
                             [Step(mail(), True), Step(mail(sender="petro@customer.example"), False),
                              Step(mail(sender="stranger@elsewhere.example"), False)], ""),
    "ticket.NAME on a follow-up": ('"ticket.type" = "question"',
                                   [Step(mail(subject="A question about invoices"), False),
                                    Step(mail(subject="Printer broken"), False),
                                    Step(follow_up(1), True), Step(follow_up(2), False)], QUESTION_SETTER),
    "not": ('not = { sender_domain = "customer.example" }',
            [Step(mail(sender="ceo@big.example"), True), Step(mail(), False)], ""),
    "any / all": ('any = [\n  { subject = { words = "urgent" } },\n'
                  '  { all = [ { sender_domain = "vip.example" }, { "header.importance" = "high" } ] },\n]',
                  [Step(mail(subject="Urgent: printer"), True),
                   Step(mail(sender="ceo@vip.example", headers={"Importance": "High"}), True),
                   Step(mail(sender="ceo@vip.example"), False)], ""),
    "several entries: all must hold": ('sender_domain = "vip.example"\nsubject = { starts_with = "Order" }',
                                       [Step(mail(sender="a@vip.example", subject="Order 42 late"), True),
                                        Step(mail(sender="a@vip.example", subject="Re Order 42"), False),
                                        Step(mail(subject="Order 43 late"), False)], ""),
}


@pytest.mark.parametrize("case", CONDITIONS)
def test_condition(make_desk: MakeDesk, case: str) -> None:
    when, steps, before = CONDITIONS[case]
    desk = make_desk(f'{before}[[rule]]\nname = "probe"\n[rule.when]\n{when}\n[rule.then]\ntags = ["probe-hit"]\n',
                     contacts=case.startswith("contact"))
    for index, step in enumerate(steps):
        probes = len([e for e in desk.rule_events() if e["rule"] == "probe"])
        result = desk.take(step.raw, step.mailbox, step.now)
        assert result.verdict.value == "stored", result
        fired_now = [e for e in desk.rule_events() if e["rule"] == "probe"][probes:]
        ticket = desk.ticket(result.ticket_number)
        assert bool(fired_now) is step.fires, (index, result, ticket["events"])
        if step.fires:
            assert "probe-hit" in ticket["tags"], (index, ticket["tags"])
        elif result.reason == "new ticket":
            assert "probe-hit" not in ticket["tags"], (index, ticket["tags"])
        if step.fires:
            assert fired_now[0]["where"].endswith(f"probe.toml:{before.count(chr(10)) + 1}")
            assert fired_now[0]["did"] == "added tag probe-hit"


# ----------------------------------------------------------------------------------------
# Every action


def rule(then: str, when: str = "is_new = true", name: str = "probe", stop: bool = False) -> str:
    return (f'[[rule]]\nname = "{name}"\n' + ("stop = true\n" if stop else "")
            + f"[rule.when]\n{when}\n[rule.then]\n{then}\n\n")


FIELD_ACTIONS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (then, the ticket fields after, what the rule event says it did)
    "type": ('type = "feature_request"', {"type": "feature_request", "priority": "low"}, "set type feature_request"),
    "impact": ('impact = "high"', {"impact": "high", "urgency": "medium", "priority": "high"}, "set impact high"),
    "urgency": ('urgency = "low"', {"impact": "medium", "urgency": "low", "priority": "low"}, "set urgency low"),
    "impact x urgency": ('impact = "high"\nurgency = "high"', {"priority": "urgent"},
                         "set impact high; set urgency high"),
    "priority": ('type = "question"\npriority = "urgent"', {"type": "question", "priority": "urgent"},
                 "set type question; set priority urgent"),
    "category": ('category = "printing"', {"category": "printing"}, "set category printing"),
    "group": ('group = "l2"', {"group": "l2", "owner": None}, "set group l2"),
    "owner": ('owner = "Carol@Example.com"', {"owner": "carol@example.com"}, "set owner carol@example.com"),
    "sla_policy": ('sla_policy = "vip"', {"sla": {"policy": "vip", "first_response_due": None,
                                                  "resolution_due": None, "breached": []}}, "set sla_policy vip"),
    "tags": ('tags = ["vip", "billing"]', {"tags": ["billing", "vip"]}, "added tags vip, billing"),
}


@pytest.mark.parametrize("case", FIELD_ACTIONS)
def test_field_action(make_desk: MakeDesk, case: str) -> None:
    then, expected, words = FIELD_ACTIONS[case]
    desk = make_desk(rule(then))
    ticket = desk.ticket(desk.take(mail()).ticket_number)
    assert {key: ticket[key] for key in expected} == expected
    assert fired(ticket) == ["probe"] and did(ticket, "probe") == words
    outbox = kinds(desk.new_outbox())
    assert ("acknowledgement", ["olena@customer.example"]) in outbox
    notified = sorted(r[0] for k, r in outbox if k == "agent_new_ticket")
    wanted = {"group": ["bob@example.com"], "owner": ["carol@example.com"]}.get(
        case, ["alice@example.com", "bob@example.com", "carol@example.com"])
    assert notified == wanted, "the owner, else the group, else every agent hears of the new ticket"


def test_priority_events_say_why(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('type = "question"'))
    ticket = desk.ticket(desk.take(mail()).ticket_number)
    (priority,) = [e["detail"] for e in ticket["events"] if e["kind"] == "priority"]
    assert priority == {"from": "medium", "to": "low", "locked": "no",
                        "why": "rules: question tickets default to low priority"}


def test_round_robin_alternates_the_two_agents_of_the_group(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('assign = { round_robin = "l1" }'))
    owners = []
    for i in range(3):
        ticket = desk.ticket(desk.take(mail(subject=f"Problem {i}")).ticket_number)
        owners.append(ticket["owner"])
        assert ticket["group"] == "l1" and did(ticket, "probe") == "assigned round robin in group l1"
        (assign,) = [e["detail"] for e in ticket["events"] if e["kind"] == "assign"]
        assert assign["why"] == "rules: round robin in group l1" and assign["owner_to"] == ticket["owner"]
        assert [r for k, r in kinds(desk.new_outbox()) if k == "agent_new_ticket"] == [[ticket["owner"]]]
    assert owners == ["alice@example.com", "carol@example.com", "alice@example.com"]


def test_assign_to_the_owner_of_a_module(make_desk: MakeDesk) -> None:
    desk = make_desk('[modules]\nscheduling = "bob@example.com"\n\n'
                     + rule('assign = { module = "scheduling" }\ncategory = "scheduling"',
                            'subject = { words = ["schedule", "playlist"] }'))
    ticket = desk.ticket(desk.take(mail(subject="The playlist for Friday is empty")).ticket_number)
    assert (ticket["owner"], ticket["category"]) == ("bob@example.com", "scheduling")
    assert did(ticket, "probe") == "assigned to the owner of module scheduling; set category scheduling"
    assert [e["detail"]["why"] for e in ticket["events"] if e["kind"] == "assign"] == [
        "rules: owner of module scheduling"]
    other = desk.ticket(desk.take(mail(subject="Printer broken")).ticket_number)
    assert other["owner"] is None and fired(other) == []


def test_acknowledgement_suppressed(make_desk: MakeDesk) -> None:
    desk = make_desk(rule("acknowledgement = false", 'sender_domain = "customer.example"'))
    ticket = desk.ticket(desk.take(mail()).ticket_number)
    outbox = kinds(desk.new_outbox())
    assert [k for k, _ in outbox if k != "agent_new_ticket"] == [], outbox
    assert did(ticket, "probe") == "suppressed the acknowledgement"
    assert {"kind": "acknowledgement", "why": "the rules suppress it"} in [
        e["detail"] for e in ticket["events"] if e["kind"] == "auto_answer_suppressed"]


def test_acknowledgement_replaced_by_another_template(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('acknowledgement = "info_request"', "new_text = { exists = false }"))
    ticket = desk.ticket(desk.take(mail(subject="Printer", body="\n")).ticket_number)
    outbox = desk.new_outbox()
    assert [(k, r) for k, r, _ in outbox if r == ["olena@customer.example"]] == [
        ("info_request", ["olena@customer.example"])]
    assert did(ticket, "probe") == "acknowledgement with template info_request"
    assert "we need some more information from you" in next(t for k, _, t in outbox if k == "info_request")
    desk.take(mail(body="It prints nothing.\n"))
    assert ("acknowledgement", ["olena@customer.example"]) in kinds(desk.new_outbox())


def test_answer_and_close(make_desk: MakeDesk) -> None:
    reason = "your support contract has expired; please contact your account manager"
    desk = make_desk(rule(f'answer_and_close = {{ template = "refusal", reason = "{reason}" }}\ntags = ["refused"]'
                          '\nstop = true', 'is_new = true\n"contact.contract" = "expired"')
                     + rule('assign = { round_robin = "l1" }', name="first-line"), contacts=True)
    number = desk.take(mail()).ticket_number
    ticket = desk.ticket(number)
    assert (ticket["status"], ticket["owner"], ticket["tags"]) == ("closed", None, ["refused"])
    assert desk.column(number, "resolution_code") == "refused"
    assert fired(ticket) == ["probe"], "stop: the routing rule is not evaluated"
    assert did(ticket, "probe") == f"answered with template refusal and closed: {reason}; added tag refused; " \
                                   "stopped the evaluation"
    outbox = desk.new_outbox()
    refusal = [t for k, r, t in outbox if k == "refusal" and r == ["olena@customer.example"]]
    assert len(refusal) == 1 and reason in " ".join(refusal[0].split())
    assert "acknowledgement" not in [k for k, _, _ in outbox]
    other = desk.ticket(desk.take(mail(sender="petro@customer.example")).ticket_number)
    assert other["status"] == "new" and other["owner"] == "alice@example.com"


def test_third_party(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('third_party = "support@vendor.example"', 'recipients = { starts_with = "hardware@" }'))
    number = desk.take(mail(to="hardware@example.com", body="The fuser of printer P-2 is broken.\n")).ticket_number
    ticket = desk.ticket(number)
    assert ticket["status"] == "waiting_third_party" and desk.column(number, "third_party") == "support@vendor.example"
    assert did(ticket, "probe") == "sent to third party support@vendor.example"
    outbox = desk.new_outbox()
    vendor = [t for k, r, t in outbox if k == "third_party" and r == ["support@vendor.example"]]
    assert len(vendor) == 1 and "The fuser of printer P-2 is broken." in vendor[0]
    assert ("acknowledgement", ["olena@customer.example"]) in kinds(outbox)
    # the vendor's answer comes back to the ticket, kept internal, and it is open again
    reply = mail(sender="Vendor <support@vendor.example>", subject=f"Re: [Support #{number}] Printer",
                 body="A new fuser ships today.\n")
    assert desk.take(reply).ticket_number == number
    ticket = desk.ticket(number)
    assert ticket["status"] == "open" and ticket["messages"][-1]["visibility"] == "internal"


def test_hold(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('hold = "an attachment is a program"\ntags = ["suspicious"]',
                          'attachment_name = { glob = "*.exe" }'))
    ticket = desk.ticket(desk.take(with_attachment("invoice.exe", "application/octet-stream")).ticket_number)
    assert sorted(ticket["tags"]) == ["held", "suspicious"]
    assert ticket["messages"][0]["kind"] == "held"
    assert {"why": "an attachment is a program"} in [e["detail"] for e in ticket["events"] if e["kind"] == "held"]
    assert "acknowledgement" not in [k for k, _ in kinds(desk.new_outbox())]


def test_drop_is_recorded_never_silent(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('drop = "marked as spam by the mail server"', '"header.x-spam-flag" = "YES"', stop=True)
                     + rule('tags = ["late"]', name="later"))
    result = desk.take(mail(headers={"X-Spam-Flag": "YES"}))
    assert (result.verdict.value, result.ticket_number) == ("ignored", None)
    assert result.reason == "dropped by the rules: marked as spam by the mail server"
    with desk.app.db.read() as session:
        assert session.scalars(select(Ticket)).all() == []
        record = session.scalar(select(IntakeRecord))
        events = [(e.ticket_id, e.detail) for e in session.scalars(select(Event))]
    assert record is not None and record.verdict == "ignored" and "marked as spam" in record.reason
    assert [(ticket_id, detail["rule"], detail["did"]) for ticket_id, detail in events] == [
        (None, "probe", "dropped: marked as spam by the mail server; stopped the evaluation")]
    assert desk.new_outbox() == []


def test_stop_ends_the_evaluation_and_a_later_rule_overrides_an_earlier_one(make_desk: MakeDesk) -> None:
    desk = make_desk(rule('type = "question"\ntags = ["first"]', name="first")
                     + rule('type = "service_request"\ntags = ["second"]', 'subject = { words = "password" }',
                            name="second", stop=True)
                     + rule('tags = ["third"]', name="third"))
    ticket = desk.ticket(desk.take(mail(subject="Password reset please")).ticket_number)
    assert fired(ticket) == ["first", "second"] and ticket["type"] == "service_request"
    assert sorted(ticket["tags"]) == ["first", "second"]
    assert did(ticket, "second").endswith("stopped the evaluation")
    ticket = desk.ticket(desk.take(mail(subject="Printer broken")).ticket_number)
    assert fired(ticket) == ["first", "third"] and ticket["type"] == "question"


# ----------------------------------------------------------------------------------------
# Monitoring: alert rules group a problem's repeats and resolve it on recovery


def test_alert_problem_repeat_recovery_with_a_rule_file(make_desk: MakeDesk) -> None:
    alert = ('alert = {{ state = "{state}", regex = \'^{word} (?P<host>\\S+) (?P<check>.+)$\', '
             'key = "{{host}}/{{check}}" }}\nacknowledgement = false\nstop = true')
    desk = make_desk(rule(alert.format(state="problem", word="ALERT") + '\ngroup = "l2"', "is_new = true",
                          name="problem")
                     + rule(alert.format(state="recovery", word="RECOVERED"), "is_new = true", name="recovery"))
    sender = "monitor@example.net"
    first = desk.take(mail(sender=sender, subject="ALERT web01 disk full")).ticket_number
    repeat = desk.take(mail(sender=sender, subject="ALERT WEB01 Disk Full"), now=NOW + timedelta(minutes=5))
    other = desk.take(mail(sender=sender, subject="ALERT web02 disk full")).ticket_number
    assert repeat.ticket_number == first and other != first
    assert desk.column(first, "alert_key") == "web01/disk full"
    recovered = desk.take(mail(sender=sender, subject="RECOVERED web01 disk full"), now=NOW + timedelta(minutes=9))
    assert recovered.ticket_number == first
    ticket = desk.ticket(first)
    assert ticket["status"] == "resolved" and desk.ticket(other)["status"] == "new"
    assert [e["detail"]["state"] for e in ticket["events"] if e["kind"] == "alert"] == ["problem", "recovery"]
    assert len(inbound(ticket)) == 3 and ticket["group"] == "l2"
    assert "acknowledgement" not in [k for k, _ in kinds(desk.new_outbox())]
    unknown = desk.take(mail(sender=sender, subject="RECOVERED db01 load"))
    assert (unknown.verdict.value, unknown.ticket_number) == ("ignored", None)
    # a problem after the recovery reopens the (resolved) ticket of its key
    again = desk.take(mail(sender=sender, subject="ALERT web01 disk full"), now=NOW + timedelta(minutes=20))
    assert again.ticket_number == first and desk.ticket(first)["status"] == "open"


def corpus_with_new_id(name: str, suffix: str) -> bytes:
    """A corpus mail sent once more: the same alert with another Message-ID."""
    raw = (CORPUS / name).read_bytes()
    return re.sub(rb"(?im)^(Message-ID:\s*<)", rb"\g<1>" + suffix.encode() + b".", raw, count=1)


MONITORING = {
    "nagios": ("nagios-problem-service-critical.eml", "nagios-recovery-service-ok.eml", "nagios-problem",
               "web01/http"),
    "opsview": ("opsview-problem.eml", "opsview-recovery.eml", "opsview-problem", "fileserver01/disk: /srv"),
    "zabbix": ("zabbix-problem.eml", "zabbix-resolved.eml", "zabbix-problem", "zabbix/1849302"),
    "alertmanager": ("alertmanager-firing.eml", "alertmanager-resolved.eml", "alertmanager-firing",
                     "alertmanager/instancedown (web03:9100 node critical)"),
}


@pytest.mark.parametrize("system", MONITORING)
def test_shipped_rules_group_an_alert_and_resolve_it_on_recovery(make_desk: MakeDesk, system: str) -> None:
    problem, recovery, problem_rule, key = MONITORING[system]
    desk = make_desk(rules_dir=SHIPPED_RULES)
    first = desk.take((CORPUS / problem).read_bytes())
    number = first.ticket_number
    ticket = desk.ticket(number)
    assert (ticket["status"], ticket["type"], ticket["group"], ticket["urgency"]) == ("new", "incident", "l2", "high")
    assert "monitoring" in ticket["tags"] and system in ticket["tags"]
    assert fired(ticket) == [problem_rule] and desk.column(number, "alert_key") == key
    outbox = kinds(desk.new_outbox())
    assert "acknowledgement" not in [k for k, _ in outbox] and ("agent_new_ticket", ["bob@example.com"]) in outbox

    repeat = desk.take(corpus_with_new_id(problem, "repeat"), now=NOW + timedelta(minutes=10))
    assert (repeat.verdict.value, repeat.ticket_number) == ("stored", number)
    assert desk.ticket(number)["status"] == "new"

    resolved = desk.take((CORPUS / recovery).read_bytes(), now=NOW + timedelta(minutes=30))
    assert resolved.ticket_number == number
    ticket = desk.ticket(number)
    assert ticket["status"] == "resolved" and len(inbound(ticket)) == 3
    assert [e["detail"]["state"] for e in ticket["events"] if e["kind"] == "alert"] == ["problem", "recovery"]
    assert len([r for r in desk.results if r.ticket_number]) == 3 and desk.new_outbox() == []
    with desk.app.db.read() as session:
        assert len(session.scalars(select(Ticket)).all()) == 1


# ----------------------------------------------------------------------------------------
# The same through `postdesk ingest`, as the MTA runs it


def test_postdesk_ingest_applies_the_rules(make_desk: MakeDesk, tmp_path: Path) -> None:
    desk = make_desk(rule('drop = "marked as spam"', '"header.x-spam-flag" = "YES"', name="spam", stop=True)
                     + rule('answer_and_close = { reason = "your support contract has expired" }',
                            'is_new = true\n"contact.contract" = "expired"', name="expired", stop=True)
                     + rule('assign = { round_robin = "l1" }\nimpact = "high"', name="first-line"),
                     contacts=True)
    desk.app.close()
    config = tmp_path / "postdesk.toml"

    def postdesk(*args: str, raw: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run([sys.executable, "-m", "daemon", "-c", str(config), *args], input=raw,
                                capture_output=True, timeout=60, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result

    postdesk("ingest", "-", raw=mail(sender="petro@customer.example", subject="One"))
    postdesk("ingest", "-", raw=mail(sender="petro@customer.example", subject="Two"))
    postdesk("ingest", "-", raw=mail(headers={"X-Spam-Flag": "YES"}, subject="Cheap pills"))
    postdesk("ingest", "-", raw=mail(subject="Printer"))
    tickets = json.loads(postdesk("tickets", "list", "--json").stdout)
    assert [(t["subject"], t["owner"], t["status"], t["priority"]) for t in tickets] == [
        ("One", "alice@example.com", "new", "high"), ("Two", "carol@example.com", "new", "high"),
        ("Printer", None, "closed", "medium")]
    shown = json.loads(postdesk("tickets", "show", str(tickets[0]["number"]), "--json").stdout)
    assert [e["detail"]["rule"] for e in shown["events"] if e["kind"] == "rule"] == ["first-line"]
    refused = json.loads(postdesk("tickets", "show", str(tickets[2]["number"]), "--json").stdout)
    assert [e["detail"]["rule"] for e in refused["events"] if e["kind"] == "rule"] == ["expired"]
    app = App.from_config(desk.app.config, migrate=False)
    try:
        with app.db.read() as session:
            dropped = session.scalar(select(IntakeRecord).where(IntakeRecord.verdict == "ignored"))
            refusals = session.scalars(select(Outbox.recipients).where(Outbox.kind == "refusal")).all()
    finally:
        app.close()
    assert dropped is not None and dropped.reason == "dropped by the rules: marked as spam"
    assert refusals == [["olena@customer.example"]]
