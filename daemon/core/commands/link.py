"""#link REF: a change request, a defect report or another ticket.

    #link #57 · #link ticket 57        → LinkRef("ticket", "57")
    #link CR-1234 · #link change CR-1234 → LinkRef("change", "CR-1234")
    #link DR-77 · #link defect DR-77     → LinkRef("defect", "DR-77")
"""

from __future__ import annotations

import re
from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.commands.parse import ticket_number
from daemon.core.values import LinkRef

_KINDS = {"ticket": "ticket", "change": "change", "cr": "change", "defect": "defect", "dr": "defect",
          "bug": "defect"}
_BARE = ((re.compile(r"^(CR|CHG|RFC)-?\d+$", re.IGNORECASE), "change"),
         (re.compile(r"^(DR|DEF|BUG)-?\d+$", re.IGNORECASE), "defect"))
_REF = re.compile(r"^[\w.:/#-]{1,100}$")
USAGE = "#link #57, #link change CR-1234 or #link defect DR-77"


@command("link", "#link [ticket|change|defect] REF", "link another ticket, a change request or a defect report")
def link(context: Context, args: str) -> Outcome | CommandError:
    found = link_ref(args)
    if isinstance(found, CommandError):
        return found
    if found.kind == "ticket":
        checked = _ticket_link(context, found)
        if isinstance(checked, CommandError):
            return checked
        found = checked
    ticket = context.ticket
    if found in ticket.links:
        return Outcome(ticket, f"link: already {found.kind} {found.ref}")
    after = replace(ticket, links=(*ticket.links, found))
    event = context.event("link", ("kind", found.kind), ("ref", found.ref), ("why", f"linked by {context.actor}"))
    return Outcome(after, f"link: + {found.kind} {found.ref}", events=(event,))


def link_ref(args: str) -> LinkRef | CommandError:
    words = args.split()
    number = ticket_number(args)
    if number is not None:
        return LinkRef("ticket", str(number))
    if len(words) == 2 and _KINDS.get(words[0].lower(), "ticket") != "ticket" and _REF.match(words[1]):
        return LinkRef(_KINDS[words[0].lower()], words[1])
    if len(words) == 1:
        kind = next((k for pattern, k in _BARE if pattern.match(words[0])), None)
        if kind is not None:
            return LinkRef(kind, words[0].upper())
    return CommandError(f"cannot tell what {args.strip() or 'nothing'!r} is; write {USAGE}")


def _ticket_link(context: Context, found: LinkRef) -> LinkRef | CommandError:
    target = context.facts.ticket(int(found.ref))
    if target is None:
        return CommandError(f"there is no ticket #{found.ref}")
    if target.number == context.ticket.number:
        return CommandError("a ticket cannot be linked to itself")
    return LinkRef("ticket", str(target.number))
