"""Actions: what a matching rule does, a registry of small functions filled at import.

`ACTIONS` maps the name used in a rule's `then` table to a builder that checks the argument
once at load (agents, groups, templates, levels; `RuleError` says what is expected) and
returns the `Act` the engine runs when the rule matches. An act writes its part into the
`OutcomeDraft` and returns what it did in words, for the ticket's events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from daemon.core.rules.conditions import make_condition
from daemon.core.rules.model import Act, Alert, Condition, FieldRef, FieldValues, OutcomeDraft, RuleError, RuleTrace
from daemon.core.rules.operators import compile_regex, describe, strings
from daemon.core.values import Level, Priority


@dataclass(frozen=True, slots=True)
class Scope:
    """The names actions may refer to, from the config, the templates and the rule files' [modules]."""

    agents: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    template_kinds: frozenset[str] = frozenset()
    ticket_types: frozenset[str] = frozenset()  # empty: any type
    sla_policies: frozenset[str] = frozenset()  # empty: any name
    modules: frozenset[str] = frozenset()
    field_ref: Callable[[str], FieldRef | None] = lambda name: None  # a simple field, case kept (for alert)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    build: Callable[[object, Scope], Act]
    help: str
    example: str


ACTIONS: dict[str, ActionSpec] = {}


def action(name: str, help_text: str, example: str) -> Callable[[Callable[[object, Scope], Act]],
                                                                Callable[[object, Scope], Act]]:
    def register(build: Callable[[object, Scope], Act]) -> Callable[[object, Scope], Act]:
        ACTIONS[name] = ActionSpec(build, help_text, example)
        return build

    return register


def text(argument: object) -> str:
    if not isinstance(argument, str) or not argument.strip():
        raise RuleError(f"expected a non-empty string, not {describe(argument)}")
    return argument.strip()


def choice(argument: object, choices: frozenset[str] | tuple[str, ...], what: str, *, open_when_empty: bool = False,
           ) -> str:
    """The argument, which must be one of `choices` (any name when there are none and `open_when_empty`)."""
    value = text(argument)
    if value in choices or (open_when_empty and not choices):
        return value
    expected = ", ".join(sorted(choices)) if choices else f"(no {what} is configured)"
    where = " (from the [modules] tables)" if what == "module" else ""
    raise RuleError(f"unknown {what} {value!r}; expected one of{where}: {expected}")


def set_field(name: str, value: str) -> Act:
    entry = (name, value)
    words = f"set {name} {value}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.fields.append(entry)
        return words

    return act


@action("type", "set the ticket type (one of [tickets] types)", 'type = "question"')
def _type(argument: object, scope: Scope) -> Act:
    return set_field("type", choice(argument, scope.ticket_types, "ticket type", open_when_empty=True))


_LEVELS = tuple(level.value for level in Level)


@action("impact", "set the impact: high, medium or low", 'impact = "high"')
def _impact(argument: object, scope: Scope) -> Act:
    return set_field("impact", choice(argument, _LEVELS, "impact"))


@action("urgency", "set the urgency: high, medium or low", 'urgency = "high"')
def _urgency(argument: object, scope: Scope) -> Act:
    return set_field("urgency", choice(argument, _LEVELS, "urgency"))


@action("priority", "set the priority outright (no impact x urgency matrix): urgent, high, medium or low",
        'priority = "high"')
def _priority(argument: object, scope: Scope) -> Act:
    return set_field("priority", choice(argument, tuple(p.value for p in Priority), "priority"))


@action("category", "set the category (free text)", 'category = "printing"')
def _category(argument: object, scope: Scope) -> Act:
    return set_field("category", text(argument))


@action("group", "set the work group (a group of [[agents]])", 'group = "l2"')
def _group(argument: object, scope: Scope) -> Act:
    return set_field("group", choice(argument, scope.groups, "group"))


@action("owner", "set the owner (an agent's email)", 'owner = "bob@example.com"')
def _owner(argument: object, scope: Scope) -> Act:
    return set_field("owner", choice(text(argument).lower(), scope.agents, "agent"))


@action("sla_policy", "set the SLA policy by name", 'sla_policy = "vip"')
def _sla_policy(argument: object, scope: Scope) -> Act:
    return set_field("sla_policy", choice(argument, scope.sla_policies, "SLA policy", open_when_empty=True))


@action("tags", "add tags to the ticket", 'tags = ["vip", "billing"]')
def _tags(argument: object, scope: Scope) -> Act:
    added = tuple(dict.fromkeys(t.strip() for t in strings(argument) if t.strip()))
    if not added:
        raise RuleError("expected a tag or a list of tags such as [\"vip\"]")
    words = "added tag" + ("s " if len(added) > 1 else " ") + ", ".join(added)

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.tags.extend(added)
        return words

    return act


@action("assign", "assign round robin within a group, or to the agent who owns a module ([modules])",
        'assign = { round_robin = "l1" }  or  assign = { module = "scheduling" }')
def _assign(argument: object, scope: Scope) -> Act:
    if not isinstance(argument, dict) or len(argument) != 1 or next(iter(argument)) not in ("round_robin", "module"):
        raise RuleError(f"expected {{ round_robin = \"GROUP\" }} or {{ module = \"NAME\" }}, not {describe(argument)}")
    how, target = next(iter(argument.items()))
    if how == "round_robin":
        chosen = ("round_robin", choice(target, scope.groups, "group"))
        words = f"assigned round robin in group {chosen[1]}"
    else:
        chosen = ("module", choice(target, scope.modules, "module"))
        words = f"assigned to the owner of module {chosen[1]}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.assign = chosen
        return words

    return act


