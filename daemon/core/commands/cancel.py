"""#cancel: the ticket was opened by mistake or is withdrawn."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, command, status_only
from daemon.core.values import Status


@command("cancel", "#cancel", "cancel the ticket (opened by mistake, withdrawn)")
def cancel(context: Context, args: str) -> Outcome | CommandError:
    return status_only(context, args, Status.CANCELLED, f"cancelled by {context.actor}")
