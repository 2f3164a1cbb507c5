"""#tag T...: add tags (words separated by spaces or commas)."""

from __future__ import annotations

import re
from dataclasses import replace

from daemon.core.commands import CommandError, Context, Outcome, command

_TAG = re.compile(r"^[\w][\w.:/+-]{0,63}$")


def tag_words(args: str, usage: str) -> tuple[str, ...] | CommandError:
    """The tags in `args`, lower-case and without repeats, or an error naming the bad one."""
    words = [w.lower() for w in re.split(r"[\s,]+", args.strip()) if w]
    if not words:
        return CommandError(f"{usage} needs at least one tag, e.g. {usage} printer vip")
    bad = next((w for w in words if not _TAG.match(w)), None)
    if bad is not None:
        return CommandError(f"{bad!r} is not a tag: letters, digits and . : / + - _ only, at most 64 characters")
    return tuple(dict.fromkeys(words))


@command("tag", "#tag TAG...", "add tags")
def add_tags(context: Context, args: str) -> Outcome | CommandError:
    words = tag_words(args, "#tag")
    if isinstance(words, CommandError):
        return words
    ticket = context.ticket
    added = tuple(w for w in words if w not in ticket.tags)
    if not added:
        return Outcome(ticket, f"tags: already {', '.join(words)}")
    after = replace(ticket, tags=(*ticket.tags, *added))
    event = context.event("tag", ("added", ", ".join(added)), ("why", f"by {context.actor}"))
    return Outcome(after, f"tags: + {', '.join(added)}", events=(event,))
