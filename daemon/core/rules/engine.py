"""Evaluating the rules for one mail: each rule in order, its trace, and the outcome.

Rules run in the order `load_rules` put them (file names, then their place in the file).
A rule whose condition holds fires: its actions run in the order written, and a later rule
may override what an earlier one set; `stop = true` ends the evaluation after that rule.
Field values are read once per mail; traces are prebuilt at load, so evaluating a rule that
does not match allocates nothing.
"""

from __future__ import annotations

from daemon.core.rules.actions import alert_key_of
from daemon.core.rules.model import FieldValues, OutcomeDraft, RuleInput, RuleOutcome, RuleSet, RuleTrace
from daemon.core.values import InboundMail


def evaluate(rules: RuleSet, subject: RuleInput) -> RuleOutcome:
    """Every rule's verdict for this mail and what the matching rules decided."""
    values = FieldValues(subject)
    draft = OutcomeDraft()
    trace: list[RuleTrace] = []
    fired: list[str] = []
    for rule in rules.rules:
        condition = rule.condition
        failed = None if condition is None else condition.check(values)
        if failed is not None:
            trace.append(failed)
            continue
        trace.append(rule.matched)
        fired.append(rule.name)
        where = rule.where
        for act in rule.actions:
            draft.effects.append((rule.name, where, act(draft, values)))
        if rule.stop:
            draft.effects.append((rule.name, where, "stopped the evaluation"))
            break
    return _outcome(draft, trace, fired, rules)


def _outcome(draft: OutcomeDraft, trace: list[RuleTrace], fired: list[str], rules: RuleSet) -> RuleOutcome:
    return RuleOutcome(
        trace=tuple(trace), fired=tuple(fired), fields=tuple(draft.fields), add_tags=tuple(dict.fromkeys(draft.tags)),
        assign=draft.assign, acknowledgement=draft.acknowledgement, answer=draft.answer,
        third_party=draft.third_party, hold=draft.hold, drop=draft.drop, alert=draft.alert,
        effects=tuple(draft.effects), modules=rules.modules,
    )


def alert_key(rules: RuleSet, mail: InboundMail, mailbox: str) -> str:
    """The key of the first alert rule that matches the mail, or "" (before the store lookup:
    alert rules should look only at the mail, not at the ticket or the contact)."""
    values = FieldValues(RuleInput(mail, mailbox, None, None, mail.date, "UTC"))
    for rule in rules.rules:
        if rule.alert is None:
            continue
        if rule.condition is None or rule.condition.check(values) is None:
            key = alert_key_of(rule.alert, values)
            if key:
                return key
    return ""
