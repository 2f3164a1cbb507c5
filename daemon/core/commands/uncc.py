"""#uncc ADDR...: stop copying people on the ticket's mails."""

from __future__ import annotations

from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.commands.cc import addresses


@command("uncc", "#uncc ADDRESS...", "remove people from the copy list")
def remove_cc(context: Context, args: str) -> Outcome | CommandError:
    found = addresses(args, "#uncc")
    if isinstance(found, CommandError):
        return found
    ticket = context.ticket
    present = {c.email for c in ticket.cc}
    missing = [a for a in found if a not in present]
    if missing:
        now = ", ".join(sorted(present)) or "nobody"
        return CommandError(f"{', '.join(missing)} is not in copy of ticket #{ticket.number} (in copy: {now})")
    after = replace(ticket, cc=tuple(c for c in ticket.cc if c.email not in found))
    event = context.event("uncc", ("removed", ", ".join(found)), ("why", f"by {context.actor}"))
    return Outcome(after, f"cc: - {', '.join(found)}", events=(event,))
