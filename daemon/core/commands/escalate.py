"""#escalate [REASON]: the group's agents (or all agents) get an ESCALATION mail; tag "escalated"."""

from __future__ import annotations

from dataclasses import replace

from daemon.core import notify
from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.values import OutboundKind

TAG = "escalated"


@command("escalate", "#escalate [REASON]", "escalate to the group's agents (or all agents)")
def escalate(context: Context, args: str) -> Outcome | CommandError:
    ticket = context.ticket
    reason = " ".join(args.split()) or f"escalated by {context.actor}"
    members = tuple(a for a in context.setup.agents if ticket.group and ticket.group in a.groups)
    agents = tuple(a for a in (members or context.setup.agents) if a.email != context.actor)
    after = ticket if TAG in ticket.tags else replace(ticket, tags=(*ticket.tags, TAG))
    drafts = notify.to_agents(OutboundKind.ESCALATION, agents, context.mail, context.setup, (("reason", reason),))
    event = context.event("escalated", ("reason", reason), ("to", ", ".join(a.email for a in agents)),
                          ("why", f"escalated by {context.actor}"))
    told = ", ".join(a.email for a in agents) or "nobody (no other agent)"
    return Outcome(after, f"escalated ({reason}); told: {told}", events=(event,), drafts=drafts)
