"""#take: the sender becomes the owner."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, command, no_arguments
from daemon.core.commands.assign import to_agent


@command("take", "#take", "take the ticket yourself")
def take(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    return to_agent(context, context.agent)
