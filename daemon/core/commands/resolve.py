"""#resolve [CODE]: the message below the commands is the resolution, sent to the customer."""

from __future__ import annotations

from dataclasses import replace

from daemon.core import notify
from daemon.core.commands import CommandError, Context, Outcome, change_status, command, one_of, transition
from daemon.core.values import OutboundKind, Status


@command("resolve", "#resolve [CODE]", "resolve; the text below is the resolution sent to the customer")
def resolve(context: Context, args: str) -> Outcome | CommandError:
    if not context.text.strip():
        return CommandError("#resolve needs the resolution: write it below the command lines (it is sent to "
                            "the customer)")
    code = args.strip()
    if code and context.setup.resolution_codes:
        known = one_of(code, context.setup.resolution_codes, "resolution code")
        if isinstance(known, CommandError):
            return known
        code = known
    why = f"resolved by {context.actor}" + (f" (code {code})" if code else "")
    changed = change_status(context, context.ticket, Status.RESOLVED, why)
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    after = replace(after, resolution_code=code)
    if code:
        event = replace(event, detail=(*event.detail, ("resolution_code", code)))
    draft = notify.agent_answer(OutboundKind.RESOLUTION, after, context.agent, context.text, context.setup,
                                context.attachments)
    result = f"status: {transition(context.ticket.status, after.status)}" + (f" (code {code})" if code else "") \
        + "; the resolution was sent to the customer"
    return Outcome(after, result, events=(event,), drafts=(draft,), sends_text=True)
