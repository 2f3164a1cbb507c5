"""#urgency high|medium|low; the priority follows the impact x urgency matrix unless set by hand."""

from __future__ import annotations

from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.commands.impact import set_level


@command("urgency", "#urgency high|medium|low", "set the urgency (the priority follows unless set by hand)")
def set_urgency(context: Context, args: str) -> Outcome | CommandError:
    return set_level(context, args, "urgency")
