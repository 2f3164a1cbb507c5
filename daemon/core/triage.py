"""The rules' part of a customer mail's way: evaluate the rule set, then turn what it decided
into the ticket's fields and the mails to send (hold, answer and close, third party, the
acknowledgement's template) and into monitoring alerts grouped by key."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from daemon.core import lifecycle, notify
from daemon.core.classify import Classification
from daemon.core.rules.apply import apply_outcome
from daemon.core.rules.engine import evaluate
from daemon.core.rules.model import RuleInput, RuleOutcome, RuleSet
from daemon.core.values import (
    Address,
    Decision,
    EventDraft,
    Facts,
    InboundMail,
    OutboundDraft,
    OutboundKind,
    Setup,
    Status,
    StoredMessage,
    TicketView,
    Verdict,
    Visibility,
)

SYSTEM = "postdesk"
NO_RULES = RuleSet()


def run_rules(rules: RuleSet, mail: InboundMail, mailbox: str, ticket: TicketView | None, facts: Facts,
              setup: Setup, now: datetime) -> RuleOutcome:
    if not rules.rules:
        return RuleOutcome(modules=rules.modules)
    return evaluate(rules, RuleInput(mail=mail, mailbox=mailbox, ticket=ticket, contact=facts.contact, now=now,
                                     timezone=setup.timezone))


def dropped(mail: InboundMail, outcome: RuleOutcome) -> Decision:
    from daemon.core.rules.apply import rule_events

    return Decision(Verdict.IGNORED, f"dropped by the rules: {outcome.drop}", events=rule_events(outcome))


def classified(ticket: TicketView, outcome: RuleOutcome, setup: Setup,
               facts: Facts) -> tuple[TicketView, list[EventDraft]]:
    """The ticket with the rules' fields, tags, owner and priority (the matrix applies even
    when no rule fired: a new ticket always gets its computed priority)."""
    after, events = apply_outcome(ticket, outcome, setup, facts)
    if outcome.hold:
        after = replace(after, tags=tuple(dict.fromkeys((*after.tags, "held"))))
    return after, list(events)


def customer_drafts(mail: InboundMail, ticket: TicketView, who: Classification, facts: Facts, setup: Setup,
                    outcome: RuleOutcome, held: bool) -> tuple[TicketView, list[OutboundDraft], list[EventDraft]]:
    """What the customer (and a third party) gets for a new ticket, as the rules chose."""
    if outcome.answer is not None:
        return answer_and_close(mail, ticket, who, facts, setup, outcome.answer, now=ticket.created_at)
    drafts: list[OutboundDraft] = []
    events: list[EventDraft] = []
    if held or outcome.hold:
        events.append(EventDraft(SYSTEM, "held", (("why", outcome.hold or "unknown sender: held for an agent"),)))
    elif outcome.acknowledgement == "":
        events.append(EventDraft(SYSTEM, "auto_answer_suppressed", (("kind", "acknowledgement"),
                                                                    ("why", "the rules suppress it"))))
    else:
        kind = OutboundKind(outcome.acknowledgement or OutboundKind.ACKNOWLEDGEMENT.value)
        more_drafts, more_events = notify.auto_answer(kind, mail, ticket, who, facts, setup)
        drafts += more_drafts
        events += more_events
    if outcome.third_party:
        ticket, third = to_third_party(mail, ticket, outcome.third_party, setup)
        drafts.append(third)
    return ticket, drafts, events


def answer_and_close(mail: InboundMail, ticket: TicketView, who: Classification, facts: Facts, setup: Setup,
                     answer: tuple[str, str], now: datetime) -> tuple[TicketView, list[OutboundDraft],
                                                                      list[EventDraft]]:
    """Refusal (expired contract, unpaid, out of scope): answer with a template and close."""
    kind, reason = answer
    drafts, events = notify.auto_answer(OutboundKind(kind), mail, ticket, who, facts, setup,
                                        variables=(("reason", reason),))
    closed = lifecycle.with_status(ticket, Status.CLOSED, now)
    events.append(EventDraft(SYSTEM, "status", (("from", ticket.status.value), ("to", Status.CLOSED.value),
                                                ("why", f"answered with {kind} and closed by the rules: {reason}"))))
    return replace(closed, resolution_code=closed.resolution_code or "refused"), drafts, events


def to_third_party(mail: InboundMail, ticket: TicketView, address: str,
                   setup: Setup) -> tuple[TicketView, OutboundDraft]:
    waiting = replace(ticket, status=Status.WAITING_THIRD_PARTY, third_party=address)
    draft = OutboundDraft(kind=OutboundKind.THIRD_PARTY, to=(Address(address),), language=setup.default_language,
                          auto=True, in_reply_to=mail.message_id, variables=(("text", mail.new_text),))
    return waiting, draft


# ----------------------------------------------------------------------------------------
# Monitoring alerts: repeats of a problem join its open ticket; the recovery resolves it


def on_alert(mail: InboundMail, facts: Facts, setup: Setup, outcome: RuleOutcome, now: datetime) -> Decision | None:
    """The decision for an alert that has an open ticket already; None: open a new one."""
    assert outcome.alert is not None
    state, key = outcome.alert
    ticket = facts.ticket(facts.alert_ticket)
    if ticket is None:
        if state == "recovery":
            return Decision(Verdict.IGNORED, f"recovery of alert {key!r}, which has no open ticket")
        return None
    if state == "recovery":
        after = lifecycle.with_status(ticket, Status.RESOLVED, now) if ticket.status is not Status.RESOLVED \
            else ticket
        why = f"the monitoring system reports alert {key!r} recovered"
    else:
        after = lifecycle.with_status(ticket, Status.OPEN, now) if ticket.status is Status.RESOLVED else ticket
        why = f"alert {key!r} repeated"
    events = [EventDraft(mail.sender.email, "alert", (("state", state), ("key", key), ("why", why)))]
    if after.status != ticket.status:
        events.append(lifecycle.status_event(ticket, after, mail.sender.email, why))
    return Decision(Verdict.STORED, why, ticket=after, before=ticket,
                    message=StoredMessage(Visibility.PUBLIC, auto=True, kind="alert"), events=tuple(events))
