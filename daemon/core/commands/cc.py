"""#cc ADDR...: add people who receive the ticket's public mails."""

from __future__ import annotations

import re
from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.values import Address

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def addresses(args: str, usage: str) -> tuple[str, ...] | CommandError:
    """The addresses in `args` (separated by spaces or commas; <> allowed), lower-case."""
    words = [w.strip("<>").lower() for w in re.split(r"[\s,;]+", args.strip()) if w.strip("<>")]
    if not words:
        return CommandError(f"{usage} needs an address, e.g. {usage} petro@customer.example")
    bad = next((w for w in words if not _ADDRESS.match(w)), None)
    if bad is not None:
        return CommandError(f"{bad!r} is not an email address")
    return tuple(dict.fromkeys(words))


@command("cc", "#cc ADDRESS...", "add people in copy of the ticket's mails")
def add_cc(context: Context, args: str) -> Outcome | CommandError:
    found = addresses(args, "#cc")
    if isinstance(found, CommandError):
        return found
    ticket, setup = context.ticket, context.setup
    for address in found:
        if address == ticket.requester.email:
            return CommandError(f"{address} is the requester of ticket #{ticket.number}")
        if address in setup.own_addresses or setup.agent(address) is not None:
            return CommandError(f"{address} is {'an agent' if setup.agent(address) else 'our own address'}; "
                                "only customers can be in copy")
    added = tuple(a for a in found if a not in {c.email for c in ticket.cc})
    if not added:
        return Outcome(ticket, f"cc: already {', '.join(found)}")
    after = replace(ticket, cc=(*ticket.cc, *(Address(a) for a in added)))
    event = context.event("cc", ("added", ", ".join(added)), ("why", f"by {context.actor}"))
    return Outcome(after, f"cc: + {', '.join(added)}", events=(event,))
