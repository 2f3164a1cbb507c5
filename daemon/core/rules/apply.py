"""Turning the rules' outcome into ticket changes and events.

Fields and tags first, in the order the rules set them (a later rule wins); then the
assignment (round robin within a group, or the owner of a module); then the priority:
set outright by a rule, else from the impact x urgency matrix, except that questions and
feature requests (`setup.low_priority_types`) default to low unless a rule set impact or
urgency. An agent's priority (`priority_locked`) is never changed by rules. On a follow-up
the priority is computed again only when a rule changed type, impact or urgency.

Events: one `rule` event per fired rule with what it did, plus `assign` and `priority`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from daemon.core.priority import priority_for
from daemon.core.rules.model import RuleOutcome
from daemon.core.values import EventDraft, Facts, Level, Priority, Setup, TicketView

SYSTEM = "postdesk"
PRIORITY_INPUTS = frozenset({"type", "impact", "urgency"})


def apply_outcome(ticket: TicketView, outcome: RuleOutcome, setup: Setup,
                  facts: Facts) -> tuple[TicketView, tuple[EventDraft, ...]]:
    after = with_fields(ticket, outcome.fields)
    if outcome.add_tags:
        after = replace(after, tags=tuple(dict.fromkeys((*after.tags, *outcome.add_tags))))
    after, assigned = assign(after, outcome, setup, facts)
    after, prioritised = prioritise(ticket, after, outcome, setup)
    return after, (*rule_events(outcome), *assigned, *prioritised)


def with_fields(ticket: TicketView, fields: tuple[tuple[str, str], ...]) -> TicketView:
    changes: dict[str, Any] = {}
    for name, value in fields:
        if name in ("impact", "urgency"):
            changes[name] = Level(value)
        elif name == "priority":
            if not ticket.priority_locked:
                changes[name] = Priority(value)
        elif name == "owner":
            changes[name] = value.lower()
        else:
            changes[name] = value
    return replace(ticket, **changes) if changes else ticket


def rule_events(outcome: RuleOutcome) -> tuple[EventDraft, ...]:
    """One event per fired rule: "rule 'vip' (rules/60-routing.toml:12) did: set priority high"."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for rule, where, words in outcome.effects:
        grouped.setdefault((rule, where), []).append(words)
    return tuple(EventDraft(SYSTEM, "rule", (("rule", rule), ("where", where), ("did", "; ".join(did))))
                 for (rule, where), did in grouped.items())


def assign(ticket: TicketView, outcome: RuleOutcome, setup: Setup,
           facts: Facts) -> tuple[TicketView, tuple[EventDraft, ...]]:
    if outcome.assign is None:
        return ticket, ()
    how, target = outcome.assign
    if how == "round_robin":
        agent = next_in_group(target, setup, facts)
        why = f"round robin in group {target}" if agent else f"group {target} has no agents; assigned to the group"
        after = replace(ticket, group=target, owner=agent or ticket.owner)
    else:
        agent = dict(outcome.modules).get(target)
        why = f"owner of module {target}" if agent else f"no agent owns module {target}; owner unchanged"
        after = replace(ticket, owner=agent or ticket.owner)
    detail = (("owner_from", ticket.owner or ""), ("owner_to", after.owner or ""),
              ("group_from", ticket.group), ("group_to", after.group), ("why", f"rules: {why}"))
    return after, (EventDraft(SYSTEM, "assign", detail),)


def next_in_group(group: str, setup: Setup, facts: Facts) -> str | None:
    """The group's agent after the one it last got a ticket (config order, wrapping), or the first."""
    members = [agent.email for agent in setup.agents if group in agent.groups]
    if not members:
        return None
    last = dict(facts.last_assigned).get(group)
    if last not in members:
        return members[0]
    return members[(members.index(last) + 1) % len(members)]


def prioritise(before: TicketView, after: TicketView, outcome: RuleOutcome,
               setup: Setup) -> tuple[TicketView, tuple[EventDraft, ...]]:
    set_here = {name for name, _ in outcome.fields}
    if after.priority_locked:
        if not set_here & (PRIORITY_INPUTS | {"priority"}):
            return after, ()
        return after, (EventDraft(SYSTEM, "priority", (("from", after.priority.value), ("to", after.priority.value),
                                                       ("locked", "yes"), ("why", "set by an agent: rules keep it"))),)
    if "priority" in set_here or (before.number != 0 and not set_here & PRIORITY_INPUTS):
        return after, ()
    if after.type in setup.low_priority_types and not set_here & {"impact", "urgency"}:
        wanted, why = Priority.LOW, f"{after.type} tickets default to low priority"
    else:
        wanted = priority_for(after.impact, after.urgency, setup)
        why = f"from impact {after.impact.value} x urgency {after.urgency.value}"
    if wanted is after.priority:
        return after, ()
    event = EventDraft(SYSTEM, "priority", (("from", after.priority.value), ("to", wanted.value), ("locked", "no"),
                                            ("why", f"rules: {why}")))
    return replace(after, priority=wanted), (event,)
