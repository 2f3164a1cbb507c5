"""Evaluating rules: every field, every operator, all/any/not, every action, stop, the trace,
monitoring keys, and the day/time conditions at a fixed `now` in a timezone."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from daemon.core.rules.engine import alert_key, evaluate
from daemon.core.rules.load import load_rules
from daemon.core.rules.model import RuleInput, RuleOutcome, RuleSet
from daemon.core.values import Address, Attachment, ContactView, InboundMail, Status, TicketView

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday; 12:00 in Kyiv
AGENTS = ("alice@example.com", "bob@example.com")

MAIL = InboundMail(
    message_id="m1@customer.example", subject="Printer on floor 2 is DOWN",
    sender=Address("olena@customer.example", "Olena Petrenko"), to=(Address("help@example.com"),),
    cc=(Address("taras@partner.example"),), reply_to=(Address("desk@customer.example"),),
    date=NOW, in_reply_to=(), references=(),
    headers=(("x-priority", "1 (Highest)"), ("x-mailer", "Thunderbird 128"), ("received", "from a"),
             ("received", "from b")),
    body_text="Nothing prints since this morning.\n\n> old quote about invoices\n",
    new_text="Nothing prints since this morning. Не працює взагалі.", quoted_text="> old quote about invoices",
    signature="", attachments=(Attachment("error-log.TXT", "text/plain", 10, "0" * 64, b"x"),
                               Attachment("photo.jpg", "image/jpeg", 10, "1" * 64, b"y")),
    raw_sha256="0" * 64, raw_size=100, language="uk",
)
CONTACT = ContactView("olena@customer.example", "Olena Petrenko", "Customer Ltd", "uk",
                      (("contract", "Expired"), ("tier", "vip")))
TICKET = TicketView(number=7, subject="Printer", status=Status.OPEN, requester=Address("olena@customer.example"),
                    created_at=NOW, status_changed_at=NOW, type="question", owner="bob@example.com", group="l2",
                    tags=("printing", "vip"), category="hardware")


def rules(text: str) -> RuleSet:
    loaded, problems = load_rules({"rules/10-test.toml": textwrap.dedent(text)}, AGENTS, ("l1", "l2"),
                                  ("acknowledgement", "refusal"))
    assert problems == [], [str(p) for p in problems]
    return loaded


def run(text: str, mail: InboundMail = MAIL, ticket: TicketView | None = None, contact: ContactView | None = CONTACT,
        now: datetime = NOW, timezone: str = "Europe/Kyiv") -> RuleOutcome:
    return evaluate(rules(text), RuleInput(mail, "local", ticket, contact, now, timezone))


def matches(when: str, **kwargs: object) -> bool:
    outcome = run(f'[[rule]]\nname = "r"\nwhen = {{ {when} }}\nthen = {{ tags = ["hit"] }}\n', **kwargs)
    return outcome.fired == ("r",)


# ----------------------------------------------------------------------------------------
# Fields


@pytest.mark.parametrize(("when", "expected"), [
    ('mailbox = "local"', True),
    ('mailbox = "other"', False),
    ('sender = "OLENA@customer.example"', True),
    ('sender_name = { contains = "petrenko" }', True),
    ('sender_domain = "customer.example"', True),
    ('sender_domain = "partner.example"', False),
    ('reply_to = "desk@customer.example"', True),
    ('to = "help@example.com"', True),
    ('to = "taras@partner.example"', False),
    ('cc = "taras@partner.example"', True),
    ('recipients = ["taras@partner.example"]', True),
    ('recipient_domain = "example.com"', True),
    ('subject = { contains = "floor 2" }', True),
    ('new_text = { contains = "не працює" }', True),
    ('new_text = { contains = "invoices" }', False),
    ('body = { contains = "invoices" }', True),
    ('language = "uk"', True),
    ('attachment_name = { glob = "*.txt" }', True),
    ('attachment_name = { glob = "*.pdf" }', False),
    ('attachment_type = { starts_with = "image/" }', True),
    ("is_new = true", True),
    ("is_new = false", False),
    ('"header.x-priority" = { starts_with = "1" }', True),
    ('header = { x-mailer = { contains = "thunderbird" } }', True),
    ('"header.received" = { contains = "from b" }', True),
    ('"header.x-missing" = { exists = false }', True),
    ('"header.x-missing" = { exists = true }', False),
    ('"contact.contract" = "expired"', True),
    ('"contact.organisation" = "customer ltd"', True),
    ('"contact.language" = "uk"', True),
    ('"contact.email" = { exists = true }', True),
    ('"contact.nothing" = { exists = true }', False),
    ('"ticket.status" = "open"', False),  # a new ticket has no ticket fields
    ('"ticket.owner" = { exists = false }', True),
])
def test_fields_of_a_new_ticket(when: str, expected: bool) -> None:
    assert matches(when) is expected


@pytest.mark.parametrize(("when", "expected"), [
    ("is_new = false", True),
    ('"ticket.status" = "open"', True),
    ('"ticket.status" = ["resolved", "closed"]', False),
    ('"ticket.type" = "question"', True),
    ('"ticket.owner" = "bob@example.com"', True),
    ('"ticket.group" = "l2"', True),
    ('"ticket.tags" = "vip"', True),
    ('"ticket.category" = "hardware"', True),
    ('"ticket.priority" = "medium"', True),
    ('"ticket.sla_policy" = { exists = false }', True),
])
def test_ticket_fields_of_a_follow_up(when: str, expected: bool) -> None:
    assert matches(when, ticket=TICKET) is expected


def test_no_contact_means_no_contact_values() -> None:
    assert not matches('"contact.contract" = "expired"', contact=None)
    assert matches('"contact.email" = { exists = false }', contact=None)


# ----------------------------------------------------------------------------------------
# Operators


@pytest.mark.parametrize(("when", "expected"), [
    ('subject = "printer on floor 2 is down"', True),  # equals: whole value, any case
    ('subject = { equals = "Printer" }', False),
    ('subject = ["a", "Printer on floor 2 is DOWN"]', True),  # in
    ('subject = { in = ["a", "b"] }', False),
    ('subject = { contains = "FLOOR" }', True),
    ('subject = { contains = ["nothing", "floor"] }', True),
    ('subject = { contains = "own" }', True),  # contains finds text inside words
    ('subject = { words = "own" }', False),  # words does not
    ('subject = { words = "down" }', True),
    ('subject = { words = ["floor 2 is", "x"] }', True),  # a phrase
    ('subject = { words = "floor is" }', False),
    ('new_text = { words = "не працює" }', True),
    ('subject = { starts_with = ["printer", "scanner"] }', True),
    ('subject = { ends_with = "down" }', True),
    ('subject = { regex = "floor \\\\d" }', True),
    ('subject = { regex = ["^scanner", "is (down|up)$"] }', True),
    ('subject = { regex = "^floor" }', False),
    ('sender = { glob = "*@customer.*" }', True),
    ('sender = { glob = ["*@partner.*", "olena@*"] }', True),
    ('sender = { glob = "*@partner.*" }', False),
    ('time = { between = ["09:00", "17:00"] }', True),
    ('time = { between = ["12:00", "12:01"] }', True),  # FROM inclusive
    ('time = { between = ["11:00", "12:00"] }', False),  # TO exclusive
    ('time = { between = ["18:00", "08:00"] }', False),  # wraps around midnight
    ('"header.x-priority" = { exists = true }', True),
])
def test_operators(when: str, expected: bool) -> None:
    assert matches(when) is expected


def test_case_sensitive_option() -> None:
    assert matches('subject = { contains = "DOWN", case_sensitive = true }')
    assert not matches('subject = { contains = "down", case_sensitive = true }')
    assert not matches('subject = { equals = "printer on floor 2 is down", case_sensitive = true }')
    assert not matches('subject = { regex = "down", case_sensitive = true }')
    assert matches('subject = { regex = "down" }')


def test_several_operators_on_one_field_must_all_hold() -> None:
    assert matches('subject = { contains = "printer", ends_with = "down" }')
    assert not matches('subject = { contains = "printer", ends_with = "up" }')


def test_all_any_not_nest() -> None:
    assert matches('any = [{ subject = "x" }, { all = [{ sender_domain = "customer.example" }, '
                   '{ not = { subject = { contains = "scanner" } } }] }]')
    assert not matches('not = { any = [{ subject = { contains = "printer" } }, { subject = "x" }] }')
    assert matches('all = [{ is_new = true }, { mailbox = "local" }]')


# ----------------------------------------------------------------------------------------
# Day and time in a timezone, at a fixed now


@pytest.mark.parametrize(("now", "when", "expected"), [
    (NOW, 'weekday = "tue"', True),  # 10:00 UTC Tuesday = 12:00 Tuesday in Kyiv
    (NOW, 'time = { between = ["12:00", "13:00"] }', True),
    (NOW, 'date = "2026-11-24"', True),
    (datetime(2026, 11, 24, 22, 30, tzinfo=UTC), 'weekday = "wed"', True),  # already Wednesday in Kyiv
    (datetime(2026, 11, 24, 22, 30, tzinfo=UTC), 'time = { between = ["18:00", "08:00"] }', True),
    (datetime(2026, 11, 24, 22, 30, tzinfo=UTC), 'date = { between = ["2026-11-25", "2026-12-01"] }', True),
    (datetime(2026, 11, 28, 9, 0, tzinfo=UTC), 'weekday = ["sat", "sun"]', True),
    (datetime(2026, 7, 1, 5, 30, tzinfo=UTC), 'time = "08:30"', True),  # summer time: UTC+3
])
def test_day_and_time_in_the_timezone(now: datetime, when: str, expected: bool) -> None:
    assert matches(when, now=now) is expected


def test_a_condition_may_name_its_own_timezone() -> None:
    assert matches('time = { equals = "05:00", timezone = "America/New_York" }')
    assert matches('weekday = { equals = "tue", timezone = "UTC" }', now=datetime(2026, 11, 24, 22, 30, tzinfo=UTC))


# ----------------------------------------------------------------------------------------
# The trace


def test_trace_names_the_condition_that_failed() -> None:
    outcome = run("""
        [[rule]]
        name = "vip"
        when = { sender_domain = ["vip.example", "big.example"] }
        then = { tags = ["vip"] }

        [[rule]]
        name = "words"
        [rule.when]
        any = [{ subject = { words = "scanner" } }, { new_text = { contains = ["fax", "toner"] } }]
        [rule.then]
        tags = ["x"]

        [[rule]]
        name = "negated"
        when = { not = { subject = { contains = "printer" } } }
        then = { tags = ["x"] }

        [[rule]]
        name = "second-fails"
        when = { is_new = true, "header.x-spam" = { exists = true } }
        then = { tags = ["x"] }

        [[rule]]
        name = "hit"
        when = { subject = { regex = "floor \\\\d" } }
        then = { tags = ["x"] }
    """)
    assert [(t.rule, t.line, t.matched, t.why) for t in outcome.trace] == [
        ("vip", 2, False, 'sender_domain is none of "vip.example", "big.example"'),
        ("words", 7, False, 'none of: subject has the words "scanner"; new_text contains "fax" or "toner"'),
        ("negated", 14, False, 'subject contains "printer" (the rule says not)'),
        ("second-fails", 19, False, "header.x-spam is missing"),
        ("hit", 24, True, "matched"),
    ]
    assert all(t.file == "rules/10-test.toml" for t in outcome.trace)
    assert outcome.fired == ("hit",)


def test_rule_without_when_always_matches() -> None:
    assert run('[[rule]]\nname = "always"\nthen = { tags = ["x"] }\n').fired == ("always",)


# ----------------------------------------------------------------------------------------
# Actions


def test_every_action_lands_in_the_outcome() -> None:
    outcome = run("""
        [modules]
        scheduling = "bob@example.com"

        [[rule]]
        name = "everything"
        [rule.then]
        type = "question"
        impact = "high"
        urgency = "low"
        priority = "urgent"
        category = "printing"
        group = "l2"
        owner = "Alice@Example.com"
        sla_policy = "gold"
        tags = ["vip", "printing", "vip"]
        assign = { round_robin = "l1" }
        acknowledgement = "refusal"
        answer_and_close = { template = "refusal", reason = "contract expired" }
        third_party = "Support@Vendor.example"
        hold = "check the attachment"
        drop = "spam"
    """)
    assert outcome.fields == (("type", "question"), ("impact", "high"), ("urgency", "low"), ("priority", "urgent"),
                              ("category", "printing"), ("group", "l2"), ("owner", "alice@example.com"),
                              ("sla_policy", "gold"))
    assert outcome.add_tags == ("vip", "printing")
    assert outcome.assign == ("round_robin", "l1")
    assert outcome.acknowledgement == "refusal"
    assert outcome.answer == ("refusal", "contract expired")
    assert outcome.third_party == "support@vendor.example"
    assert outcome.hold == "check the attachment"
    assert outcome.drop == "spam"
    assert outcome.alert is None
    assert outcome.modules == (("scheduling", "bob@example.com"),)
    assert outcome.effects[0] == ("everything", "rules/10-test.toml:5", "set type question")
    assert ("everything", "rules/10-test.toml:5", "added tags vip, printing") in outcome.effects


@pytest.mark.parametrize(("then", "field", "value"), [
    ("acknowledgement = false", "acknowledgement", ""),
    ('acknowledgement = ""', "acknowledgement", ""),
    ('answer_and_close = { reason = "out of scope" }', "answer", ("refusal", "out of scope")),
    ('assign = { module = "playout" }', "assign", ("module", "playout")),
])
def test_action_forms(then: str, field: str, value: object) -> None:
    outcome = run(f'[modules]\nplayout = "bob@example.com"\n[[rule]]\nname = "r"\n[rule.then]\n{then}\n')
    assert getattr(outcome, field) == value


def test_a_later_rule_overrides_and_fields_keep_their_order() -> None:
    outcome = run("""
        [[rule]]
        name = "first"
        then = { urgency = "high", tags = ["a"], hold = "one", assign = { round_robin = "l1" } }

        [[rule]]
        name = "second"
        then = { urgency = "low", tags = ["b", "a"], hold = "two", assign = { round_robin = "l2" } }
    """)
    assert outcome.fired == ("first", "second")
    assert outcome.fields == (("urgency", "high"), ("urgency", "low"))
    assert outcome.add_tags == ("a", "b")
    assert (outcome.hold, outcome.assign) == ("two", ("round_robin", "l2"))


def test_stop_ends_the_evaluation() -> None:
    outcome = run("""
        [[rule]]
        name = "misses"
        when = { subject = "x" }
        then = { tags = ["a"] }

        [[rule]]
        name = "stops"
        stop = true
        then = { tags = ["b"] }

        [[rule]]
        name = "never"
        then = { tags = ["c"] }
    """)
    assert outcome.fired == ("stops",)
    assert [t.rule for t in outcome.trace] == ["misses", "stops"]
    assert outcome.add_tags == ("b",)
    assert outcome.effects[-1] == ("stops", "rules/10-test.toml:7", "stopped the evaluation")


def test_a_rule_that_does_not_match_does_nothing() -> None:
    outcome = run('[[rule]]\nname = "r"\nwhen = { subject = "x" }\nthen = { drop = "no" }\n')
    assert outcome.drop is None and outcome.fired == () and outcome.effects == ()


def test_no_rules() -> None:
    assert evaluate(RuleSet(), RuleInput(MAIL, "local", None, None, NOW)) == RuleOutcome()


# ----------------------------------------------------------------------------------------
# Monitoring


ALERTS = """
    [[rule]]
    name = "nagios-problem"
    when = { sender = { glob = "nagios@*" } }
    [rule.then]
    type = "incident"
    [rule.then.alert]
    state = "problem"
    regex = '^\\*\\* PROBLEM Service Alert: (?P<host>[^/]+)/(?P<service>.+) is'
    key = "{host}/{service}"

    [[rule]]
    name = "nagios-recovery"
    when = { sender = { glob = "nagios@*" } }
    [rule.then.alert]
    state = "recovery"
    regex = '^\\*\\* RECOVERY Service Alert: (?P<host>[^/]+)/(?P<service>.+) is'
    key = "{host}/{service}"

    [[rule]]
    name = "zabbix"
    [rule.then]
    alert = { state = "problem", field = "body", regex = 'Original problem ID: (\\d+)' }
