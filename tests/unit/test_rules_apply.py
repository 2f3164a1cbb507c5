"""Applying the rules' outcome to a ticket: fields, tags, round robin, module owners, the
impact x urgency matrix, low-priority types, explicit and locked priorities, and events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from daemon.core.priority import priority_for
from daemon.core.rules.apply import apply_outcome, next_in_group
from daemon.core.rules.model import RuleOutcome
from daemon.core.values import Address, AgentView, Facts, Level, Priority, Setup, Status, TicketView

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SETUP = Setup(secret=b"0123456789abcdef0123", domain="example.com", agents=(
    AgentView("alice@example.com", groups=("l1",)), AgentView("carol@example.com", groups=("l1", "l2")),
    AgentView("bob@example.com", groups=("l2",)), AgentView("dave@example.com", groups=("l1",))))
NEW = TicketView(number=0, subject="Printer", status=Status.NEW, requester=Address("olena@customer.example"),
                 created_at=NOW, status_changed_at=NOW)
OPEN = replace(NEW, number=12, status=Status.OPEN, priority=Priority.HIGH, impact=Level.HIGH, urgency=Level.MEDIUM,
               owner="bob@example.com", group="l2", tags=("printing",))


def apply(outcome: RuleOutcome, ticket: TicketView = NEW, setup: Setup = SETUP, facts: Facts | None = None):
    return apply_outcome(ticket, outcome, setup, facts or Facts())


def with_fields(*fields: tuple[str, str], **more: object) -> RuleOutcome:
    return RuleOutcome(fields=fields, **more)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# The matrix


@pytest.mark.parametrize(("impact", "urgency", "priority"), [
    ("high", "high", "urgent"), ("high", "medium", "high"), ("medium", "high", "high"), ("high", "low", "medium"),
    ("low", "high", "medium"), ("medium", "medium", "medium"), ("medium", "low", "low"), ("low", "medium", "low"),
    ("low", "low", "low"),
])
def test_default_matrix(impact: str, urgency: str, priority: str) -> None:
    assert priority_for(Level(impact), Level(urgency), SETUP) is Priority(priority)
    ticket, _events = apply(with_fields(("impact", impact), ("urgency", urgency)))
    assert (ticket.impact.value, ticket.urgency.value, ticket.priority.value) == (impact, urgency, priority)


def test_the_operators_matrix_overrides_the_default() -> None:
    setup = replace(SETUP, priority_matrix=(("medium", "medium", "low"), ("high", "high", "high")))
    assert priority_for(Level.HIGH, Level.HIGH, setup) is Priority.HIGH
    assert priority_for(Level.HIGH, Level.MEDIUM, setup) is Priority.HIGH  # default row
    ticket, events = apply(RuleOutcome(), setup=setup)  # a new ticket with no rule at all: medium x medium
    assert ticket.priority is Priority.LOW
    assert [e.kind for e in events] == ["priority"]
    assert events[0].as_dict()["why"] == "rules: from impact medium x urgency medium"


def test_priority_event_says_from_to_and_why() -> None:
    ticket, events = apply(with_fields(("impact", "high"), ("urgency", "high")))
    assert ticket.priority is Priority.URGENT
    assert events[-1].kind == "priority"
    assert events[-1].as_dict() == {"from": "medium", "to": "urgent", "locked": "no",
                                    "why": "rules: from impact high x urgency high"}


# ----------------------------------------------------------------------------------------
# Low-priority types and explicit priorities


@pytest.mark.parametrize("kind", ["question", "feature_request"])
def test_questions_and_feature_requests_default_to_low(kind: str) -> None:
    ticket, events = apply(with_fields(("type", kind)))
    assert ticket.priority is Priority.LOW
    assert events[-1].as_dict()["why"] == f"rules: {kind} tickets default to low priority"


def test_a_low_type_follows_the_matrix_when_a_rule_sets_impact_or_urgency() -> None:
    ticket, _ = apply(with_fields(("type", "question"), ("urgency", "high")))
    assert ticket.priority is Priority.HIGH
    ticket, _ = apply(with_fields(("impact", "high"), ("type", "feature_request")))
    assert ticket.priority is Priority.HIGH


def test_the_low_types_come_from_the_setup() -> None:
    ticket, _ = apply(with_fields(("type", "question")), setup=replace(SETUP, low_priority_types=()))
    assert ticket.priority is Priority.MEDIUM


def test_an_explicit_priority_wins() -> None:
    ticket, events = apply(with_fields(("impact", "high"), ("urgency", "high"), ("priority", "low")))
    assert ticket.priority is Priority.LOW
    assert "priority" not in [e.kind for e in events]
    ticket, _ = apply(with_fields(("type", "question"), ("priority", "high")))
    assert ticket.priority is Priority.HIGH


def test_the_last_value_set_wins() -> None:
    ticket, _ = apply(with_fields(("urgency", "high"), ("urgency", "low"), ("category", "a"), ("category", "b")))
    assert (ticket.urgency, ticket.category, ticket.priority) == (Level.LOW, "b", Priority.LOW)


def test_an_agents_priority_is_kept() -> None:
    locked = replace(OPEN, priority=Priority.LOW, priority_locked=True)
    ticket, events = apply(with_fields(("priority", "urgent"), ("impact", "high")), ticket=locked)
    assert ticket.priority is Priority.LOW and ticket.impact is Level.HIGH
    assert events[-1].as_dict() == {"from": "low", "to": "low", "locked": "yes",
                                    "why": "set by an agent: rules keep it"}


def test_a_follow_up_keeps_its_priority_unless_a_rule_changes_its_inputs() -> None:
    ticket, events = apply(with_fields(("category", "x")), ticket=OPEN)
    assert ticket.priority is Priority.HIGH and events == ()
    ticket, _ = apply(with_fields(("urgency", "high")), ticket=OPEN)
    assert ticket.priority is Priority.URGENT


# ----------------------------------------------------------------------------------------
# Fields and tags


def test_fields_and_tags_are_set() -> None:
    outcome = RuleOutcome(fields=(("type", "service_request"), ("category", "printing"), ("group", "l2"),
                                  ("owner", "Bob@Example.com"), ("sla_policy", "gold")), add_tags=("vip", "printing"))
    ticket, _ = apply(outcome, ticket=replace(NEW, tags=("printing",)))
    assert (ticket.type, ticket.category, ticket.group, ticket.owner, ticket.sla_policy) == (
        "service_request", "printing", "l2", "bob@example.com", "gold")
    assert ticket.tags == ("printing", "vip")


def test_nothing_to_do_changes_nothing() -> None:
    assert apply(RuleOutcome(), ticket=OPEN) == (OPEN, ())


# ----------------------------------------------------------------------------------------
# Assignment


@pytest.mark.parametrize(("last", "expected"), [
    (None, "alice@example.com"),  # nobody yet: the first of the group in config order
    ("alice@example.com", "carol@example.com"),
    ("carol@example.com", "dave@example.com"),
    ("dave@example.com", "alice@example.com"),  # wraps around
    ("bob@example.com", "alice@example.com"),  # not (or no longer) in the group: start again
])
def test_round_robin_in_config_order(last: str | None, expected: str) -> None:
    facts = Facts(last_assigned=(("l2", "carol@example.com"),) + ((("l1", last),) if last else ()))
    assert next_in_group("l1", SETUP, facts) == expected
    ticket, events = apply(RuleOutcome(assign=("round_robin", "l1")), facts=facts)
    assert (ticket.owner, ticket.group) == (expected, "l1")
    assign = next(e for e in events if e.kind == "assign").as_dict()
    assert assign == {"owner_from": "", "owner_to": expected, "group_from": "", "group_to": "l1",
                      "why": "rules: round robin in group l1"}


def test_round_robin_in_a_group_without_agents_assigns_the_group() -> None:
    ticket, events = apply(RuleOutcome(assign=("round_robin", "l9")))
    assert (ticket.owner, ticket.group) == (None, "l9")
    assert events[0].as_dict()["why"] == "rules: group l9 has no agents; assigned to the group"


def test_module_owner() -> None:
    outcome = RuleOutcome(assign=("module", "scheduling"), modules=(("billing", "alice@example.com"),
                                                                    ("scheduling", "bob@example.com")))
    ticket, events = apply(outcome)
    assert ticket.owner == "bob@example.com"
    assert events[0].as_dict()["why"] == "rules: owner of module scheduling"
    ticket, events = apply(replace(outcome, assign=("module", "playout")), ticket=OPEN)
    assert ticket.owner == "bob@example.com"
    assert events[0].as_dict()["why"] == "rules: no agent owns module playout; owner unchanged"


# ----------------------------------------------------------------------------------------
# Events: which rules fired and what they did


def test_one_event_per_fired_rule() -> None:
    outcome = RuleOutcome(fired=("vip-customers", "first-line"), fields=(("priority", "high"),), effects=(
        ("vip-customers", "rules/60-routing.toml:12", "set priority high"),
        ("vip-customers", "rules/60-routing.toml:12", "added tag vip"),
        ("first-line", "rules/60-routing.toml:20", "assigned round robin in group l1")),
        add_tags=("vip",), assign=("round_robin", "l1"))
    _, events = apply(outcome)
    assert [(e.actor, e.kind, e.as_dict()) for e in events[:2]] == [
        ("postdesk", "rule", {"rule": "vip-customers", "where": "rules/60-routing.toml:12",
                              "did": "set priority high; added tag vip"}),
        ("postdesk", "rule", {"rule": "first-line", "where": "rules/60-routing.toml:20",
                              "did": "assigned round robin in group l1"}),
    ]
    assert [e.kind for e in events[2:]] == ["assign"]
