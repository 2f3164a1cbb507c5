"""The pipeline's decisions for customer mail: new tickets, follow-ups, loops, bounces,
auto-replies, strangers and closed tickets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from daemon.core.decide import decide
from daemon.core.values import (
    Address,
    AgentView,
    DeliveryReport,
    Facts,
    LifecyclePolicy,
    MailboxView,
    OutboundKind,
    Setup,
    Status,
    TicketView,
    Verdict,
    Visibility,
)
from tests.mailfactory import NOW, inbound

SETUP = Setup(secret=b"s" * 20, domain="example.com", subject_prefix="Support",
              mailboxes=(MailboxView("help", "help@example.com"),), agents=(AgentView("alice@example.com", "Alice"),),
              languages=("en", "uk"))
OLENA = Address("olena@customer.example", "Olena Petrenko")


def ticket(status: Status = Status.OPEN, number: int = 7, **fields: object) -> TicketView:
    base = TicketView(number=number, subject="Printer", status=status, requester=OLENA,
                      created_at=NOW - timedelta(days=3), status_changed_at=NOW - timedelta(days=1))
    return replace(base, **fields)  # type: ignore[arg-type]


def kinds(decision) -> list[OutboundKind]:  # type: ignore[no-untyped-def]
    return [d.kind for d in decision.drafts]


def test_new_mail_opens_a_ticket_and_acknowledges_it() -> None:
    decision = decide(inbound(), Facts(), SETUP, "help", NOW)
    assert decision.verdict is Verdict.STORED and decision.creates_ticket
    assert decision.ticket.requester.email == "olena@customer.example"
    assert decision.ticket.status is Status.NEW
    assert OutboundKind.ACKNOWLEDGEMENT in kinds(decision)
    assert OutboundKind.AGENT_NEW_TICKET in kinds(decision)
    ack = next(d for d in decision.drafts if d.kind is OutboundKind.ACKNOWLEDGEMENT)
    assert ack.to == (OLENA,) and ack.auto and ack.in_reply_to == "m1@customer.example"


def test_cc_recipients_become_participants_but_not_our_addresses_or_agents() -> None:
    mail = inbound(cc="Petro <petro@customer.example>, help+3@example.com, alice@example.com")
    assert [a.email for a in decide(mail, Facts(), SETUP, "help", NOW).ticket.cc] == ["petro@customer.example"]


def test_duplicate_changes_nothing() -> None:
    assert decide(inbound(), Facts(already_taken=True), SETUP, "help", NOW).verdict is Verdict.DUPLICATE


def test_mail_without_sender_is_quarantined_with_a_reason() -> None:
    mail = replace(inbound(), sender=Address(""))
    decision = decide(mail, Facts(), SETUP, "help", NOW)
    assert decision.verdict is Verdict.QUARANTINED and "no sender" in decision.reason


def test_own_mail_is_dropped_with_an_event() -> None:
    decision = decide(inbound(sender="help@example.com"), Facts(), SETUP, "help", NOW)
    assert decision.verdict is Verdict.IGNORED and decision.events[0].kind == "loop_dropped"


def test_automatic_mail_gets_a_ticket_but_no_acknowledgement() -> None:
    decision = decide(inbound(sender="alerts@monitor.example", headers={"Auto-Submitted": "auto-generated"}),
                      Facts(), SETUP, "help", NOW)
    assert decision.creates_ticket
    assert OutboundKind.ACKNOWLEDGEMENT not in kinds(decision)
    assert any(e.kind == "auto_answer_suppressed" for e in decision.events)


def test_rate_limit_stops_acknowledgements() -> None:
    decision = decide(inbound(), Facts(auto_replies_last_hour=5), SETUP, "help", NOW)
    assert OutboundKind.ACKNOWLEDGEMENT not in kinds(decision)
    assert "limit 5" in next(e for e in decision.events if e.kind == "auto_answer_suppressed").as_dict()["why"]


def test_follow_up_from_the_requester_joins_its_ticket() -> None:
    mail = inbound(subject="Re: [Support #7] Printer", message_id="<m2@customer.example>")
    decision = decide(mail, Facts(tickets=(ticket(),)), SETUP, "help", NOW)
    assert decision.ticket.number == 7 and not decision.creates_ticket
    assert decision.message.visibility is Visibility.PUBLIC
    assert OutboundKind.ACKNOWLEDGEMENT not in kinds(decision)


def test_customer_answer_ends_the_wait() -> None:
    mail = inbound(subject="Re: [Support #7] Printer")
    decision = decide(mail, Facts(tickets=(ticket(Status.WAITING_CUSTOMER),)), SETUP, "help", NOW)
    assert decision.ticket.status is Status.OPEN
    assert any(e.kind == "status" and e.as_dict()["why"] == "the customer answered" for e in decision.events)


def test_thanks_closes_a_resolved_ticket_and_a_problem_reopens_it() -> None:
    facts = Facts(tickets=(ticket(Status.RESOLVED, resolved_at=NOW - timedelta(hours=1)),))
    thanks = decide(inbound(subject="Re: [Support #7]", body="Thanks, that fixed it!\n"), facts, SETUP, "help", NOW)
    assert thanks.ticket.status is Status.CLOSED
    assert "confirmed the resolution" in next(e for e in thanks.events if e.kind == "status").as_dict()["why"]
    problem = decide(inbound(subject="Re: [Support #7]", body="It still prints nothing.\n"), facts, SETUP, "help",
                     NOW)
    assert problem.ticket.status is Status.OPEN and problem.ticket.resolved_at is None


def test_stranger_with_a_token_gets_a_new_linked_ticket_and_nothing_of_the_old() -> None:
    mail = inbound(sender="mallory@evil.example", subject="Re: [Support #7] Printer")
    decision = decide(mail, Facts(tickets=(ticket(),)), SETUP, "help", NOW)
    assert decision.creates_ticket
    assert decision.ticket.requester.email == "mallory@evil.example"
    assert [(link.kind, link.ref) for link in decision.ticket.links] == [("related", "7")]
    assert all(d.to != (OLENA,) for d in decision.drafts)
    for draft in decision.drafts:
        assert "Printer on floor" not in str(draft.variables)


def test_stranger_policy_append() -> None:
    setup = replace(SETUP, lifecycle=LifecyclePolicy(stranger="append"))
    decision = decide(inbound(sender="petro@customer.example", subject="Re: [Support #7]"),
                      Facts(tickets=(ticket(),)), setup, "help", NOW)
    assert decision.ticket.number == 7


def test_closed_ticket_policies() -> None:
    closed = ticket(Status.CLOSED, closed_at=NOW - timedelta(days=2), resolved_at=NOW - timedelta(days=3))
    mail = inbound(subject="Re: [Support #7] Printer", body="It is broken again.\n")
    facts = Facts(tickets=(closed,))
    reopen = decide(mail, facts, replace(SETUP, lifecycle=LifecyclePolicy(closed_followup="reopen")), "help", NOW)
    assert reopen.ticket.number == 7 and reopen.ticket.status is Status.OPEN
    late = decide(mail, facts, replace(SETUP, lifecycle=LifecyclePolicy(closed_followup="reopen",
                                                                       reopen_within=timedelta(days=1))), "help", NOW)
    assert late.creates_ticket
    new = decide(mail, facts, replace(SETUP, lifecycle=LifecyclePolicy(closed_followup="new")), "help", NOW)
    assert new.creates_ticket and new.ticket.links[0].ref == "7"
    reply = decide(mail, facts, replace(SETUP, lifecycle=LifecyclePolicy(closed_followup="reply")), "help", NOW)
    assert reply.ticket.status is Status.CLOSED and reply.ticket == closed
    assert kinds(reply) == [OutboundKind.CLOSED_TICKET]
    assert reply.message.visibility is Visibility.INTERNAL


def test_bounce_is_attached_to_the_ticket_of_the_mail_that_bounced() -> None:
    report = DeliveryReport("pd.7.x@example.com", ("olena@customer.example",), "failed", "5.1.1", "no such user")
    mail = replace(inbound(sender="MAILER-DAEMON@mx.example", subject="Undelivered Mail"), delivery_report=report,
                   in_reply_to=("pd.7.x@example.com",))
    decision = decide(mail, Facts(ticket_by_message_id=(("pd.7.x@example.com", 7),), tickets=(ticket(),)), SETUP,
                      "help", NOW)
    assert decision.verdict is Verdict.STORED and decision.bounced_message_id == "pd.7.x@example.com"
    assert decision.ticket.status is Status.OPEN and not decision.drafts
    orphan = decide(mail, Facts(), SETUP, "help", NOW)
    assert orphan.verdict is Verdict.IGNORED and orphan.ticket is None


def test_out_of_office_changes_no_status_and_opens_no_ticket() -> None:
    mail = inbound(subject="Automatic reply: [Support #7] Printer", headers={"Auto-Submitted": "auto-replied"})
    waiting = ticket(Status.WAITING_CUSTOMER)
    decision = decide(mail, Facts(tickets=(waiting,)), SETUP, "help", NOW)
    assert decision.ticket.status is Status.WAITING_CUSTOMER and decision.message.auto
    assert not decision.drafts
    assert decide(replace(mail, subject="Automatic reply: Printer"), Facts(), SETUP, "help",
                  NOW).verdict is Verdict.IGNORED


def test_language_from_content_language_when_known() -> None:
    mail = inbound(headers={"Content-Language": "uk-UA"})
    assert decide(mail, Facts(), SETUP, "help", NOW).ticket.language == "uk"
    mail = inbound(headers={"Content-Language": "fi"})
    assert decide(mail, Facts(), SETUP, "help", NOW).ticket.language == "en"


def test_unknown_sender_held_when_the_mailbox_says_so() -> None:
    setup = replace(SETUP, mailboxes=(MailboxView("help", "help@example.com", unknown_sender="hold"),))
    decision = decide(inbound(), Facts(), setup, "help", NOW)
    assert "held" in decision.ticket.tags and OutboundKind.ACKNOWLEDGEMENT not in kinds(decision)


def test_now_is_only_what_it_is_given() -> None:
    later = NOW + timedelta(days=400)
    assert decide(inbound(), Facts(), SETUP, "help", later).ticket.created_at == later
    assert later.tzinfo is UTC
    assert datetime  # the module under test reads no clock: see test_layering


# ----------------------------------------------------------------------------------------
# Fixes found by the threading and loop tests, each pinned here with a real mail shape

def corpus(name: str):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from daemon.core.parse import parse

    return parse((Path(__file__).resolve().parents[1] / "mail" / name).read_bytes(), received_at=NOW)


def test_dovecot_vacation_with_a_comment_in_auto_submitted_is_an_auto_reply_that_changes_nothing() -> None:
    mail = corpus("dovecot-sieve-vacation.eml")
    assert "(" in (mail.header("auto-submitted") or "")  # "auto-replied (vacation)"
    waiting = ticket(Status.WAITING_CUSTOMER, requester=mail.sender)
    mail = replace(mail, subject="Re: [Support #7] Printer")
    decision = decide(mail, Facts(tickets=(waiting,)), SETUP, "help", NOW)
    assert decision.ticket.status is Status.WAITING_CUSTOMER and decision.message.auto


def test_a_read_receipt_does_not_reopen_a_resolved_ticket() -> None:
    mail = corpus("outlook-read-receipt-mdn.eml")
    resolved = ticket(Status.RESOLVED, requester=mail.sender, resolved_at=NOW - timedelta(hours=1))
    decision = decide(replace(mail, subject="Read: [Support #7] Printer"), Facts(tickets=(resolved,)), SETUP,
                      "help", NOW)
    assert decision.ticket is None or decision.ticket.status is Status.RESOLVED
    assert not any(d.kind is OutboundKind.REOPEN_NOTICE for d in decision.drafts)


def test_another_ticket_systems_receipt_opens_nothing_and_is_not_the_vendors_answer() -> None:
    for name in ("znuny-autoreply-ticketnumber.eml", "rt-autoreply-acme-ticket.eml"):
        mail = corpus(name)
        assert decide(mail, Facts(), SETUP, "help", NOW).verdict is Verdict.IGNORED, name
        vendor = ticket(Status.WAITING_THIRD_PARTY, third_party=mail.sender.email)
        decision = decide(replace(mail, subject="[Support #7] Printer"), Facts(tickets=(vendor,)), SETUP, "help",
                          NOW)
        assert decision.ticket is None or decision.ticket.status is Status.WAITING_THIRD_PARTY, name


def test_a_delayed_dsn_does_not_fail_the_mail() -> None:
    report = DeliveryReport("pd.7.x@example.com", ("olena@customer.example",), "delayed", "4.4.1", "still trying")
    mail = replace(inbound(sender="MAILER-DAEMON@mx.example", subject="Delayed Mail"), delivery_report=report)
    decision = decide(mail, Facts(ticket_by_message_id=(("pd.7.x@example.com", 7),), tickets=(ticket(),)), SETUP,
                      "help", NOW)
    assert decision.verdict is Verdict.STORED and decision.bounced_message_id is None


def test_an_out_of_office_from_a_stranger_naming_only_the_token_is_not_attached() -> None:
    mail = inbound(sender="someone@elsewhere.example", subject="Automatic reply: [Support #7] Printer",
                   headers={"Auto-Submitted": "auto-replied"})
    assert decide(mail, Facts(tickets=(ticket(),)), SETUP, "help", NOW).verdict is Verdict.IGNORED


def test_the_daily_limit_stops_a_slow_loop() -> None:
    decision = decide(inbound(), Facts(auto_replies_last_hour=0, auto_replies_last_day=20), SETUP, "help", NOW)
    assert OutboundKind.ACKNOWLEDGEMENT not in kinds(decision)
    assert "in the last day" in next(e for e in decision.events if e.kind == "auto_answer_suppressed").as_dict()["why"]


def test_language_from_letters_only_ukrainian_uses_when_the_mail_does_not_say() -> None:
    ukrainian = inbound(subject="Не працює вхід", body="Добрий день! Після оновлення не можу увійти до системи.\n")
    assert decide(ukrainian, Facts(), SETUP, "help", NOW).ticket.language == "uk"
    russian = inbound(subject="Не работает вход", body="Здравствуйте! После обновления не могу войти в систему.\n")
    assert decide(russian, Facts(), SETUP, "help", NOW).ticket.language == "en"  # no Russian templates: default
