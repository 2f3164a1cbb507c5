"""Rule files (TOML text) → a checked, compiled `RuleSet`; every problem as FILE:LINE.

The caller reads the files; this module does no IO. Files are taken in the order of their
names ("10-monitoring.toml" before "20-refusals.toml"), rules in the order they stand in a
file. Every field, operator and action name is checked against the registries, every
argument against the config (agents, groups, templates, ticket types) and the `[modules]`
tables; a rule with a problem is left out of the set, and the problem says what is wrong
and what is expected.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from daemon.core.rules.actions import ACTIONS, ActionSpec, Scope, alert_act, alert_condition, compile_alert
from daemon.core.rules.conditions import Compiling, compile_condition
from daemon.core.rules.fields import FIELDS, FieldSpec
from daemon.core.rules.lines import LineFinder
from daemon.core.rules.model import Act, Alert, Condition, FieldRef, FieldValues, Issue, RuleError, RuleSet, RuleTrace
from daemon.core.rules.model import Rule as CompiledRule
from daemon.core.rules.operators import OPERATORS, Operator, describe
from daemon.errors import Problem

DEFAULT_TYPES = ("incident", "question", "feature_request", "service_request")
FILE_KEYS = ("rule", "modules")
RULE_KEYS = ("name", "description", "when", "then", "stop")


@dataclass(frozen=True, slots=True)
class Registries:
    """The fields, operators and actions rules may name (tests pass their own)."""

    fields: Mapping[str, FieldSpec] = field(default_factory=lambda: FIELDS)
    operators: Mapping[str, Operator] = field(default_factory=lambda: OPERATORS)
    actions: Mapping[str, ActionSpec] = field(default_factory=lambda: ACTIONS)


@dataclass(frozen=True, slots=True)
class _File:
    name: str
    table: dict[str, object]
    lines: LineFinder


def load_rules(files: Mapping[str, str], agents: Collection[str] = (), groups: Collection[str] = (),
               template_kinds: Collection[str] = (), ticket_types: Collection[str] = DEFAULT_TYPES,
               sla_policies: Collection[str] = (), registries: Registries | None = None,
               ) -> tuple[RuleSet, list[Problem]]:
    """Compile rule files (name → TOML text); the rules that have no problem, and the problems."""
    registries = registries or Registries()
    problems: list[Problem] = []
    parsed = [f for f in (_parse(name, files[name], problems) for name in sorted(files, key=file_order)) if f]
    modules = _modules(parsed, frozenset(a.lower() for a in agents), problems)
    refs: dict[str, FieldRef] = {}
    scope = Scope(agents=frozenset(a.lower() for a in agents), groups=frozenset(groups),
                  template_kinds=frozenset(template_kinds), ticket_types=frozenset(ticket_types),
                  sla_policies=frozenset(sla_policies), modules=frozenset(m for m, _ in modules),
                  field_ref=lambda name: _plain_ref(name, registries, refs))
    rules: list[CompiledRule] = []
    for file in parsed:
        rules += _file_rules(file, scope, registries, refs, problems)
    unique = _unique(rules, problems)
    order = {name: index for index, name in enumerate(sorted(files, key=file_order))}
    return (RuleSet(unique, modules, _round_robin_groups(parsed)),
            sorted(problems, key=lambda p: (order.get(p.file, 0), p.line)))


def _round_robin_groups(files: list[_File]) -> tuple[str, ...]:
    """The groups the rules' `then = { assign = { round_robin = "GROUP" } }` name."""
    found = set()
    for file in files:
        rules = file.table.get("rule", [])
        for rule in rules if isinstance(rules, list) else []:
            then = rule.get("then") if isinstance(rule, dict) else None
            assign = then.get("assign") if isinstance(then, dict) else None
            if isinstance(assign, dict) and isinstance(assign.get("round_robin"), str):
                found.add(assign["round_robin"])
    return tuple(sorted(found))


def file_order(name: str) -> tuple[str, str]:
    """Rule files run in the order of their file names, whatever folder they are in."""
    return name.replace("\\", "/").rsplit("/", 1)[-1], name


def _parse(name: str, text: str, problems: list[Problem]) -> _File | None:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
        problems.append(Problem(name, int(found.group(1)) if found else max(1, text.count("\n")),
                                f"TOML syntax error: {what}; expected valid TOML (see rules/README.md)"))
        return None
    file = _File(name, table, LineFinder(text))
    for key in table:
        if key not in FILE_KEYS:
            problems.append(Problem(name, file.lines.line_of(None, (key,)), f"unknown key {key!r}; expected "
                                    "[[rule]] tables and a [modules] table"))
    return file


