"""#priority urgent|high|medium|low|auto: set the priority by hand (impact and urgency then no
longer change it), or `auto` to let the impact x urgency matrix decide again."""

from __future__ import annotations

from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command, one_of, transition
from daemon.core.priority import priority_for
from daemon.core.values import Priority

CHOICES = (*(p.value for p in Priority), "auto")


@command("priority", "#priority urgent|high|medium|low|auto",
         "set the priority by hand (auto: follow impact x urgency again)")
def set_priority(context: Context, args: str) -> Outcome | CommandError:
    choice = one_of(args, CHOICES, "priority")
    if isinstance(choice, CommandError):
        return choice
    ticket = context.ticket
    if choice == "auto":
        wanted = priority_for(ticket.impact, ticket.urgency, context.setup)
        after = replace(ticket, priority=wanted, priority_locked=False)
        how = f"from impact {ticket.impact.value} x urgency {ticket.urgency.value}"
    else:
        after = replace(ticket, priority=Priority(choice), priority_locked=True)
        how = "set by hand"
    event = context.event("priority", ("from", ticket.priority.value), ("to", after.priority.value),
                          ("locked", "yes" if after.priority_locked else "no"), ("why", f"{how}, by {context.actor}"))
    return Outcome(after, f"priority: {transition(ticket.priority, after.priority)} ({how})", events=(event,))
