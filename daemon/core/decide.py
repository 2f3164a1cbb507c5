"""The way of one mail through the core, on one screen.

    duplicate? → sender? → classify (loop?) → thread → bounce | auto-reply | agent
      → rules (drop? alert?) → new ticket | stranger | third party | follow-up
      → the Decision (ticket after, message, events, mails to send)

Each step is a function of values; an early end is a returned Decision, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parseaddr

from daemon.core import agentmail, lifecycle, notify, thread, triage
from daemon.core.classify import Classification, classify
from daemon.core.rules.model import RuleOutcome, RuleSet
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
    ThreadKeys,
    ThreadMatch,
    TicketView,
    Verdict,
    Visibility,
)

SYSTEM = "postdesk"


@dataclass(frozen=True, slots=True)
class Job:
    """One mail and everything decided about it so far."""

    mail: InboundMail
    facts: Facts
    setup: Setup
    mailbox: str
    who: Classification
    now: datetime
    rules: RuleSet


def decide(mail: InboundMail, facts: Facts, setup: Setup, mailbox: str, now: datetime,
           rules: RuleSet = triage.NO_RULES, keys: ThreadKeys | None = None) -> Decision:
    """What to do with one mail. `keys`: the thread keys the facts were gathered with, if the
    caller worked them out already (else they are worked out here)."""
    if facts.already_taken:
        return Decision(Verdict.DUPLICATE, "this mail was already taken in")
    if not mail.sender.email:
        return Decision(Verdict.QUARANTINED, "the mail has no sender address (From), so no one can be answered")
    who = classify(mail, setup)
    if who.role is Role.SELF:
        return Decision(Verdict.IGNORED, f"mail loop: {who.loop}",
                        events=(EventDraft(SYSTEM, "loop_dropped", (("why", who.loop),)),))
    job = Job(mail, facts, setup, mailbox, who, now, rules)
    found = thread.match(keys or thread.keys(mail, setup), facts)
    ticket = facts.ticket(found.number)
    if who.nature is Nature.BOUNCE:
        return on_bounce(mail, ticket)
    if who.nature is Nature.AUTO_REPLY:
        return on_auto_reply(mail, ticket, found)
    if who.role is Role.AGENT:
        return agentmail.decide_agent_mail(mail, ticket, who, facts, setup, now)
    return customer_mail(job, found, ticket)


def customer_mail(job: Job, found: ThreadMatch, ticket: TicketView | None) -> Decision:
    follows = ticket is not None and not ticket.status.is_final and is_participant(job, ticket)
    outcome = triage.run_rules(job.rules, job.mail, job.mailbox, ticket if follows else None, job.facts,
                               job.setup, job.now)
    if outcome.drop:
        return triage.dropped(job.mail, outcome)
    if outcome.alert is not None:
        grouped = triage.on_alert(job.mail, job.facts, job.setup, outcome, job.now)
        if grouped is not None:
            return grouped
        return open_ticket(job, found, outcome)
    if ticket is None:
        return open_ticket(job, found, outcome)
    if ticket.third_party and job.mail.sender.email == third_party_address(ticket.third_party):
        return on_third_party_reply(job, ticket)
    if not is_participant(job, ticket):
        return on_stranger(job, ticket)
    return on_follow_up(job, ticket, found, outcome)


def is_participant(job: Job, ticket: TicketView) -> bool:
    return job.mail.sender.email in ticket.participants or job.setup.lifecycle.stranger == "append"


# ----------------------------------------------------------------------------------------
# Mail that is not a customer writing


def on_bounce(mail: InboundMail, ticket: TicketView | None) -> Decision:
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
        bounced_message_id=original if original and report and report.action in ("failed", "") else None,
    )


def on_auto_reply(mail: InboundMail, ticket: TicketView | None, found: ThreadMatch) -> Decision:
    if ticket is None:
        return Decision(Verdict.IGNORED, "an automatic reply that belongs to no ticket")
    if found.how != "references" and mail.sender.email not in ticket.participants:
        return Decision(Verdict.IGNORED, f"an automatic reply from {mail.sender.email}, who is not on ticket "
                        f"#{ticket.number}, naming it only by its {found.how} token")
    return Decision(
        Verdict.STORED, "automatic reply attached to its ticket; status unchanged", ticket=ticket, before=ticket,
        message=StoredMessage(Visibility.INTERNAL, auto=True, kind="auto_reply"),
        events=(EventDraft(mail.sender.email, "auto_reply", (("subject", mail.subject[:200]),)),),
    )


# ----------------------------------------------------------------------------------------
# A new ticket


def open_ticket(job: Job, found: ThreadMatch, outcome: RuleOutcome, linked: TicketView | None = None,
                why: str = "") -> Decision:
    mail, facts, setup = job.mail, job.facts, job.setup
    ticket = new_ticket_view(mail, facts, setup, job.mailbox, job.now)
    if outcome.alert is not None:
        ticket = replace(ticket, alert_key=outcome.alert[1])
    held = (setup.mailbox(job.mailbox).unknown_sender == "hold" and facts.contact is None) or \
        (linked is not None and setup.lifecycle.stranger == "hold" and linked.status is not Status.CLOSED)
    if held:
        ticket = replace(ticket, tags=(*ticket.tags, "held"))
    if linked is not None:
        ticket = replace(ticket, links=(LinkRef("related", str(linked.number)),))
    events = [EventDraft(mail.sender.email, "created", _created_detail(job, found, why))]
    ticket, rule_events = triage.classified(ticket, outcome, setup, facts)
    ticket, drafts, answer_events = triage.customer_drafts(mail, ticket, job.who, facts, setup, outcome, held)
    if setup.notify_agents_on_new and not ticket.status.is_final:  # a refused mail needs no agent
        drafts += notify.agents_new_ticket(mail, ticket, setup)
    return Decision(Verdict.STORED, why or "new ticket", ticket=ticket,
                    message=StoredMessage(Visibility.PUBLIC, auto=job.who.nature is not Nature.NORMAL,
                                          kind="held" if held or outcome.hold else "customer"),
                    events=(*events, *rule_events, *answer_events), drafts=tuple(drafts))


def _created_detail(job: Job, found: ThreadMatch, why: str) -> tuple[tuple[str, str], ...]:
    detail = [("from", job.mail.sender.email), ("mailbox", job.mailbox), ("message_id", job.mail.message_id)]
    if found.note:
        detail.append(("note", found.note))
    if why:
        detail.append(("why", why))
    return tuple(detail)


def fresh_start(job: Job) -> Job:
    """The job of a mail that opens a new ticket although it named an old one."""
    facts = Facts(contact=job.facts.contact, auto_replies_last_hour=job.facts.auto_replies_last_hour,
                  auto_replies_last_day=job.facts.auto_replies_last_day,
                  last_assigned=job.facts.last_assigned)
    return replace(job, facts=facts)


def open_linked_ticket(job: Job, old: TicketView, why: str) -> Decision:
    fresh = fresh_start(job)
    outcome = triage.run_rules(job.rules, job.mail, job.mailbox, None, fresh.facts, job.setup, job.now)
    return open_ticket(fresh, ThreadMatch(None, ""), outcome, linked=old, why=why)


# ----------------------------------------------------------------------------------------
# Someone who is not on the ticket uses its token; a third party answers


def on_stranger(job: Job, ticket: TicketView) -> Decision:
    why = (f"{job.mail.sender.email} is not a participant of ticket #{ticket.number}; "
           f"a new ticket linked to it was opened")
    decision = open_linked_ticket(job, ticket, why)
    return replace(decision, events=(*decision.events, EventDraft(SYSTEM, "stranger", (
        ("sender", job.mail.sender.email), ("token_ticket", str(ticket.number))))))


def third_party_address(third_party: str) -> str:
    """The address in `#third-party Acme <support@acme.example>` (or a bare address), lower-case."""
    return parseaddr(third_party)[1].strip().lower()


def on_third_party_reply(job: Job, ticket: TicketView) -> Decision:
    """The vendor a ticket was passed to answers: kept internal, and the ticket is back with us."""
    after = ticket
    events = [EventDraft(job.mail.sender.email, "third_party_reply", (("from", job.mail.sender.email),))]
    if ticket.status is Status.WAITING_THIRD_PARTY:
        after = lifecycle.with_status(ticket, Status.OPEN, job.now)
        events.append(lifecycle.status_event(ticket, after, job.mail.sender.email, "received from third party"))
    drafts = notify.agents_customer_replied(job.mail, ticket, after, job.setup)
    return Decision(Verdict.STORED, f"third-party answer on #{ticket.number}", ticket=after, before=ticket,
                    message=StoredMessage(Visibility.INTERNAL, auto=False, kind="third_party"),
                    events=tuple(events), drafts=drafts)


# ----------------------------------------------------------------------------------------
# A customer's follow-up


def on_follow_up(job: Job, ticket: TicketView, found: ThreadMatch, outcome: RuleOutcome) -> Decision:
    if ticket.status.is_final:
        return on_closed_ticket(job, ticket, found)
    mail = job.mail
    after = replace(ticket, cc=_merged_cc(ticket, mail, job.setup))
    events = [EventDraft(mail.sender.email, "mail", (("how", found.how), ("message_id", mail.message_id)))]
    after, rule_events = triage.classified(after, outcome, job.setup, job.facts)
    events += rule_events
    after, status_events = customer_status_change(ticket, after, mail, job.setup, job.now)
    events += status_events
    if after.cc != ticket.cc:
        added = ", ".join(a.email for a in after.cc if a not in ticket.cc)
        events.append(EventDraft(mail.sender.email, "cc", (("added", added),)))
    drafts = notify.agents_customer_replied(mail, ticket, after, job.setup)
    if ticket.status is Status.RESOLVED and after.status is Status.OPEN:
        drafts += notify.reopen_notice(mail, after, job.who, job.facts, job.setup)
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
    return changed, [lifecycle.status_event(ticket, changed, actor,
                                            "the customer replied to the resolution: reopened")]


def _merged_cc(ticket: TicketView, mail: InboundMail, setup: Setup) -> tuple[Address, ...]:
    return (*ticket.cc, *other_participants(mail, setup, tuple(ticket.participants)))


def on_closed_ticket(job: Job, ticket: TicketView, found: ThreadMatch) -> Decision:
    mail, setup, now = job.mail, job.setup, job.now
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
        return notify.closed_ticket_answer(mail, ticket, job.who, job.facts, setup)
    why = f"ticket #{ticket.number} is {ticket.status.value}; a new ticket linked to it was opened"
    return open_linked_ticket(job, ticket, why)
