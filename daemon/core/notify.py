"""Which mails a decision sends, and to whom: answers to customers (never to machines, never
past the per-sender limit) and notifications to agents."""

from __future__ import annotations

from daemon.core.classify import Classification
from daemon.core.values import (
    Address,
    AgentView,
    Attachment,
    Decision,
    EventDraft,
    Facts,
    InboundMail,
    OutboundDraft,
    OutboundKind,
    Setup,
    StoredMessage,
    TicketView,
    Verdict,
    Visibility,
)

SYSTEM = "postdesk"


def auto_answer(kind: OutboundKind, mail: InboundMail, ticket: TicketView, who: Classification, facts: Facts,
                setup: Setup, variables: tuple[tuple[str, str], ...] = ()) -> tuple[list[OutboundDraft],
                                                                                    list[EventDraft]]:
    """An automatic answer to the sender, unless RFC 3834 or the rate limit forbids it."""
    reasons = list(who.no_auto_answer)
    if facts.auto_replies_last_hour >= setup.auto_replies_per_hour:
        reasons.append(f"{facts.auto_replies_last_hour} automatic mails to {mail.sender.email} in the last hour "
                       f"(limit {setup.auto_replies_per_hour})")
    elif facts.auto_replies_last_day >= setup.auto_replies_per_day:
        reasons.append(f"{facts.auto_replies_last_day} automatic mails to {mail.sender.email} in the last day "
                       f"(limit {setup.auto_replies_per_day})")
    if reasons:
        return [], [EventDraft(SYSTEM, "auto_answer_suppressed", (("kind", kind.value), ("why", "; ".join(reasons))))]
    draft = OutboundDraft(kind=kind, to=(ticket.requester,), language=ticket.language or setup.default_language,
                          auto=True, in_reply_to=mail.message_id, variables=variables)
    return [draft], []


def acknowledge(mail: InboundMail, ticket: TicketView, who: Classification, facts: Facts, setup: Setup,
                held: bool) -> tuple[list[OutboundDraft], list[EventDraft]]:
    if held:
        return [], [EventDraft(SYSTEM, "held", (("why", "unknown sender: held for an agent to accept"),))]
    return auto_answer(OutboundKind.ACKNOWLEDGEMENT, mail, ticket, who, facts, setup)


def agents_for(ticket: TicketView, setup: Setup) -> tuple[AgentView, ...]:
    """The owner; else the agents of the ticket's group; else every agent."""
    if ticket.owner:
        owner = setup.agent(ticket.owner)
        return (owner,) if owner else ()
    if ticket.group:
        members = tuple(a for a in setup.agents if ticket.group in a.groups)
        if members:
            return members
    return setup.agents


def to_agents(kind: OutboundKind, agents: tuple[AgentView, ...], mail: InboundMail | None, setup: Setup,
              variables: tuple[tuple[str, str], ...] = ()) -> tuple[OutboundDraft, ...]:
    return tuple(
        OutboundDraft(kind=kind, to=(Address(agent.email, agent.name),),
                      language=agent.language or setup.default_language, auto=True, agent=agent.email,
                      in_reply_to=mail.message_id if mail else None, variables=variables,
                      visibility=Visibility.INTERNAL)
        for agent in agents
    )


def agents_new_ticket(mail: InboundMail, ticket: TicketView, setup: Setup) -> list[OutboundDraft]:
    return list(to_agents(OutboundKind.AGENT_NEW_TICKET, agents_for(ticket, setup), mail, setup))


def agents_customer_replied(mail: InboundMail, before: TicketView, after: TicketView,
                            setup: Setup) -> tuple[OutboundDraft, ...]:
    agents = agents_for(after, setup) if after.owner or after.group else ()
    change = "" if after.status == before.status else f"{before.status.value} → {after.status.value}"
    return to_agents(OutboundKind.AGENT_UPDATE, agents, mail, setup, (("change", change),))


def reopen_notice(mail: InboundMail, ticket: TicketView, who: Classification, facts: Facts,
                  setup: Setup) -> tuple[OutboundDraft, ...]:
    """The customer's reply reopened their resolved ticket: tell them it is back with us."""
    drafts, _ = auto_answer(OutboundKind.REOPEN_NOTICE, mail, ticket, who, facts, setup)
    return tuple(drafts)


def closed_ticket_answer(mail: InboundMail, ticket: TicketView, who: Classification, facts: Facts,
                         setup: Setup) -> Decision:
    drafts, events = auto_answer(OutboundKind.CLOSED_TICKET, mail, ticket, who, facts, setup)
    events.insert(0, EventDraft(mail.sender.email, "after_close", (
        ("why", f"ticket #{ticket.number} is {ticket.status.value}; the mail is kept as a note and "
                "the sender is asked to write a new mail"),)))
    return Decision(Verdict.STORED, f"mail to {ticket.status.value} #{ticket.number}", ticket=ticket, before=ticket,
                    message=StoredMessage(Visibility.INTERNAL, auto=False, kind="after_close"),
                    events=tuple(events), drafts=tuple(drafts))


def agent_answer(kind: OutboundKind, ticket: TicketView, agent: AgentView, text: str, setup: Setup,
                 attachments: tuple[Attachment, ...] = ()) -> OutboundDraft:
    """An agent's own words to the requester and CCs (a reply, a resolution, a question), from the
    support address with the agent's name; written by a person, so not automatic."""
    return OutboundDraft(kind=kind, to=(ticket.requester,), cc=ticket.cc,
                         language=ticket.language or setup.default_language, auto=False,
                         sender_name=agent.name or agent.email, variables=(("text", text),), attachments=attachments)
