"""#help: the command list, generated from the registry."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, command, help_text, no_arguments


@command("help", "#help", "mail me this list", on_final=True, acts=False)
def show_help(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    return Outcome(context.ticket, "Commands (one per line at the top of your reply; the rest is your message):\n"
                   + help_text(context.registry))
