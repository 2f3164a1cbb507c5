"""#merge N: this ticket is a duplicate of #N; the store moves its messages, people and tags to
#N (`Decision.merge_into`), and this ticket is closed with `merged_into = N`."""

from __future__ import annotations

from dataclasses import replace

from daemon.core import lifecycle
from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.commands.parse import ticket_number
from daemon.core.values import Status, TicketView


@command("merge", "#merge N", "merge this ticket into ticket N (this one is closed)")
def merge(context: Context, args: str) -> Outcome | CommandError:
    number = ticket_number(args)
    if number is None:
        return CommandError("#merge needs the number of the ticket to merge into, e.g. #merge 57")
    target = _target(context, number)
    if isinstance(target, CommandError):
        return target
    ticket = context.ticket
    closed = lifecycle.with_status(ticket, Status.CLOSED, context.now)
    after = replace(closed, merged_into=target.number)
    events = (context.event("merged", ("into", str(target.number)),
                            ("why", f"merged into #{target.number} by {context.actor}")),
              context.event("status", ("from", ticket.status.value), ("to", after.status.value),
                            ("why", f"merged into #{target.number}")))
    return Outcome(after, f"merged into #{target.number}; this ticket is closed", events=events,
                   merge_into=target.number)


def _target(context: Context, number: int) -> TicketView | CommandError:
    ticket = context.ticket
    if number == ticket.number:
        return CommandError(f"a ticket cannot be merged into itself (#{number})")
    target = context.facts.ticket(number)
    if target is None:
        return CommandError(f"there is no ticket #{number}")
    if target.number == ticket.number:
        return CommandError(f"ticket #{number} was merged into this one (#{ticket.number}) already")
    if target.status.is_final:
        return CommandError(f"ticket #{target.number} is {target.status.value}; merge into an active ticket")
    return target
