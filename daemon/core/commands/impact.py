"""#impact high|medium|low; the priority follows the impact x urgency matrix unless set by hand."""

from __future__ import annotations

from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command, one_of, transition
from daemon.core.priority import priority_for
from daemon.core.values import Level

LEVELS = tuple(level.value for level in Level)


@command("impact", "#impact high|medium|low", "set the impact (the priority follows unless set by hand)")
def set_impact(context: Context, args: str) -> Outcome | CommandError:
    return set_level(context, args, "impact")


def set_level(context: Context, args: str, field: str) -> Outcome | CommandError:
    """`field` ("impact" or "urgency") set to the level in `args`; the priority recomputed."""
    choice = one_of(args, LEVELS, field)
    if isinstance(choice, CommandError):
        return choice
    ticket = context.ticket
    old = ticket.impact if field == "impact" else ticket.urgency
    after = replace(ticket, impact=Level(choice)) if field == "impact" else replace(ticket, urgency=Level(choice))
    events = [context.event(field, ("from", old.value), ("to", choice), ("why", f"set by {context.actor}"))]
    result = f"{field}: {transition(old, choice)}"
    if not after.priority_locked:
        wanted = priority_for(after.impact, after.urgency, context.setup)
        if wanted is not after.priority:
            events.append(context.event("priority", ("from", after.priority.value), ("to", wanted.value),
                                        ("why", f"impact {after.impact.value} x urgency {after.urgency.value}")))
            result += f"; priority: {transition(after.priority, wanted)}"
            after = replace(after, priority=wanted)
    else:
        result += f"; priority stays {after.priority.value} (set by hand; #priority auto to follow the matrix)"
    return Outcome(after, result, events=tuple(events))
