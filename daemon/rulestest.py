"""`postdesk rules test FILE.eml`: a dry run of the rules on one mail, nothing stored or sent.

The mail is parsed as intake would, its sender looked up in the contacts file, the rules
evaluated as for a new ticket, and the outcome applied to a ticket view that is never
stored. The report lists every rule (matched, or the condition that failed, or not
evaluated after a `stop`) and the decision; `format_report` prints it for a person.
Round robin is shown as the first agent of the group, since the database is not consulted.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from daemon.app import core_setup
from daemon.config import Config
from daemon.core.parse import parse
from daemon.core.rules.apply import apply_outcome
from daemon.core.rules.engine import evaluate
from daemon.core.rules.model import RuleInput, RuleOutcome, RuleSet
from daemon.core.tickets import new_ticket_view, requester_of
from daemon.core.values import ContactView, Facts, InboundMail, TicketView
from daemon.errors import ConfigError
from daemon.rulefiles import load_contacts, load_ruleset

WHY_WIDTH = 160  # the text report shortens a long condition; --json has it whole


def rules_test(config: Config, raw: bytes, mailbox: str, now: datetime) -> dict[str, Any]:
    """The report of a dry run; raises ConfigError when the rule or contacts files are broken."""
    rules, problems = load_ruleset(config)
    contacts, contact_problems = load_contacts(config.paths.contacts)
    if problems or contact_problems:
        raise ConfigError(problems + contact_problems)
    setup = core_setup(config)
    mail = parse(raw, received_at=now, max_attachment_bytes=setup.max_attachment_bytes,
                 reply_languages=setup.reply_languages)
    contact = next((c for c in contacts if c.email in (mail.sender.email, requester_of(mail).email)), None)
    outcome = evaluate(rules, RuleInput(mail, mailbox, None, contact, now, config.instance.timezone))
    ticket, events = apply_outcome(new_ticket_view(mail, Facts(contact=contact), setup, mailbox, now), outcome, setup,
                                   Facts())
    return {"mail": _mail(mail, mailbox, contact), "rules": _rules(rules, outcome),
            "decision": {**_decision(ticket, outcome), "events": [e.as_dict() | {"kind": e.kind} for e in events]}}


def _mail(mail: InboundMail, mailbox: str, contact: ContactView | None) -> dict[str, Any]:
    return {"from": mail.sender.email, "subject": mail.subject, "message_id": mail.message_id, "mailbox": mailbox,
            "as": "new ticket", "contact": None if contact is None else {
                "organisation": contact.organisation, "language": contact.language, **dict(contact.attributes)}}


def _rules(rules: RuleSet, outcome: RuleOutcome) -> list[dict[str, Any]]:
    shown = [{"rule": t.rule, "file": t.file, "line": t.line, "evaluated": True, "matched": t.matched, "why": t.why}
             for t in outcome.trace]
    stopper = outcome.fired[-1] if outcome.fired else ""
    for rule in rules.rules[len(outcome.trace):]:
        shown.append({"rule": rule.name, "file": rule.file, "line": rule.line, "evaluated": False, "matched": False,
                      "why": f"not evaluated: rule {stopper!r} stopped the evaluation"})
    return shown


def _decision(ticket: TicketView, outcome: RuleOutcome) -> dict[str, Any]:
    acknowledgement = {None: "default", "": "none"}.get(outcome.acknowledgement, outcome.acknowledgement)
    return {
        "type": ticket.type, "impact": ticket.impact.value, "urgency": ticket.urgency.value,
        "priority": ticket.priority.value, "category": ticket.category, "group": ticket.group, "owner": ticket.owner,
        "sla_policy": ticket.sla_policy, "tags": list(ticket.tags),
        "assign": None if outcome.assign is None else {"how": outcome.assign[0], "to": outcome.assign[1]},
        "acknowledgement": acknowledgement,
        "answer_and_close": None if outcome.answer is None else {"template": outcome.answer[0],
                                                                 "reason": outcome.answer[1]},
        "third_party": outcome.third_party, "hold": outcome.hold, "drop": outcome.drop,
        "alert": None if outcome.alert is None else {"state": outcome.alert[0], "key": outcome.alert[1]},
        "fired": list(outcome.fired),
    }


def format_report(report: dict[str, Any], base_dir: str = "") -> str:
    mail = report["mail"]
    lines = [f"mail: from {mail['from']}, subject {mail['subject']!r}, mailbox {mail['mailbox']}, as a new ticket"
             + ("" if mail["contact"] is None else f"; contact {mail['contact']}"), "", "rules:"]
    width = max((len(r["rule"]) for r in report["rules"]), default=4)
    for rule in report["rules"]:
        mark = "yes" if rule["matched"] else ("no" if rule["evaluated"] else "--")
        where = f"{_short(rule['file'], base_dir)}:{rule['line']}"
        why = "" if rule["matched"] else rule["why"]
        why = why if len(why) <= WHY_WIDTH else why[:WHY_WIDTH - 1] + "…"
        lines.append(f"  {mark:<4}{rule['rule']:<{width}}  {where:<28} {why}")
    if not report["rules"]:
        lines.append("  (no rules)")
    lines += ["", "decision (nothing stored or sent):"]
    decision = report["decision"]
    for key, value in decision.items():
        if key != "events" and value not in (None, "", []):
            lines.append(f"  {key + ':':<18}{_words(value)}")
    lines += [f"  event: {e['kind']}: " + ", ".join(f"{k}={v}" for k, v in e.items() if k != "kind")
              for e in decision["events"]]
    return "\n".join(lines)


def _short(file: str, base_dir: str) -> str:
    if not base_dir:
        return file
    relative = os.path.relpath(file, base_dir)
    return file if relative.startswith("..") else relative


def _words(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
