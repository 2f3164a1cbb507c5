"""#assign AGENT|GROUP: an agent by address, name or the local part of the address; or a group
that some agent belongs to. The new owner (or the group's agents) hear of it, unless they did it."""

from __future__ import annotations

from dataclasses import replace

from daemon.core import notify
from daemon.core.commands import CommandError, Context, Outcome, command, transition
from daemon.core.values import AgentView, OutboundDraft, OutboundKind, Setup, TicketView


@command("assign", "#assign AGENT|GROUP", "give the ticket to an agent (address, name) or a group")
def assign(context: Context, args: str) -> Outcome | CommandError:
    wanted = args.strip()
    if not wanted:
        return CommandError(f"#assign needs an agent or a group; {_choices(context.setup)}")
    agents = find_agents(context.setup, wanted)
    if len(agents) > 1:
        return CommandError(f"{wanted!r} matches several agents ({', '.join(a.email for a in agents)}); "
                            "write the address")
    if agents:
        return to_agent(context, agents[0])
    group = next((g for g in groups(context.setup) if g.lower() == wanted.lower()), None)
    if group is None:
        return CommandError(f"no agent or group {wanted!r}; {_choices(context.setup)}")
    return to_group(context, group)


def to_agent(context: Context, agent: AgentView) -> Outcome:
    """The ticket owned by `agent` (who is told, unless they are the one assigning)."""
    ticket = context.ticket
    if ticket.owner == agent.email:
        return Outcome(ticket, f"owner: already {agent.email}")
    after = replace(ticket, owner=agent.email)
    event = context.event("assign", ("owner_from", ticket.owner or ""), ("owner_to", agent.email),
                          ("why", f"assigned by {context.actor}"))
    drafts = () if agent.email == context.actor else _told(context, after, (agent,))
    return Outcome(after, f"owner: {transition(ticket.owner or '', agent.email)}", events=(event,), drafts=drafts)


def to_group(context: Context, group: str) -> Outcome:
    ticket = context.ticket
    if ticket.group == group and ticket.owner is None:
        return Outcome(ticket, f"group: already {group}")
    after = replace(ticket, group=group, owner=None)
    event = context.event("assign", ("group_from", ticket.group), ("group_to", group),
                          ("owner_from", ticket.owner or ""), ("owner_to", ""), ("why", f"assigned by {context.actor}"))
    members = tuple(a for a in context.setup.agents if group in a.groups and a.email != context.actor)
    result = f"group: {transition(ticket.group, group)}" + (f"; owner {ticket.owner} removed" if ticket.owner else "")
    return Outcome(after, result, events=(event,), drafts=_told(context, after, members))


def _told(context: Context, ticket: TicketView, agents: tuple[AgentView, ...]) -> tuple[OutboundDraft, ...]:
    return notify.to_agents(OutboundKind.AGENT_ASSIGNMENT, agents, context.mail, context.setup)


def find_agents(setup: Setup, wanted: str) -> tuple[AgentView, ...]:
    """Agents by address (or alias), else by display name, else by the local part of an address."""
    key = wanted.strip().lower()
    by_address = tuple(a for a in setup.agents if key in a.addresses)
    by_name = tuple(a for a in setup.agents if a.name.strip().lower() == key)
    by_local_part = tuple(a for a in setup.agents if any(x.partition("@")[0] == key for x in a.addresses))
    return by_address or by_name or by_local_part


def groups(setup: Setup) -> tuple[str, ...]:
    return tuple(sorted({g for agent in setup.agents for g in agent.groups}))


def _choices(setup: Setup) -> str:
    agents = ", ".join(a.email for a in setup.agents) or "none configured"
    return f"agents: {agents}; groups: {', '.join(groups(setup)) or 'none configured'}"
