"""#close: the ticket is done; nothing is sent to the customer."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, change_status, command, no_arguments, transition
from daemon.core.values import Status


@command("close", "#close", "close the ticket (nothing is sent to the customer)")
def close(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    changed = change_status(context, context.ticket, Status.CLOSED, f"closed by {context.actor}")
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    return Outcome(after, f"status: {transition(context.ticket.status, after.status)}", events=(event,))
