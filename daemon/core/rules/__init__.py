"""The rules engine: operators' rule files (`rules/*.toml`) → triage, routing, answers.

    load.py        load_rules(files, agents, groups, template_kinds, ...) -> (RuleSet, problems)
    engine.py      evaluate(rules, RuleInput) -> RuleOutcome (with the trace); alert_key(rules, mail, mailbox)
    apply.py       apply_outcome(ticket, outcome, setup, facts) -> (ticket, events)
    model.py       RuleInput, RuleTrace, RuleOutcome, RuleSet and the compiled Rule
    fields.py      FIELDS: what a condition can read      operators.py  OPERATORS: how it tests it
    conditions.py  a `when` table -> one Condition        actions.py    ACTIONS: what a rule does
    lines.py       FILE:LINE of a key in a rule file

The registries are plain dicts filled at import; `load.Registries` lets a test pass its own.
`rules/README.md` documents the file format for operators.
"""
