"""#status: the ticket's state, in the confirmation mail to the agent."""

from __future__ import annotations

from datetime import UTC, datetime

from daemon.core.commands import CommandError, Context, Outcome, command, no_arguments
from daemon.core.values import TicketView


@command("status", "#status", "mail me the ticket's state", on_final=True, acts=False)
def show_status(context: Context, args: str) -> Outcome | CommandError:
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    return Outcome(context.ticket, state_lines(context.ticket))


def state_lines(ticket: TicketView) -> str:
    priority = f"{ticket.priority.value} (impact {ticket.impact.value}, urgency {ticket.urgency.value}" \
        + (", set by hand)" if ticket.priority_locked else ")")
    rows = [
        ("ticket", f"#{ticket.number} {ticket.subject}"),
        ("status", f"{ticket.status.value} since {_when(ticket.status_changed_at)}"),
        ("priority", priority),
        ("type", ticket.type), ("category", ticket.category),
        ("owner", ticket.owner or ""), ("group", ticket.group),
        ("requester", ticket.requester.formatted()),
        ("cc", ", ".join(a.email for a in ticket.cc)), ("tags", ", ".join(ticket.tags)),
        ("links", ", ".join(f"{link.kind} {link.ref}" for link in ticket.links)),
        ("third party", ticket.third_party), ("resolution code", ticket.resolution_code),
        ("merged into", f"#{ticket.merged_into}" if ticket.merged_into else ""),
        ("created", _when(ticket.created_at)), ("first response", _when(ticket.first_response_at)),
        ("resolved", _when(ticket.resolved_at)), ("closed", _when(ticket.closed_at)),
        ("SLA policy", ticket.sla_policy),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name + ':':<{width + 1}} {value or '-'}" for name, value in rows)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
