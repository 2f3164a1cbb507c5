"""#received: the third party answered; the ticket is open again."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, change_status, command, no_arguments, transition
from daemon.core.values import Status


@command("received", "#received", "the third party answered: back to open")
def received(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    ticket = context.ticket
    if ticket.status is not Status.WAITING_THIRD_PARTY:
        return CommandError(f"ticket #{ticket.number} is {ticket.status.value}, not waiting for a third party")
    who = f" ({ticket.third_party})" if ticket.third_party else ""
    changed = change_status(context, ticket, Status.OPEN, f"received from third party{who}")
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    return Outcome(after, f"status: {transition(ticket.status, after.status)} (received from third party{who})",
                   events=(event,))
