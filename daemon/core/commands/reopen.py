"""#reopen: a resolved ticket, or a closed one within `lifecycle.reopen_within` of closing, is open again."""

from __future__ import annotations

from daemon.core import lifecycle
from daemon.core.commands import CommandError, Context, Outcome, change_status, command, no_arguments, transition
from daemon.core.values import EventDraft, Status, TicketView


@command("reopen", "#reopen", "reopen a resolved ticket, or a closed one closed recently", on_final=True)
def reopen_ticket(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    ticket = context.ticket
    if ticket.merged_into is not None:
        return CommandError(f"ticket #{ticket.number} was merged into #{ticket.merged_into}; reopen that one")
    if ticket.status is Status.RESOLVED:
        changed = change_status(context, ticket, Status.OPEN, f"reopened by {context.actor}")
    elif ticket.status is Status.CLOSED:
        changed = _closed(context, ticket)
    else:
        return CommandError(f"ticket #{ticket.number} is {ticket.status.value}; only a resolved or closed ticket "
                            "can be reopened")
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    return Outcome(after, f"status: {transition(ticket.status, after.status)}", events=(event,))


def _closed(context: Context, ticket: TicketView) -> tuple[TicketView, EventDraft] | CommandError:
    within = context.setup.lifecycle.reopen_within
    days = within.total_seconds() / 86400
    if not lifecycle.reopen_closed_allowed(ticket, days, context.now):
        closed = ticket.closed_at.strftime("%Y-%m-%d") if ticket.closed_at else "long ago"
        return CommandError(f"ticket #{ticket.number} was closed on {closed}, more than {days:g} days ago "
                            "(lifecycle reopen_within); open a new ticket with #new instead")
    after = lifecycle.with_status(ticket, Status.OPEN, context.now)
    event = lifecycle.status_event(ticket, after, context.actor,
                                   f"reopened by {context.actor} within {days:g} days of closure")
    return after, context.event(event.kind, *event.detail)
