"""#wait: the message below is a question to the customer; the ticket waits for the answer
(the customer's reply opens it again, see decide.customer_status_change)."""

from __future__ import annotations

from daemon.core import notify
from daemon.core.commands import CommandError, Context, Outcome, change_status, command, no_arguments, transition
from daemon.core.values import OutboundKind, Status


@command("wait", "#wait", "ask the customer the question below and wait for the answer")
def wait(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    if not context.text.strip():
        return CommandError("#wait needs the question for the customer: write it below the command lines")
    changed = change_status(context, context.ticket, Status.WAITING_CUSTOMER,
                            f"{context.actor} asked the customer for information")
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    draft = notify.agent_answer(OutboundKind.INFO_REQUEST, after, context.agent, context.text, context.setup,
                                context.attachments)
    return Outcome(after, f"status: {transition(context.ticket.status, after.status)}; the question was sent to "
                   "the customer", events=(event,), drafts=(draft,), sends_text=True)
