"""#third-party NAME: the ticket is passed to a vendor or another team and waits for them.
When NAME is an address, the message below goes to it (THIRD_PARTY), not to the customer."""

from __future__ import annotations

import re
from dataclasses import replace
from email.utils import parseaddr

from daemon.core.commands import CommandError, Context, Outcome, change_status, command, transition
from daemon.core.values import Address, EventDraft, OutboundDraft, OutboundKind, Status, TicketView, Visibility

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MAX_CHARS = 200


@command("third-party", "#third-party NAME|ADDRESS",
         "pass to a third party and wait; to an ADDRESS the text below is mailed to it")
def pass_to_third_party(context: Context, args: str) -> Outcome | CommandError:
    name = " ".join(args.split())
    if not name:
        return CommandError("#third-party needs the third party: a name (#third-party Acme) or an address "
                            "(#third-party support@acme.example) that the text below is mailed to")
    if len(name) > MAX_CHARS:
        return CommandError(f"a third party's name has at most {MAX_CHARS} characters")
    address = vendor_address(name)
    if address is not None and not context.text.strip():
        return CommandError(f"write the message for {address.email} below the command lines")
    moved = _waiting(context, name)
    if isinstance(moved, CommandError):
        return moved
    after, events = moved
    result = f"status: {transition(context.ticket.status, after.status)}; third party: {name}"
    if address is None:
        return Outcome(after, result, events=events)
    draft = OutboundDraft(kind=OutboundKind.THIRD_PARTY, to=(address,), language=after.language or
                          context.setup.default_language, auto=False,
                          sender_name=context.agent.name or context.agent.email,
                          variables=(("text", context.text),), attachments=context.attachments,
                          visibility=Visibility.INTERNAL)
    return Outcome(after, f"{result}; the message was sent to {address.email}", events=events, drafts=(draft,),
                   sends_text=True)


def _waiting(context: Context, name: str) -> tuple[TicketView, tuple[EventDraft, ...]] | CommandError:
    ticket = context.ticket
    passed = context.event("third_party", ("from", ticket.third_party), ("to", name),
                           ("why", f"passed to third party by {context.actor}"))
    if ticket.status is Status.WAITING_THIRD_PARTY:
        return replace(ticket, third_party=name), (passed,)
    changed = change_status(context, ticket, Status.WAITING_THIRD_PARTY, f"passed to third party {name}")
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    return replace(after, third_party=name), (event, passed)


def vendor_address(name: str) -> Address | None:
    """`support@acme.example` or `Acme <support@acme.example>` as an address; None for a plain name."""
    display, email = parseaddr(name)
    if not _ADDRESS.match(email):
        return None
    return Address(email.lower(), display)
