"""The way of one mail through the core, on one screen.

    duplicate? → screen → classify → thread → bounce | auto-reply | new ticket | agent | stranger
    | follow-up → the Decision (ticket after, message, events, mails to send)

Each step is a function of values; an early end is a returned Decision, never an exception.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from daemon.core import agentmail, lifecycle, notify, thread
from daemon.core.classify import Classification, classify
from daemon.core.tickets import new_ticket_view, other_participants
from daemon.core.values import (
    Address,
    Decision,
    EventDraft,
    Facts,
    InboundMail,
    LinkRef,
    Nature,
    Role,
    Setup,
    Status,
    StoredMessage,
    ThreadMatch,
    TicketView,
    Verdict,
    Visibility,
)

SYSTEM = "postdesk"


def decide(mail: InboundMail, facts: Facts, setup: Setup, mailbox: str, now: datetime) -> Decision:
    if facts.already_taken:
        return Decision(Verdict.DUPLICATE, "this mail was already taken in")
    if not mail.sender.email:
        return Decision(Verdict.QUARANTINED, "the mail has no sender address (From), so no one can be answered")
    who = classify(mail, setup)
    if who.role is Role.SELF:
        return Decision(Verdict.IGNORED, f"mail loop: {who.loop}",
                        events=(EventDraft(SYSTEM, "loop_dropped", (("why", who.loop),)),))
    found = thread.match(thread.keys(mail, setup), facts)
    ticket = facts.ticket(found.number)
    if who.nature is Nature.BOUNCE:
        return on_bounce(mail, ticket, now)
    if who.nature is Nature.AUTO_REPLY:
        return on_auto_reply(mail, ticket, who)
    if who.role is Role.AGENT:
        return agentmail.decide_agent_mail(mail, ticket, who, facts, setup, now)
    if ticket is None:
        return open_ticket(mail, facts, setup, mailbox, who, found, now)
    if mail.sender.email not in ticket.participants and setup.lifecycle.stranger != "append":
        return on_stranger(mail, ticket, facts, setup, mailbox, who, now)
    return on_follow_up(mail, ticket, facts, setup, mailbox, who, found, now)


# ----------------------------------------------------------------------------------------
# Mail that is not a customer writing


def on_bounce(mail: InboundMail, ticket: TicketView | None, now: datetime) -> Decision:
    report = mail.delivery_report
    original = report.original_message_id if report else ""
    if ticket is None:
        return Decision(Verdict.IGNORED, "a bounce of a mail that is not on any ticket"
                        + (f" (original {original})" if original else ""))
    detail = (("original", original), ("recipients", ", ".join(report.failed_recipients) if report else ""),
              ("status", report.status if report else ""), ("diagnostic", report.diagnostic if report else ""))
    return Decision(
        Verdict.STORED, "bounce attached to its ticket", ticket=ticket, before=ticket,
        message=StoredMessage(Visibility.INTERNAL, auto=True, kind="bounce"),
        events=(EventDraft(SYSTEM, "bounce", detail),),
        bounced_message_id=original or None,
    )


def on_auto_reply(mail: InboundMail, ticket: TicketView | None, who: Classification) -> Decision:
    if ticket is None:
        return Decision(Verdict.IGNORED, "an automatic reply that belongs to no ticket")
    return Decision(
        Verdict.STORED, "automatic reply attached to its ticket; status unchanged", ticket=ticket, before=ticket,
        message=StoredMessage(Visibility.INTERNAL, auto=True, kind="auto_reply"),
        events=(EventDraft(mail.sender.email, "auto_reply", (("subject", mail.subject[:200]),)),),
    )


# ----------------------------------------------------------------------------------------
# A new ticket


def open_ticket(mail: InboundMail, facts: Facts, setup: Setup, mailbox: str, who: Classification,
                found: ThreadMatch, now: datetime, linked: TicketView | None = None, why: str = "") -> Decision:
    ticket = new_ticket_view(mail, facts, setup, mailbox, now)
    held = setup.mailbox(mailbox).unknown_sender == "hold" and facts.contact is None
    if held or (linked is not None and setup.lifecycle.stranger == "hold"):
        ticket = replace(ticket, tags=(*ticket.tags, "held"))
    if linked is not None:
        ticket = replace(ticket, links=(LinkRef("related", str(linked.number)),))
    events = [EventDraft(mail.sender.email, "created", _created_detail(mail, mailbox, found, why))]
    drafts, suppressed = notify.acknowledge(mail, ticket, who, facts, setup, held)
    events += suppressed
    drafts += notify.agents_new_ticket(mail, ticket, setup)
    return Decision(Verdict.STORED, why or "new ticket", ticket=ticket,
                    message=StoredMessage(Visibility.PUBLIC, auto=False, kind="held" if held else "customer"),
                    events=tuple(events), drafts=tuple(drafts))


def _created_detail(mail: InboundMail, mailbox: str, found: ThreadMatch, why: str) -> tuple[tuple[str, str], ...]:
    detail = [("from", mail.sender.email), ("mailbox", mailbox), ("message_id", mail.message_id)]
    if found.note:
        detail.append(("note", found.note))
    if why:
        detail.append(("why", why))
    return tuple(detail)


# ----------------------------------------------------------------------------------------
# Someone who is not on the ticket uses its token


def on_stranger(mail: InboundMail, ticket: TicketView, facts: Facts, setup: Setup, mailbox: str,
                who: Classification, now: datetime) -> Decision:
    why = (f"{mail.sender.email} is not a participant of ticket #{ticket.number}; "
           f"a new ticket linked to it was opened")
    fresh = Facts(contact=facts.contact, auto_replies_last_hour=facts.auto_replies_last_hour)
    decision = open_ticket(mail, fresh, setup, mailbox, who, ThreadMatch(None, ""), now, linked=ticket, why=why)
    return replace(decision, events=(*decision.events, EventDraft(SYSTEM, "stranger", (
        ("sender", mail.sender.email), ("token_ticket", str(ticket.number))))))


# ----------------------------------------------------------------------------------------
# A customer's follow-up


def on_follow_up(mail: InboundMail, ticket: TicketView, facts: Facts, setup: Setup, mailbox: str,
                 who: Classification, found: ThreadMatch, now: datetime) -> Decision:
    if ticket.status.is_final:
        return on_closed_ticket(mail, ticket, facts, setup, mailbox, who, found, now)
    after = replace(ticket, cc=_merged_cc(ticket, mail, setup))
    events = [EventDraft(mail.sender.email, "mail", (("how", found.how), ("message_id", mail.message_id)))]
    after, status_events = customer_status_change(ticket, after, mail, setup, now)
    events += status_events
    if after.cc != ticket.cc:
        events.append(EventDraft(mail.sender.email, "cc", (("added", ", ".join(
            a.email for a in after.cc if a not in ticket.cc)),)))
    drafts = notify.agents_customer_replied(mail, ticket, after, setup)
    return Decision(Verdict.STORED, f"follow-up of #{ticket.number} by {found.how}", ticket=after, before=ticket,
                    message=StoredMessage(Visibility.PUBLIC, auto=False, kind="customer"),
                    events=tuple(events), drafts=drafts)


def customer_status_change(ticket: TicketView, after: TicketView, mail: InboundMail, setup: Setup,
                           now: datetime) -> tuple[TicketView, list[EventDraft]]:
    actor = mail.sender.email
    if ticket.status is Status.WAITING_CUSTOMER:
        changed = lifecycle.with_status(after, Status.OPEN, now)
        return changed, [lifecycle.status_event(ticket, changed, actor, "the customer answered")]
    if ticket.status is not Status.RESOLVED:
        return after, []
    phrase = lifecycle.is_thanks(mail.new_text, setup.lifecycle.thanks_phrases) \
        if setup.lifecycle.thanks_closes else None
    if phrase is not None:
        changed = lifecycle.with_status(after, Status.CLOSED, now)
        return changed, [lifecycle.status_event(ticket, changed, actor,
                                                f"the customer confirmed the resolution ({phrase!r})")]
    changed = lifecycle.with_status(after, Status.OPEN, now)
    return changed, [lifecycle.status_event(ticket, changed, actor, "the customer replied to the resolution: reopened")]


def _merged_cc(ticket: TicketView, mail: InboundMail, setup: Setup) -> tuple[Address, ...]:
    known = tuple(ticket.participants)
    return (*ticket.cc, *other_participants(mail, setup, known))


def on_closed_ticket(mail: InboundMail, ticket: TicketView, facts: Facts, setup: Setup, mailbox: str,
                     who: Classification, found: ThreadMatch, now: datetime) -> Decision:
    policy = setup.lifecycle
    within = policy.reopen_within.total_seconds() / 86400
    if policy.closed_followup == "reopen" and lifecycle.reopen_closed_allowed(ticket, within, now):
        after = lifecycle.with_status(ticket, Status.OPEN, now)
        events = (EventDraft(mail.sender.email, "mail", (("how", found.how),)),
                  lifecycle.status_event(ticket, after, mail.sender.email,
                                         f"reply within {within:g} days of closure: reopened"))
        return Decision(Verdict.STORED, f"reopened closed #{ticket.number}", ticket=after, before=ticket,
                        message=StoredMessage(Visibility.PUBLIC, auto=False, kind="customer"), events=events,
                        drafts=notify.agents_customer_replied(mail, ticket, after, setup))
    if policy.closed_followup == "reply":
        return notify.closed_ticket_answer(mail, ticket, who, facts, setup)
    why = f"ticket #{ticket.number} is {ticket.status.value}; a new ticket linked to it was opened"
    fresh = Facts(contact=facts.contact, auto_replies_last_hour=facts.auto_replies_last_hour)
    return open_ticket(mail, fresh, setup, mailbox, who, ThreadMatch(None, ""), now, linked=ticket, why=why)
