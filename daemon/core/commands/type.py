"""#type T: one of the configured ticket types (`tickets.types`)."""

from __future__ import annotations

from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command, one_of, transition


@command("type", "#type TYPE", "set the ticket type (incident, question, ...)")
def set_type(context: Context, args: str) -> Outcome | CommandError:
    choice = one_of(args, context.setup.ticket_types, "ticket type")
    if isinstance(choice, CommandError):
        return choice
    ticket = context.ticket
    after = replace(ticket, type=choice)
    event = context.event("type", ("from", ticket.type), ("to", choice), ("why", f"set by {context.actor}"))
    return Outcome(after, f"type: {transition(ticket.type, choice)}", events=(event,))
