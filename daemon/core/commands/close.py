"""#close: the ticket is done; nothing is sent to the customer."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, command, status_only
from daemon.core.values import Status


@command("close", "#close", "close the ticket (nothing is sent to the customer)")
def close(context: Context, args: str) -> Outcome | CommandError:
    return status_only(context, args, Status.CLOSED, f"closed by {context.actor}")
