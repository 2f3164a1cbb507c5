"""#cancel: the ticket was opened by mistake or is withdrawn."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, change_status, command, no_arguments, transition
from daemon.core.values import Status


@command("cancel", "#cancel", "cancel the ticket (opened by mistake, withdrawn)")
def cancel(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    changed = change_status(context, context.ticket, Status.CANCELLED, f"cancelled by {context.actor}")
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    return Outcome(after, f"status: {transition(context.ticket.status, after.status)}", events=(event,))
