"""Compiling a rule's `when` table into one `Condition`.

`compile_condition` turns the table into a `Condition` whose `check` returns None when it
holds, or the rule's prebuilt failure trace naming the condition that failed, so evaluating
allocates nothing. The fields and operators come from the registries in `fields.py` and
`operators.py` (tests may pass their own).

A condition table holds entries that must all be true:
    FIELD = "text"                       # equals
    FIELD = ["a", "b"]                   # in (one of)
    FIELD = { OPERATOR = ARGUMENT, ... } # each operator must hold; options case_sensitive, timezone
    all = [ {...}, {...} ]   any = [ {...}, {...} ]   not = {...}
A field with many values (recipients, attachments, header values, tags) holds when any value does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from daemon.core.rules.fields import FIELDS, FieldSpec, valid_timezone
from daemon.core.rules.model import (
    Condition,
    FieldRef,
    FieldValues,
    Issue,
    KeyPath,
    RuleError,
    RuleTrace,
    Test,
    WordIndex,
)
from daemon.core.rules.operators import OPERATORS, Operator, describe, strings


@dataclass
class Compiling:
    """What compiling one rule needs; collects the issues. Lives only during loading."""

    rule: str
    file: str
    line: int
    issues: list[Issue]
    refs: dict[str, FieldRef] = field(default_factory=dict)  # shared by all rules: one cache entry per field
    fields: Mapping[str, FieldSpec] = field(default_factory=lambda: FIELDS)
    operators: Mapping[str, Operator] = field(default_factory=lambda: OPERATORS)

    def fail(self, why: str) -> RuleTrace:
        return RuleTrace(self.rule, self.file, self.line, False, why)

    def issue(self, path: KeyPath, message: str, hint: str = "") -> None:
        self.issues.append(Issue(path, message, hint))

    def ref(self, name: str, spec: FieldSpec, param: str, fold: bool) -> FieldRef:
        key = f"{name}|{param}|{int(fold)}"
        if key not in self.refs:
            shown = f"{name}.{param}" if spec.param == "name" else name
            self.refs[key] = FieldRef(key, shown, spec.extract, param, fold)
        return self.refs[key]


COMBINATORS = ("all", "any", "not")
_RULE_PARTS = ("then", "stop", "name", "description")
OPTIONS = ("case_sensitive", "timezone")


def compile_condition(table: object, path: KeyPath, c: Compiling) -> Condition | None:
    """A condition table (entries that must all hold) → one Condition; issues go to `c`."""
    if not isinstance(table, dict) or not table:
        c.issue(path, f"a condition must be a non-empty table such as {{ subject = {{ contains = \"invoice\" }} }}, "
                f"not {describe(table)}")
        return None
    parts = [_compile_entry(str(key), value, (*path, str(key)), c) for key, value in table.items()]
    return _all([p for p in parts if p is not None], c) if all(parts) else None


def _compile_entry(key: str, value: object, path: KeyPath, c: Compiling) -> Condition | None:
    if key in COMBINATORS:
        return _compile_combinator(key, value, path, c)
    name, dot, param = key.partition(".")
    spec = c.fields.get(name)
    if spec is None:
        known = ", ".join([*sorted(c.fields), *COMBINATORS])
        pitfall = (" (in TOML every key after a [rule.when] header belongs to it: put the actions under "
                   "[rule.then] and stop = true before [rule.when] or in [rule.then])") if name in _RULE_PARTS else ""
        c.issue(path, f"unknown field {key!r}{pitfall}; expected one of: {known}", key)
        return None
    if spec.param == "name":
        return _compile_named(name, spec, param if dot else None, value, path, c)
    if dot:
        c.issue(path, f"field {name!r} takes no .NAME; write {name} = ...", key)
        return None
    return _compile_field(name, spec, "", value, path, c)


def _compile_named(name: str, spec: FieldSpec, param: str | None, value: object, path: KeyPath,
                   c: Compiling) -> Condition | None:
    """header.NAME, contact.NAME, ticket.NAME: `header.x-mailer = ...` or `header = { x-mailer = ... }`."""
    if param is not None:
        return _compile_param(name, spec, param.lower(), value, path, c)
    if not isinstance(value, dict) or not value:
        c.issue(path, f"{name} needs a name: write {name}.NAME = ... (e.g. {_example(name)})")
        return None
    parts = [_compile_param(name, spec, str(k).lower(), v, (*path, str(k)), c) for k, v in value.items()]
    return _all([p for p in parts if p is not None], c) if all(parts) else None


def _example(name: str) -> str:
    return {"header": "header.x-priority", "contact": "contact.contract", "ticket": "ticket.status"}.get(
        name, f"{name}.x")


def _compile_param(name: str, spec: FieldSpec, param: str, value: object, path: KeyPath,
                   c: Compiling) -> Condition | None:
    if not param:
        c.issue(path, f"{name}. needs a name after the dot (e.g. {_example(name)})")
        return None
    if spec.params is not None and param not in spec.params:
        c.issue(path, f"unknown field {name}.{param}; expected one of: "
                + ", ".join(f"{name}.{p}" for p in spec.params), param)
        return None
    choices = spec.params[param] if spec.params is not None else spec.choices
    return _compile_field(name, FieldSpec(spec.extract, spec.help, spec.param, choices, spec.shape), param,
                          value, path, c)


def _compile_field(name: str, spec: FieldSpec, param: str, value: object, path: KeyPath,
                   c: Compiling) -> Condition | None:
    if isinstance(value, bool | str | int | float):
        return _compile_tests(name, spec, param, {"equals": value}, path, c)
    if isinstance(value, list):
        return _compile_tests(name, spec, param, {"in": value}, path, c)
    if isinstance(value, dict) and value:
        return _compile_tests(name, spec, param, value, path, c)
    c.issue(path, f"{name} needs a test: a string (equals), a list (in) or a table of operators such as "
            "{ contains = \"text\" }")
    return None


def _compile_tests(name: str, spec: FieldSpec, param: str, tests: dict[str, object], path: KeyPath,
                   c: Compiling) -> Condition | None:
    case_sensitive = tests.get("case_sensitive", False)
    if not isinstance(case_sensitive, bool):
        c.issue((*path, "case_sensitive"), "case_sensitive must be true or false")
        return None
    chosen = _timezone_option(spec, param, tests.get("timezone"), path, c)
    if chosen is None:
        return None
    leaves = [_leaf(name, spec, chosen, str(op), argument, case_sensitive, (*path, str(op)), c)
              for op, argument in tests.items() if op not in OPTIONS]
    if not leaves:
        c.issue(path, f"{name} has no operator; expected one of: {', '.join(c.operators)}")
        return None
    return _all([x for x in leaves if x is not None], c) if all(leaves) else None


def _timezone_option(spec: FieldSpec, param: str, timezone: object, path: KeyPath, c: Compiling) -> str | None:
    if timezone is None:
        return param
    if spec.param != "timezone":
        c.issue((*path, "timezone"), "only weekday, time and date take a timezone")
        return None
    if not isinstance(timezone, str) or not valid_timezone(timezone):
        c.issue((*path, "timezone"), f"unknown timezone {timezone!r}; expected an IANA name such as "
                "\"Europe/Kyiv\" or \"UTC\"", str(timezone))
        return None
    return timezone


def _leaf(name: str, spec: FieldSpec, param: str, op_name: str, argument: object, case_sensitive: bool,
          path: KeyPath, c: Compiling) -> Condition | None:
    op = c.operators.get(op_name)
    if op is None:
        c.issue(path, f"unknown operator {op_name!r}; expected one of: {', '.join([*c.operators, *OPTIONS])}",
                op_name)
        return None
    try:
        _check_values(spec, op, argument)
        test = op.build(argument, case_sensitive)
    except RuleError as error:
        shown = f"{name}.{param}" if spec.param == "name" else name
        c.issue(path, f"{shown} {op_name}: {error}", _hint(argument))
        return None
    ref = c.ref(name, spec, param, op.folds and not case_sensitive)
    says, denies = _words(ref, op, argument)
    if op.form == "words":
        return make_word_condition(ref, test, c.fail(denies), says)
    return make_condition(ref, test, c.fail(denies), says)


def _words(ref: FieldRef, op: Operator, argument: object) -> tuple[str, str]:
    """The condition in words, and its failure: 'subject contains "a" or "b"'."""
    if isinstance(argument, bool) and not op.whole:  # exists = true / false
        says, denies = (op.says, op.denies) if argument else (op.denies, op.says)
        return f"{ref.name} {says}", f"{ref.name} {denies}"
    shown = op.joiner.join(f'"{text}"' for text in strings(argument))
    return f"{ref.name} {op.says} {shown}", f"{ref.name} {op.denies} {shown}"


def make_condition(ref: FieldRef, test: Test, failed: RuleTrace, says: str) -> Condition:
    def check(values: FieldValues) -> RuleTrace | None:
        return None if test(values.get(ref)) else failed

    return Condition(check, says)


def make_word_condition(ref: FieldRef, test: Callable[[WordIndex], bool], failed: RuleTrace,
                        says: str) -> Condition:
    def check(values: FieldValues) -> RuleTrace | None:
        return None if test(values.words(ref)) else failed

    return Condition(check, says)


def _check_values(spec: FieldSpec, op: Operator, argument: object) -> None:
    if not op.whole or not (spec.choices or spec.shape) or isinstance(argument, dict):
        return
    for text in strings(argument) if isinstance(argument, list | str | bool | int | float) else ():
        if spec.choices and text.lower() not in spec.choices:
            raise RuleError(f"{text!r} is never a value of this field; expected one of: {', '.join(spec.choices)}")
        if spec.shape and not re.fullmatch(spec.shape, text):
            raise RuleError(f"{text!r} has the wrong form; expected {_shape_words(spec.shape)}")


def _shape_words(shape: str) -> str:
    return {r"\d\d:\d\d": "HH:MM such as \"08:30\"", r"\d{4}-\d\d-\d\d": "YYYY-MM-DD"}.get(shape, shape)


def _hint(argument: object) -> str:
    if isinstance(argument, str):
        return argument
    if isinstance(argument, list) and argument and isinstance(argument[0], str):
        return argument[0]
    return ""


def _compile_combinator(key: str, value: object, path: KeyPath, c: Compiling) -> Condition | None:
    if key == "not":
        inner = compile_condition(value, path, c)
        return None if inner is None else _not(inner, c)
    if not isinstance(value, list) or not value:
        c.issue(path, f"{key} must be a non-empty list of condition tables such as "
                f"[{{ subject = {{ contains = \"a\" }} }}, {{ body = {{ contains = \"b\" }} }}]")
        return None
    parts = [compile_condition(item, (*path, index), c) for index, item in enumerate(value)]
    if not all(parts):
        return None
    conditions = [p for p in parts if p is not None]
    return _all(conditions, c) if key == "all" else _any(conditions, c)


def _all(parts: list[Condition], c: Compiling) -> Condition:
    if len(parts) == 1:
        return parts[0]
    checks = tuple(p.check for p in parts)

    def check(values: FieldValues) -> RuleTrace | None:
        for one in checks:
            failed = one(values)
            if failed is not None:
                return failed
        return None

    return Condition(check, " and ".join(p.says for p in parts))


def _any(parts: list[Condition], c: Compiling) -> Condition:
    if len(parts) == 1:
        return parts[0]
    checks = tuple(p.check for p in parts)
    says = " or ".join(f"({p.says})" if " and " in p.says else p.says for p in parts)
    failed = c.fail("none of: " + "; ".join(p.says for p in parts))

    def check(values: FieldValues) -> RuleTrace | None:
        for one in checks:
            if one(values) is None:
                return None
        return failed

    return Condition(check, says)


def _not(inner: Condition, c: Compiling) -> Condition:
    failed = c.fail(f"{inner.says} (the rule says not)")
    inner_check = inner.check

    def check(values: FieldValues) -> RuleTrace | None:
        return failed if inner_check(values) is None else None

    return Condition(check, f"not ({inner.says})")