@action("acknowledgement", "choose the acknowledgement template, or false to send none",
        'acknowledgement = false  or  acknowledgement = "acknowledgement"')
def _acknowledgement(argument: object, scope: Scope) -> Act:
    if argument is False or argument == "":
        chosen, words = "", "suppressed the acknowledgement"
    elif isinstance(argument, bool):
        raise RuleError("expected false (send none) or a template name such as \"acknowledgement\"")
    else:
        chosen = choice(argument, scope.template_kinds, "template")
        words = f"acknowledgement with template {chosen}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.acknowledgement = chosen
        return words

    return act


@action("answer_and_close", "answer with a template (the reason is a template variable) and close the ticket",
        'answer_and_close = { template = "refusal", reason = "your support contract has expired" }')
def _answer_and_close(argument: object, scope: Scope) -> Act:
    if not isinstance(argument, dict) or set(argument) - {"template", "reason"} or "reason" not in argument:
        raise RuleError(f"expected {{ template = \"refusal\", reason = \"...\" }} (template defaults to refusal), "
                        f"not {describe(argument)}")
    chosen = (choice(argument.get("template", "refusal"), scope.template_kinds, "template"), text(argument["reason"]))
    words = f"answered with template {chosen[0]} and closed: {chosen[1]}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.answer = chosen
        return words

    return act


_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@action("third_party", "send the ticket to a third party (a vendor) at this address",
        'third_party = "support@vendor.example"')
def _third_party(argument: object, scope: Scope) -> Act:
    address = text(argument).lower()
    if not _EMAIL.match(address):
        raise RuleError(f"{address!r} is not an email address; expected name@domain")
    words = f"sent to third party {address}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.third_party = address
        return words

    return act


@action("hold", "hold the mail for an agent to accept, with the reason", 'hold = "executable attachment"')
def _hold(argument: object, scope: Scope) -> Act:
    reason = text(argument)
    words = f"held for an agent: {reason}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.hold = reason
        return words

    return act


@action("drop", "drop the mail (recorded as an event, never silently), with the reason",
        'drop = "marked as spam by the mail server"')
def _drop(argument: object, scope: Scope) -> Act:
    reason = text(argument)
    words = f"dropped: {reason}"

    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        draft.drop = reason
        return words

    return act


# ----------------------------------------------------------------------------------------
# Monitoring alerts

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
ALERT_KEYS = ("state", "regex", "field", "key", "case_sensitive")


@action("alert", "a monitoring alert: problem or recovery, keyed by a regex over a field (the rule matches only "
        "when the regex does); repeats of a problem go to one ticket, the recovery resolves it",
        'alert = { state = "problem", regex = \'(?P<host>\\S+)/(?P<service>.+) is\', key = "{host}/{service}" }')
def _alert(argument: object, scope: Scope) -> Act:
    alert = compile_alert(argument, scope)
    return alert_act(alert)


def compile_alert(argument: object, scope: Scope) -> Alert:
    if not isinstance(argument, dict) or set(argument) - set(ALERT_KEYS) or not {"state", "regex"} <= set(argument):
        raise RuleError("expected { state = \"problem\" | \"recovery\", regex = '...', field = \"subject\", "
                        f"key = \"{{host}}/{{service}}\" }}, not {describe(argument)}")
    state = choice(argument["state"], ("problem", "recovery"), "alert state")
    name = text(argument.get("field", "subject"))
    ref = scope.field_ref(name)
    if ref is None:
        raise RuleError(f"unknown field {name!r} for an alert; expected a field such as subject, body, new_text")
    sensitive = argument.get("case_sensitive", False)
    pattern = compile_regex(text(argument["regex"]), sensitive is True)
    key = argument.get("key", "")
    if not isinstance(key, str):
        raise RuleError(f"key must be a string such as \"{{host}}/{{service}}\", not {describe(key)}")
    unknown = [n for n in _PLACEHOLDER.findall(key) if n not in pattern.groupindex]
    if unknown:
        raise RuleError(f"key names {', '.join(unknown)}, which the regex does not capture; expected names of "
                        f"(?P<name>...) groups: {', '.join(pattern.groupindex) or 'none'}")
    return Alert(state, ref, pattern, key)


def alert_key_of(alert: Alert, values: FieldValues) -> str:
    """The alert's key from the mail: the key template filled from the regex groups, case-folded; or ""."""
    for value in values.get(alert.field):
        match = alert.pattern.search(value)
        if match is not None:
            return _filled(alert.key, match)
    return ""


def _filled(template: str, match: re.Match[str]) -> str:
    if template:
        key = _PLACEHOLDER.sub(lambda name: match.group(name[1]) or "", template)
    else:
        key = "/".join(g for g in match.groups() if g) or match.group(0)
    return " ".join(key.split()).casefold()


def alert_act(alert: Alert) -> Act:
    def act(draft: OutcomeDraft, values: FieldValues) -> str:
        key = alert_key_of(alert, values)
        draft.alert = (alert.state, key)
        return f"alert {alert.state} {key}"

    return act


def alert_condition(alert: Alert, failed: RuleTrace) -> Condition:
    """The rule matches only when the alert regex finds its key in the field."""
    search = alert.pattern.search
    return make_condition(alert.field, lambda values: any(search(v) is not None for v in values), failed,
                          f"{alert.field.name} matches the alert regex")
