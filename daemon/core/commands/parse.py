"""Command lines → parsed commands: the `#name args` lines at the top of an agent's new text.

    #assign bob            ← commands: one per line, blank lines between them allowed
    #priority high

    The printer is fixed.  ← the message: everything from the first other line on
    #this is text          ← a '#' line further down is message text

Names are case-insensitive; `#third_party` is `#third-party`. Only the agent's own new text
is read (the parser already cut quoted history and signature).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.core.values import InboundMail, Setup

_COMMAND = re.compile(r"^#([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$")
_TICKET_NUMBER = re.compile(r"^(?:ticket\s+)?#?\s*(\d{1,12})$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class CommandLine:
    name: str  # lower-case, '_' written as '-'
    args: str  # the rest of the line, trimmed
    line: str  # the line as written, trimmed


@dataclass(frozen=True, slots=True)
class AgentText:
    commands: tuple[CommandLine, ...]
    message: str  # the new text without the command lines (leading/trailing blank lines dropped)


def split_commands(new_text: str) -> AgentText:
    lines = new_text.replace("\r\n", "\n").split("\n")
    commands: list[CommandLine] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        parsed = command_line(line)
        if line and parsed is None:
            break
        if parsed is not None:
            commands.append(parsed)
        index += 1
    rest = lines[index:]
    while rest and not rest[-1].strip():
        rest.pop()
    return AgentText(commands=tuple(commands), message="\n".join(line.rstrip() for line in rest))


def command_line(line: str) -> CommandLine | None:
    match = _COMMAND.match(line.strip())
    if match is None:
        return None
    name = match.group(1).lower().replace("_", "-")
    return CommandLine(name=name, args=(match.group(2) or "").strip(), line=line.strip())


def ticket_number(text: str) -> int | None:
    """`57`, `#57`, `ticket 57`, `ticket #57` → 57."""
    match = _TICKET_NUMBER.match(text.strip())
    return int(match.group(1)) if match else None


def named_tickets(mail: InboundMail, setup: Setup) -> tuple[int, ...]:
    """Ticket numbers an agent's `#merge N` / `#link N` lines name, for the store to load too
    (`ThreadKeys.extra_numbers`); () for anyone who is not a configured agent."""
    if setup.agent(mail.sender.email) is None:
        return ()
    numbers: list[int] = []
    for line in split_commands(mail.new_text).commands:
        number = ticket_number(line.args) if line.name in ("merge", "link") else None
        if number is not None and number not in numbers:
            numbers.append(number)
    return tuple(numbers)
