"""Mail from an agent about a ticket: authenticated, then a public reply or commands."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from daemon.core import lifecycle, tokens
from daemon.core.classify import Classification
from daemon.core.values import (
    AgentView,
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


def authentication(mail: InboundMail, agent: AgentView, ticket: TicketView, setup: Setup) -> str:
    """How the agent is known to be the sender ("" when not): a signed token naming this agent
    in In-Reply-To/References, or a DKIM/DMARC pass from a trusted server."""
    domains = frozenset({setup.domain.lower()})
    wanted = {tokens.agent_hash(a) for a in agent.addresses}
    for message_id in (*mail.in_reply_to, *mail.references):
        token = tokens.read_token(setup.secret, message_id, domains)
        if token and token.agent_hash in wanted and token.number == ticket.number:
            return "signed reference"
    return ""


def first_agent_action(ticket: TicketView, now: datetime) -> TicketView:
    if ticket.status is Status.NEW:
        return lifecycle.with_status(ticket, Status.OPEN, now)
    return ticket


def decide_agent_mail(mail: InboundMail, ticket: TicketView | None, who: Classification, facts: Facts,
                      setup: Setup, now: datetime) -> Decision:
    assert who.agent is not None
    if ticket is None:
        return Decision(Verdict.QUARANTINED, "agent mail that names no ticket")
    how = authentication(mail, who.agent, ticket, setup)
    if not how:
        return unauthenticated(mail, ticket, who.agent, setup)
    return public_reply(mail, ticket, who.agent, setup, now, how)


def unauthenticated(mail: InboundMail, ticket: TicketView, agent: AgentView, setup: Setup) -> Decision:
    why = ("the mail does not answer a notification Postdesk sent to you, and no trusted server "
           "vouches for its sender (DKIM/DMARC); nothing was run or sent to the customer")
    notice = OutboundDraft(kind=OutboundKind.COMMAND_ERROR, to=(mail.sender,), language=agent.language or
                           setup.default_language, auto=True, agent=agent.email, in_reply_to=mail.message_id,
                           variables=(("error", why), ("line", "")), visibility=Visibility.INTERNAL)
    return Decision(Verdict.STORED, "agent mail not authenticated", ticket=ticket, before=ticket,
                    message=StoredMessage(Visibility.INTERNAL, auto=False, kind="unauthenticated"),
                    events=(EventDraft(mail.sender.email, "unauthenticated", (("why", why),)),),
                    drafts=(notice,))


_COMMAND_LINE = re.compile(r"^\s*#[a-z]", re.IGNORECASE)


def public_reply(mail: InboundMail, ticket: TicketView, agent: AgentView, setup: Setup, now: datetime,
                 how: str) -> Decision:
    after = first_agent_action(ticket, now)
    if after.first_response_at is None:
        after = replace(after, first_response_at=now)
    relay = OutboundDraft(kind=OutboundKind.AGENT_REPLY, to=(ticket.requester,), cc=ticket.cc,
                          language=ticket.language or setup.default_language, auto=False,
                          sender_name=agent.name or agent.email, variables=(("text", mail.new_text),),
                          attachments=mail.attachments)
    events = [EventDraft(agent.email, "reply", (("authenticated", how),))]
    if after.status != ticket.status:
        events.append(lifecycle.status_event(ticket, after, agent.email, "first agent action"))
    return Decision(Verdict.STORED, f"agent reply on #{ticket.number}", ticket=after, before=ticket,
                    message=StoredMessage(Visibility.INTERNAL, auto=False, kind="agent"),
                    events=tuple(events), drafts=(relay,))
