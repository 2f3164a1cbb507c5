"""Agents' inline commands: the registry and what every command is given and gives back.

One module per command, named as agents type it (`resolve.py` for `#resolve`); each
registers itself with a decorator:

    @command("priority", "#priority urgent|high|medium|low", "set the priority by hand")
    def set_priority(context: Context, args: str) -> Outcome | CommandError: ...

A command is a pure function of the ticket as the earlier commands of the mail left it
(`context.ticket`), its arguments, the agent and the message text; it returns the ticket
after, with events, drafts and one result line, or a `CommandError`. The engine in
`agentmail.py` applies a mail's commands all or nothing. `#help` and the error mail list
the registry. `REGISTRY` is a plain dict filled when this package is imported; tests may
build and pass their own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from daemon.core import lifecycle
from daemon.core.values import (
    AgentView,
    Attachment,
    EventDraft,
    Facts,
    InboundMail,
    OutboundDraft,
    Setup,
    Status,
    TicketView,
)


@dataclass(frozen=True, slots=True)
class Context:
    """What a command sees."""

    ticket: TicketView  # as the earlier commands of this mail left it (number 0: a ticket being created)
    agent: AgentView
    line: str  # the command line as the agent wrote it
    text: str  # the message: the agent's new text below the command lines
    mail: InboundMail
    facts: Facts
    setup: Setup
    now: datetime
    registry: Mapping[str, Command]

    @property
    def actor(self) -> str:
        return self.agent.email

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return self.mail.attachments

    def event(self, kind: str, *detail: tuple[str, str]) -> EventDraft:
        """An event by this agent, saying which command line caused it."""
        return EventDraft(self.agent.email, kind, (*detail, ("command", self.line)))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did."""

    ticket: TicketView
    result: str  # for the agent's confirmation; one line (#status and #help: several)
    events: tuple[EventDraft, ...] = ()
    drafts: tuple[OutboundDraft, ...] = ()
    sends_text: bool = False  # the message went out in this command's own mail (#resolve, #wait, ...)
    keeps_internal: bool = False  # #note: nothing of the mail goes to the customer
    merge_into: int | None = None  # #merge: the store merges the ticket into this one


@dataclass(frozen=True, slots=True)
class CommandError:
    """Why a command line cannot be carried out, in words for the agent."""

    message: str


Handler = Callable[[Context, str], Outcome | CommandError]


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # as typed after '#', lower-case
    syntax: str  # "#assign AGENT|GROUP"
    help: str  # one line
    run: Handler
    on_final: bool = False  # may run on a closed or cancelled ticket
    acts: bool = True  # counts as the agent's action on the ticket (a new ticket becomes open)


REGISTRY: dict[str, Command] = {}


def command(name: str, syntax: str, help: str, *, on_final: bool = False, acts: bool = True,
            registry: dict[str, Command] | None = None) -> Callable[[Handler], Handler]:
    """Register the decorated function as `#name` (in `registry`, by default the shipped one)."""
    target = REGISTRY if registry is None else registry

    def register(run: Handler) -> Handler:
        if name in target:
            raise ValueError(f"command #{name} is registered twice")
        target[name] = Command(name=name, syntax=syntax, help=help, run=run, on_final=on_final, acts=acts)
        return run

    return register


# ----------------------------------------------------------------------------------------
# What the registry tells agents


def help_entries(registry: Mapping[str, Command]) -> list[dict[str, str]]:
    """The `commands` template variable: name, syntax, help of each command, in name order."""
    return [{"name": c.name, "syntax": c.syntax, "help": c.help} for c in sorted(registry.values(),
                                                                                   key=lambda c: c.name)]


def help_text(registry: Mapping[str, Command], names: tuple[str, ...] = ()) -> str:
    """The command list (or only these commands) as lines for a mail."""
    entries = [e for e in help_entries(registry) if not names or e["name"] in names]
    width = max((len(e["syntax"]) for e in entries), default=0)
    return "\n".join(f"  {e['syntax'].ljust(width)}  {e['help']}" for e in entries)


def unknown_command(name: str, registry: Mapping[str, Command]) -> str:
    close = difflib.get_close_matches(name, list(registry), n=1, cutoff=0.6)
    hint = f"; did you mean #{close[0]}?" if close else "; #help lists the commands"
    return f"unknown command #{name}{hint}"


# ----------------------------------------------------------------------------------------
# Helpers the commands share


def change_status(context: Context, ticket: TicketView, wanted: Status, why: str) -> tuple[TicketView,
                                                                                          EventDraft] | CommandError:
    """The ticket in `wanted` status with its event, if the status machine allows the step."""
    if ticket.status is wanted:
        return CommandError(f"ticket #{ticket.number} is already {wanted.value}")
    if not lifecycle.can_change(ticket.status, wanted):
        return CommandError(f"ticket #{ticket.number} is {ticket.status.value}; it cannot become {wanted.value}")
    after = lifecycle.with_status(ticket, wanted, context.now)
    event = lifecycle.status_event(ticket, after, context.actor, why)
    return after, EventDraft(event.actor, event.kind, (*event.detail, ("command", context.line)))


def status_only(context: Context, args: str, wanted: Status, why: str) -> Outcome | CommandError:
    """A command that takes no arguments and only moves the ticket to `wanted` (close, cancel...)."""
    bad = no_arguments(context, args)
    if bad is not None:
        return bad
    changed = change_status(context, context.ticket, wanted, why)
    if isinstance(changed, CommandError):
        return changed
    after, event = changed
    return Outcome(after, f"status: {transition(context.ticket.status, after.status)}", events=(event,))


def no_arguments(context: Context, args: str) -> CommandError | None:
    if args.strip():
        return CommandError(f"{context.line.split()[0]} takes no arguments (got {args.strip()!r})")
    return None


def one_of(word: str, choices: tuple[str, ...], what: str) -> str | CommandError:
    """`word` as one of `choices` (case-insensitive; '-' and '_' alike), or an error naming them."""
    wanted = word.strip().lower().replace("-", "_")
    for choice in choices:
        if choice.lower().replace("-", "_") == wanted:
            return choice
    shown = word.strip() or "nothing"
    return CommandError(f"{shown!r} is not a valid {what}; use one of: {', '.join(choices)}")


def transition(before: str, after: str) -> str:
    return f"{before or '-'} → {after or '-'}"


# The commands, imported here so that importing the package fills REGISTRY (no scanning).
from daemon.core.commands import (  # noqa: E402
    assign,
    cancel,
    category,
    cc,
    close,
    escalate,
    help,
    impact,
    link,
    merge,
    new,
    note,
    priority,
    received,
    reopen,
    resolve,
    status,
    tag,
    take,
    third_party,
    uncc,
    untag,
    urgency,
    wait,
)
from daemon.core.commands import type as type_  # noqa: E402

__all__ = [
    "REGISTRY", "Command", "CommandError", "Context", "Outcome", "assign", "cancel", "category", "cc",
    "change_status", "close", "command", "escalate", "help", "help_entries", "help_text", "impact", "link",
    "merge", "new", "no_arguments", "note", "one_of", "priority", "received", "reopen", "resolve", "status",
    "tag", "take", "third_party", "transition", "type_", "uncc", "unknown_command", "untag", "urgency", "wait",
]
