"""#new customer@example.com: an agent opens a ticket on a customer's behalf (the phone call).

The mail goes to the support address with no ticket; `#new` is its first line. The customer
becomes the requester and gets the acknowledgement; the rest of the text is the ticket's first
message (not relayed); later commands of the same mail apply to the new ticket.
"""

from __future__ import annotations

import re
from dataclasses import replace
from email.utils import parseaddr

from daemon.core.commands import CommandError, Context, Outcome, command
from daemon.core.values import Address, OutboundDraft, OutboundKind

_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


@command("new", "#new CUSTOMER-ADDRESS", "first line of a new mail: open a ticket for this customer")
def new_ticket(context: Context, args: str) -> Outcome | CommandError:
    ticket = context.ticket
    if ticket.number != 0:
        return CommandError(f"#new opens a ticket: send it in a new mail to the support address, not in a reply "
                            f"to ticket #{ticket.number}")
    if ticket.requester.email != context.mail.sender.email:
        return CommandError("#new can open one ticket per mail")
    customer = customer_address(args)
    if customer is None:
        return CommandError(f"#new needs the customer's address, e.g. #new olena@customer.example (got "
                            f"{args.strip() or 'nothing'!r})")
    setup = context.setup
    if customer.email in setup.own_addresses or setup.agent(customer.email) is not None:
        return CommandError(f"{customer.email} is {'an agent' if setup.agent(customer.email) else 'our address'};"
                            " #new needs a customer's address")
    after = replace(ticket, requester=customer, cc=tuple(a for a in ticket.cc if a.email != customer.email))
    acknowledgement = OutboundDraft(kind=OutboundKind.ACKNOWLEDGEMENT, to=(customer,),
                                    language=after.language or setup.default_language, auto=True)
    event = context.event("created", ("from", context.actor), ("requester", customer.email),
                          ("message_id", context.mail.message_id),
                          ("why", f"opened by {context.actor} on behalf of {customer.email}"))
    return Outcome(after, f"ticket opened for {customer.formatted()}; the acknowledgement was sent to them",
                   events=(event,), drafts=(acknowledgement,), sends_text=True)


def customer_address(args: str) -> Address | None:
    """`olena@customer.example` or `Olena Petrenko <olena@customer.example>`."""
    name, email = parseaddr(args.strip())
    email = email.strip().lower()
    return Address(email, name.strip()) if _ADDRESS.match(email) else None
