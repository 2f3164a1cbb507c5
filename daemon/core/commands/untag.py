"""#untag T...: remove tags; naming a tag the ticket does not have is an error."""

from __future__ import annotations

from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.commands.tag import tag_words


@command("untag", "#untag TAG...", "remove tags")
def remove_tags(context: Context, args: str) -> Outcome | CommandError:
    words = tag_words(args, "#untag")
    if isinstance(words, CommandError):
        return words
    ticket = context.ticket
    missing = [w for w in words if w not in ticket.tags]
    if missing:
        has = ", ".join(ticket.tags) or "none"
        return CommandError(f"ticket #{ticket.number} has no tag {', '.join(missing)} (its tags: {has})")
    after = replace(ticket, tags=tuple(t for t in ticket.tags if t not in words))
    event = context.event("untag", ("removed", ", ".join(words)), ("why", f"by {context.actor}"))
    return Outcome(after, f"tags: - {', '.join(words)}", events=(event,))
