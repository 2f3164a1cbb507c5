"""#category C: the ticket's category (free text; `-` clears it)."""

from __future__ import annotations

from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command, transition

MAX_CHARS = 200


@command("category", "#category CATEGORY", "set the category (- clears it)")
def set_category(context: Context, args: str) -> Outcome | CommandError:
    wanted = " ".join(args.split())
    if not wanted:
        return CommandError("#category needs a category, e.g. #category printers (or #category - to clear it)")
    if len(wanted) > MAX_CHARS:
        return CommandError(f"a category has at most {MAX_CHARS} characters")
    wanted = "" if wanted == "-" else wanted
    ticket = context.ticket
    after = replace(ticket, category=wanted)
    event = context.event("category", ("from", ticket.category), ("to", wanted), ("why", f"set by {context.actor}"))
    return Outcome(after, f"category: {transition(ticket.category, wanted)}", events=(event,))