def _modules(files: list[_File], agents: frozenset[str], problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    """The [modules] tables of all files: module name → the agent who owns it."""
    found: dict[str, str] = {}
    for file in files:
        table = file.table.get("modules", {})
        if not isinstance(table, dict):
            problems.append(Problem(file.name, file.lines.line_of(None, ("modules",)),
                                    "modules must be a table such as [modules] scheduling = \"bob@example.com\""))
            continue
        for module, owner in table.items():
            line = file.lines.line_of(None, ("modules", module))
            if not isinstance(owner, str) or owner.lower() not in agents:
                shown = repr(owner) if isinstance(owner, str) else describe(owner)
                problems.append(Problem(file.name, line, f"module {module!r}: {shown} is not an agent; "
                                        f"expected one of: {', '.join(sorted(agents)) or '(no agents configured)'}"))
            elif module in found:
                problems.append(Problem(file.name, line, f"module {module!r} is listed twice; each module has "
                                        "one owner"))
            else:
                found[module] = owner.lower()
    return tuple(found.items())


def _plain_ref(name: str, registries: Registries, refs: dict[str, FieldRef]) -> FieldRef | None:
    spec = registries.fields.get(name)
    if spec is None or spec.param == "name":
        return None
    key = f"{name}||0"
    return refs.setdefault(key, FieldRef(key, name, spec.extract, "", False))


def _file_rules(file: _File, scope: Scope, registries: Registries, refs: dict[str, FieldRef],
                problems: list[Problem]) -> list[CompiledRule]:
    entries = file.table.get("rule", [])
    if not isinstance(entries, list):
        problems.append(Problem(file.name, file.lines.line_of(None, ("rule",)),
                                "rule must be an array of tables: write each rule under its own [[rule]]"))
        return []
    rules: list[CompiledRule] = []
    for index, entry in enumerate(entries):
        issues: list[Issue] = []
        rule = _compile_rule(entry, Compiling("", file.name, file.lines.rule_line(index), issues, refs,
                                              registries.fields, registries.operators), scope, registries)
        problems += [Problem(file.name, file.lines.line_of(index, i.path, i.hint), i.message) for i in issues]
        if rule is not None and not issues:
            rules.append(rule)
    return rules


def _compile_rule(entry: object, c: Compiling, scope: Scope, registries: Registries) -> CompiledRule | None:
    if not isinstance(entry, dict):
        c.issue((), f"a rule must be a table, not {describe(entry)}")
        return None
    for key in entry:
        if key not in RULE_KEYS:
            c.issue((str(key),), f"unknown key {key!r} in a rule; expected one of: {', '.join(RULE_KEYS)}", str(key))
    c.rule = _name(entry, c)
    condition = compile_condition(entry["when"], ("when",), c) if "when" in entry else None
    actions, alert = _compile_actions(entry.get("then"), c, scope, registries)
    then = entry.get("then")
    stop = entry.get("stop", then.get("stop", False) if isinstance(then, dict) else False)
    if not isinstance(stop, bool):
        c.issue(("stop",), f"stop must be true or false, not {describe(stop)}")
    if not (set(then) - {"stop"} if isinstance(then, dict) else then) and stop is not True and not c.issues:
        c.issue(("then",) if "then" in entry else ("name",), "the rule does nothing; expected a [rule.then] table "
                "with at least one action, or stop = true")
    if alert is not None:
        guard = alert_condition(alert, c.fail(f"{alert.field.name} does not match the alert regex"))
        condition = guard if condition is None else _both(condition, guard)
    description = entry.get("description", "")
    if not isinstance(description, str):
        c.issue(("description",), f"description must be a string, not {describe(description)}")
    return CompiledRule(c.rule, c.file, c.line, condition, tuple(actions), RuleTrace(c.rule, c.file, c.line, True,
                        "matched"), stop is True, str(description), alert)


def _name(entry: dict[str, object], c: Compiling) -> str:
    name = entry.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    c.issue(("name",), "a rule needs a name = \"...\" (unique across the rule files), used in traces and events")
    return f"(unnamed rule at line {c.line})"


def _compile_actions(then: object, c: Compiling, scope: Scope, registries: Registries,
                     ) -> tuple[list[Act], Alert | None]:
    if then is None:
        return [], None
    if not isinstance(then, dict):
        c.issue(("then",), f"then must be a table of actions such as {{ priority = \"high\" }}, not {describe(then)}")
        return [], None
    actions: list[Act] = []
    alert: Alert | None = None
    for name, argument in then.items():
        if name == "stop":
            continue  # stop = true may stand in [rule.then] as well as at the rule's top
        spec = registries.actions.get(name)
        if spec is None:
            c.issue(("then", name), f"unknown action {name!r}; expected one of: {', '.join(registries.actions)}",
                    name)
            continue
        try:
            if name == "alert":
                alert = compile_alert(argument, scope)
                actions.append(alert_act(alert))
            else:
                actions.append(spec.build(argument, scope))
        except RuleError as error:
            c.issue(("then", name), f"{name}: {error}", _hint(argument))
    return actions, alert


def _hint(argument: object) -> str:
    if isinstance(argument, str):
        return argument
    if isinstance(argument, dict):
        return next((v for v in argument.values() if isinstance(v, str)), "")
    return ""


def _both(first: Condition, second: Condition) -> Condition:
    one, two = first.check, second.check

    def check(values: FieldValues) -> RuleTrace | None:
        return one(values) or two(values)

    return Condition(check, f"{first.says} and {second.says}")


def _unique(rules: list[CompiledRule], problems: list[Problem]) -> tuple[CompiledRule, ...]:
    """The rules with a name not used before; a repeated name is a problem and its rule is left out."""
    seen: dict[str, CompiledRule] = {}
    for rule in rules:
        if rule.name in seen:
            problems.append(Problem(rule.file, rule.line, f"duplicate rule name {rule.name!r} (first at "
                                    f"{seen[rule.name].where}); expected a name unique across the rule files"))
        else:
            seen[rule.name] = rule
    return tuple(seen.values())