"""


def nagios(subject: str, sender: str = "nagios@monitor.example.com") -> InboundMail:
    return replace(MAIL, subject=subject, sender=Address(sender), body_text="Host: web01", new_text="Host: web01")


def test_alert_problem_and_recovery_share_the_key() -> None:
    problem = run(ALERTS, nagios("** PROBLEM Service Alert: Web01/HTTP is CRITICAL **"), contact=None)
    recovery = run(ALERTS, nagios("** RECOVERY Service Alert: web01/HTTP  is OK **"), contact=None)
    assert problem.alert == ("problem", "web01/http")
    assert problem.fired == ("nagios-problem",)
    assert problem.fields == (("type", "incident"),)
    assert recovery.alert == ("recovery", "web01/http")
    assert ("nagios-recovery", "rules/10-test.toml:12", "alert recovery web01/http") in recovery.effects


def test_an_alert_rule_matches_only_when_its_regex_finds_the_alert() -> None:
    outcome = run(ALERTS, nagios("Hello from nagios"), contact=None)
    assert outcome.alert is None and outcome.fired == ()
    assert outcome.trace[0].why == "subject does not match the alert regex"
    assert run(ALERTS, nagios("** PROBLEM Service Alert: a/b is X **", sender="x@y.example")).alert is None


def test_alert_key_without_a_template_joins_the_groups() -> None:
    mail = replace(MAIL, subject="Problem: CPU", body_text="Original problem ID: 1849302\n")
    assert run(ALERTS, mail).alert == ("problem", "1849302")


def test_alert_key_function_for_the_store_lookup() -> None:
    loaded = rules(ALERTS)
    assert alert_key(loaded, nagios("** PROBLEM Service Alert: web01/HTTP is CRITICAL **"), "local") == "web01/http"
    assert alert_key(loaded, nagios("** RECOVERY Service Alert: web01/HTTP is OK **"), "local") == "web01/http"
    assert alert_key(loaded, MAIL, "local") == ""
    assert alert_key(RuleSet(), MAIL, "local") == ""


def test_shipped_monitoring_rules_on_real_alert_mails() -> None:
    from pathlib import Path

    from daemon.core.parse import parse

    root = Path(__file__).resolve().parents[2]
    files = {str(p): p.read_text(encoding="utf-8") for p in (root / "rules").glob("*.toml")}
    loaded, problems = load_rules(files, AGENTS, ("l1", "l2"), ("acknowledgement", "refusal"))
    assert problems == []
    keys = {}
    for name in ("nagios-problem-service-critical", "nagios-recovery-service-ok", "opsview-problem",
                 "opsview-recovery", "zabbix-problem", "zabbix-resolved", "alertmanager-firing",
                 "alertmanager-resolved"):
        mail = parse((root / "tests" / "mail" / f"{name}.eml").read_bytes(), received_at=NOW)
        outcome = evaluate(loaded, RuleInput(mail, "local", None, None, NOW, "UTC"))
        assert outcome.alert is not None, name
        assert alert_key(loaded, mail, "local") == outcome.alert[1]
        keys[name] = outcome.alert
    assert keys["nagios-problem-service-critical"] == ("problem", "web01/http")
    assert keys["nagios-recovery-service-ok"] == ("recovery", "web01/http")
    assert keys["opsview-problem"] == ("problem", "fileserver01/disk: /srv")
    assert keys["opsview-recovery"] == ("recovery", "fileserver01/disk: /srv")
    assert keys["zabbix-problem"] == ("problem", "zabbix/1849302")
    assert keys["zabbix-resolved"] == ("recovery", "zabbix/1849302")
    assert keys["alertmanager-firing"][1] == keys["alertmanager-resolved"][1]
    assert (keys["alertmanager-firing"][0], keys["alertmanager-resolved"][0]) == ("problem", "recovery")


# ----------------------------------------------------------------------------------------
# Registries: a test may bring its own


def test_registries_can_be_passed_in() -> None:
    from daemon.core.rules.fields import FIELDS
    from daemon.core.rules.load import Registries
    from daemon.core.rules.operators import OPERATORS

    only_equals = Registries(fields={"subject": FIELDS["subject"]}, operators={"equals": OPERATORS["equals"]})
    text = '[[rule]]\nname = "r"\nwhen = { subject = { contains = "x" }, sender = "y" }\nthen = { tags = ["t"] }\n'
    _, problems = load_rules({"r.toml": text}, registries=only_equals)
    assert [p.message.split(";")[0] for p in problems] == ["unknown operator 'contains'", "unknown field 'sender'"]
