"""#note: the whole message stays internal; nothing of the mail goes to the customer."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, command, no_arguments


@command("note", "#note", "keep the text below as an internal note (nothing goes to the customer)", on_final=True)
def note(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    if not context.text.strip():
        return CommandError("#note needs the note: write it below the command lines")
    event = context.event("note", ("chars", str(len(context.text))), ("why", f"internal note by {context.actor}"))
    return Outcome(context.ticket, "note: kept internal; nothing was sent to the customer", events=(event,),
                   keeps_internal=True)
