"""Loading rule files: every kind of problem is reported as FILE:LINE with what is expected,
a rule with a problem is left out, and the evaluation order is the file names' order."""

from __future__ import annotations

import textwrap

import pytest

from daemon.core.rules.load import load_rules

AGENTS = ("alice@example.com", "bob@example.com")
GROUPS = ("l1", "l2")
TEMPLATES = ("acknowledgement", "refusal")


def load(text: str, name: str = "rules/10-test.toml", **extra: str):
    files = {name: textwrap.dedent(text), **{k: textwrap.dedent(v) for k, v in extra.items()}}
    return load_rules(files, AGENTS, GROUPS, TEMPLATES)


def problems_of(text: str) -> list[tuple[int, str]]:
    _rules, problems = load(text)
    assert all(p.file == "rules/10-test.toml" for p in problems)
    return [(p.line, p.message) for p in problems]


def only_problem(text: str) -> tuple[int, str]:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


GOOD = """
    [[rule]]
    name = "good"
    when = { subject = { contains = "printer" } }
    then = { category = "printing" }
"""


def test_good_file_has_no_problem_and_keeps_file_and_line() -> None:
    rules, problems = load(GOOD)
    assert problems == []
    (rule,) = rules.rules
    assert (rule.name, rule.file, rule.line, rule.where) == ("good", "rules/10-test.toml", 2, "rules/10-test.toml:2")


def test_toml_syntax_error_names_its_line() -> None:
    line, message = only_problem("""
        [[rule]]
        name = "broken"
        when = { subject = "x"
    """)
    assert line == 4
    assert message.startswith("TOML syntax error")


@pytest.mark.parametrize(("text", "line", "words"), [
    ("colour = 'red'\n", 1, "unknown key 'colour'; expected [[rule]] tables and a [modules] table"),
    ("[rule]\nname = 'x'\n", 1, "rule must be an array of tables"),
    ("rule = [1]\n", 1, "a rule must be a table"),
])
def test_file_level_problems(text: str, line: int, words: str) -> None:
    found_line, message = only_problem(text)
    assert found_line == line
    assert words in message


def test_unknown_key_in_a_rule() -> None:
    line, message = only_problem("""
        [[rule]]
        name = "a"
        colour = "red"
        then = { tags = ["x"] }
    """)
    assert line == 4
    assert "unknown key 'colour' in a rule; expected one of: name, description, when, then, stop" in message


def test_missing_name() -> None:
    line, message = only_problem("""
        [[rule]]
        then = { tags = ["x"] }
    """)
    assert line == 2
    assert "a rule needs a name" in message


def test_duplicate_name_across_files_keeps_the_first() -> None:
    rules, problems = load(GOOD, "rules/10-a.toml", **{"rules/20-b.toml": GOOD})
    assert [r.file for r in rules.rules] == ["rules/10-a.toml"]
    assert [str(p) for p in problems] == [
        "rules/20-b.toml:2: duplicate rule name 'good' (first at rules/10-a.toml:2); "
        "expected a name unique across the rule files"]


@pytest.mark.parametrize(("when", "words"), [
    ('subjct = "x"', "unknown field 'subjct'; expected one of: attachment_name"),
    ('"ticket.stat" = "open"', "unknown field ticket.stat; expected one of: ticket.status"),
    ('"subject.x" = "open"', "field 'subject' takes no .NAME"),
    ("header = 'x'", "header needs a name: write header.NAME"),
    ("subject = { contians = 'x' }", "unknown operator 'contians'; expected one of: equals, in, contains, words"),
    ("subject = { regex = '(unclosed' }", "subject regex: bad regex '(unclosed': missing ), unterminated subpattern"),
    ("subject = { in = 'x' }", "subject in: expected a list of strings"),
    ("subject = { contains = [] }", "subject contains: the list is empty"),
    ("subject = { contains = { a = 1 } }", "subject contains: expected a string, not a table"),
    ("subject = { words = '!!' }", "a word or phrase must have at least one letter or digit"),
    ("'header.x-priority' = { exists = 'yes' }", "header.x-priority exists: expected true or false"),
    ("time = { between = ['18:00'] }", "time between: expected [FROM, TO]"),
    ("time = { between = ['8', '9'] }", "'8' has the wrong form; expected HH:MM"),
    ("weekday = 'saturday'", "'saturday' is never a value of this field; expected one of: mon, tue, wed"),
    ("'ticket.status' = 'opened'", "'opened' is never a value of this field; expected one of: new, open"),
    ("is_new = 'yes'", "'yes' is never a value of this field; expected one of: true, false"),
    ("time = { between = ['18:00', '08:00'], timezone = 'Mars/Base' }", "unknown timezone 'Mars/Base'"),
    ("subject = { contains = 'x', timezone = 'UTC' }", "only weekday, time and date take a timezone"),
    ("subject = { contains = 'x', case_sensitive = 'no' }", "case_sensitive must be true or false"),
    ("subject = { case_sensitive = true }", "subject has no operator"),
    ("subject = {}", "subject needs a test"),
    ("any = []", "any must be a non-empty list of condition tables"),
    ("any = [1]", "a condition must be a non-empty table"),
    ("not = 'x'", "a condition must be a non-empty table"),
])
def test_condition_problems_name_the_line(when: str, words: str) -> None:
    line, message = only_problem(f"""
        [[rule]]
        name = "a"
        [rule.when]
        mailbox = "local"
        {when}
        [rule.then]
        tags = ["x"]
    """)
    assert line == 6, message
    assert words in message


def test_nested_condition_problem_lands_on_its_own_line() -> None:
    found = problems_of("""
        [[rule]]
        name = "a"
        [rule.when]
        any = [
          { subject = { contains = "x" } },
          { body = { regex = '(' } },
          { new_text = { contians = "y" } },
        ]
        [rule.then]
        tags = ["x"]
    """)
    assert [line for line, _ in found] == [7, 8]


def test_keys_after_rule_when_belong_to_it_and_the_message_says_so() -> None:
    line, message = only_problem("""
        [[rule]]
        name = "a"
        [rule.when]
        subject = "x"
        then.tags = ["x"]
    """)
    assert "unknown field 'then' (in TOML every key after a [rule.when] header belongs to it" in message
    assert line == 6


@pytest.mark.parametrize(("then", "words"), [
    ('priorty = "high"', "unknown action 'priorty'; expected one of: type, impact"),
    ('owner = "carol@example.com"', "owner: unknown agent 'carol@example.com'; expected one of: alice@example.com"),
    ('group = "l9"', "group: unknown group 'l9'; expected one of: l1, l2"),
    ('type = "complaint"', "type: unknown ticket type 'complaint'; expected one of: feature_request, incident"),
    ('impact = "huge"', "impact: unknown impact 'huge'; expected one of: high, low, medium"),
    ('urgency = 3', "urgency: expected a non-empty string, not an integer 3"),
    ('priority = "hgh"', "priority: unknown priority 'hgh'; expected one of: high, low, medium, urgent"),
    ('category = ""', "category: expected a non-empty string"),
    ('tags = []', "tags: the list is empty"),
    ('assign = "l1"', "assign: expected { round_robin = \"GROUP\" } or { module = \"NAME\" }"),
    ('assign = { round_robin = "l9" }', "assign: unknown group 'l9'"),
    ('assign = { module = "playout" }', "assign: unknown module 'playout'; expected one of (from the [modules] "
                                        "tables): (no module is configured)"),
    ('acknowledgement = "thanks"', "acknowledgement: unknown template 'thanks'; expected one of: acknowledgement, "
                                   "refusal"),
    ('acknowledgement = true', "acknowledgement: expected false (send none) or a template name"),
    ('answer_and_close = { template = "nope", reason = "x" }', "answer_and_close: unknown template 'nope'"),
    ('answer_and_close = { template = "refusal" }', "answer_and_close: expected { template = \"refusal\", "
                                                    "reason = \"...\" }"),
    ('third_party = "vendor"', "third_party: 'vendor' is not an email address; expected name@domain"),
    ('hold = ""', "hold: expected a non-empty string"),
    ('drop = 1', "drop: expected a non-empty string"),
    ('alert = { state = "problem" }', "alert: expected { state = \"problem\" | \"recovery\", regex = '...'"),
    ('alert = { state = "firing", regex = "x" }', "alert: unknown alert state 'firing'; expected one of: problem, "
                                                 "recovery"),
    ('alert = { state = "problem", regex = "(x" }', "alert: bad regex '(x'"),
    ('alert = { state = "problem", regex = "x", field = "header" }', "alert: unknown field 'header' for an alert"),
    ("alert = { state = 'problem', regex = '(?P<host>\\w+)', key = '{host}/{service}' }",
     "alert: key names service, which the regex does not capture; expected names of (?P<name>...) groups: host"),
])
def test_action_problems_name_the_line(then: str, words: str) -> None:
    line, message = only_problem(f"""
        [[rule]]
        name = "a"
        when = {{ subject = "x" }}
        [rule.then]
        sla_policy = "any name: no SLA policies are configured"
        {then}
    """)
    assert line == 7, message
    assert words in message


def test_a_rule_that_does_nothing() -> None:
    line, message = only_problem("""
        [[rule]]
        name = "a"
        when = { subject = "x" }
    """)
    assert line == 3
    assert "the rule does nothing; expected a [rule.then] table with at least one action, or stop = true" in message


def test_stop_alone_is_an_action_and_must_be_a_boolean() -> None:
    rules, problems = load("""
        [[rule]]
        name = "a"
        stop = true
    """)
    assert problems == [] and rules.rules[0].stop
    line, message = only_problem("""
        [[rule]]
        name = "a"
        stop = "yes"
        then = { tags = ["x"] }
    """)
    assert (line, message) == (4, "stop must be true or false, not a string 'yes'")


def test_stop_may_stand_in_rule_then() -> None:
    rules, problems = load("""
        [[rule]]
        name = "a"
        [rule.then]
        tags = ["x"]
        stop = true
    """)
    assert problems == [] and rules.rules[0].stop


def test_modules_problems() -> None:
    found = problems_of("""
        [modules]
        scheduling = "bob@example.com"
        playout = "carol@example.com"

        [[rule]]
        name = "a"
        then = { assign = { module = "scheduling" } }
    """)
    assert found == [(4, "module 'playout': 'carol@example.com' is not an agent; expected one of: "
                         "alice@example.com, bob@example.com")]
    rules, problems = load("[modules]\nscheduling = 'bob@example.com'\n",
                           **{"rules/20-more.toml": "[modules]\nscheduling = 'alice@example.com'\n"})
    assert [str(p) for p in problems] == ["rules/20-more.toml:2: module 'scheduling' is listed twice; each module "
                                          "has one owner"]
    assert rules.modules == (("scheduling", "bob@example.com"),)


def test_broken_rules_are_left_out_and_good_ones_kept() -> None:
    rules, problems = load(GOOD + """
    [[rule]]
    name = "bad"
    then = { priority = "hgh" }
    """)
    assert [r.name for r in rules.rules] == ["good"]
    assert len(problems) == 1


def test_evaluation_order_is_file_name_order_then_place_in_file() -> None:
    def rule(name: str) -> str:
        return f'[[rule]]\nname = "{name}"\nthen = {{ tags = ["x"] }}\n'

    files = {"/etc/postdesk/rules/20-b.toml": rule("b1") + rule("b2"), "/opt/other/10-a.toml": rule("a1"),
             "/etc/postdesk/rules/30-c.toml": rule("c1")}
    rules, problems = load_rules(files, AGENTS, GROUPS, TEMPLATES)
    assert problems == []
    assert [r.name for r in rules.rules] == ["a1", "b1", "b2", "c1"]


def test_problems_are_sorted_by_file_order_and_line() -> None:
    _rules, problems = load("[[rule]]\nname = 'a'\nthen = { owner = 'x@y.z' }\ncolour = 1\n", "rules/20-b.toml",
                           **{"rules/10-a.toml": "oops = 1\n"})
    assert [(p.file, p.line) for p in problems] == [("rules/10-a.toml", 1), ("rules/20-b.toml", 3),
                                                    ("rules/20-b.toml", 4)]


def test_empty_agent_and_template_lists_accept_nothing_but_types_default() -> None:
    text = '[[rule]]\nname = "a"\nthen = { owner = "alice@example.com", type = "question" }\n'
    _rules, problems = load_rules({"r.toml": text})
    assert [p.message for p in problems] == ["owner: unknown agent 'alice@example.com'; expected one of: "
                                             "(no agent is configured)"]


def test_shipped_rules_load_against_the_example_config() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "rules"
    files = {str(p): p.read_text(encoding="utf-8") for p in folder.glob("*.toml")}
    rules, problems = load_rules(files, AGENTS, GROUPS, TEMPLATES)
    assert problems == []
    assert len(rules.rules) > 20


# ----------------------------------------------------------------------------------------
# The IO side: rule folders and the contacts file


def test_read_rule_files_and_a_missing_folder(tmp_path) -> None:
    from daemon.rulefiles import read_rule_files

    (tmp_path / "20-b.toml").write_text("# b\n")
    (tmp_path / "10-a.toml").write_text("# a\n")
    (tmp_path / "notes.txt").write_text("not a rule file")
    assert list(read_rule_files(tmp_path)) == [str(tmp_path / "10-a.toml"), str(tmp_path / "20-b.toml")]
    assert read_rule_files(tmp_path / "missing") == {}
    shown = list(read_rule_files(tmp_path, tmp_path.parent))
    assert shown == [f"{tmp_path.name}/10-a.toml", f"{tmp_path.name}/20-b.toml"]


def test_contacts_from_toml(tmp_path) -> None:
    from daemon.core.values import ContactView
    from daemon.rulefiles import load_contacts

    file = tmp_path / "contacts.toml"
    file.write_text(textwrap.dedent("""
        [[contact]]
        email = "Olena@Customer.example"
        name = "Olena Petrenko"
        organization = "Customer Ltd"
        language = "UK"
        contract = "expired"
        seats = 12

        [[contact]]
        email = "not an address"

        [[contact]]
        email = "olena@customer.example"
    """))
    contacts, problems = load_contacts(file)
    assert contacts == (ContactView("olena@customer.example", "Olena Petrenko", "Customer Ltd", "uk",
                                    (("contract", "expired"), ("seats", "12"))),)
    assert [(p.line, p.message) for p in problems] == [
        (10, "'not an address' is not an email address; expected email = \"name@domain\" in every contact"),
        (13, "contact olena@customer.example is listed twice; expected each address once")]


def test_contacts_from_csv(tmp_path) -> None:
    from daemon.rulefiles import load_contacts

    file = tmp_path / "contacts.csv"
    file.write_text("Email,Name,Organisation,Language,Contract\n"
                    "taras@customer.example,Taras,Customer Ltd,uk,unpaid\n"
                    "bad,,,,\n"
                    "ivan@other.example,Ivan,,,\n", encoding="utf-8-sig")
    contacts, problems = load_contacts(file)
    assert [(c.email, c.organisation, c.attributes) for c in contacts] == [
        ("taras@customer.example", "Customer Ltd", (("contract", "unpaid"),)), ("ivan@other.example", "", ())]
    assert [(p.file, p.line) for p in problems] == [(str(file), 3)]


def test_contacts_file_problems(tmp_path) -> None:
    from daemon.rulefiles import load_contacts

    assert load_contacts("") == ((), [])
    assert "cannot read the contacts file" in load_contacts(tmp_path / "none.toml")[1][0].message
    (tmp_path / "c.json").write_text("{}")
    assert "expected a .toml or a .csv file" in load_contacts(tmp_path / "c.json")[1][0].message
    (tmp_path / "c.toml").write_text("[contacts]\nx = 1\n")
    assert "[[contact]] tables only" in load_contacts(tmp_path / "c.toml")[1][0].message
    (tmp_path / "d.toml").write_text("[[contact]]\nemail = 'a@b.c'\ntags = ['x']\n")
    assert "tags must be a single value" in load_contacts(tmp_path / "d.toml")[1][0].message


def test_check_config_reports_rule_and_contact_problems(tmp_path) -> None:
    from pathlib import Path

    from daemon.checks import check_all

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "10-x.toml").write_text("[[rule]]\nname = 'x'\nthen = { group = 'l7' }\n")
    (tmp_path / "contacts.csv").write_text("email\nnot-an-address\n")
    config = (root / "config.example.toml").read_text().replace('contacts = ""', 'contacts = "contacts.csv"')
    config = config.replace('templates = "templates"', f'templates = "{root}/templates"')
    (tmp_path / "postdesk.toml").write_text(config)
    problems = check_all(tmp_path / "postdesk.toml", {})
    assert [(Path(p.file).name, p.line) for p in problems] == [("10-x.toml", 3), ("contacts.csv", 2)]


def test_the_rule_set_names_the_groups_it_assigns_round_robin() -> None:
    files = {"a.toml": '[[rule]]\nname = "one"\nthen = { assign = { round_robin = "l2" } }\n'
                       '# then = { assign = { round_robin = "l9" } }  (a comment names no group)\n'
                       '[[rule]]\nname = "two"\n[rule.then]\nassign = { round_robin = "l1" }\n'}
    rules, problems = load_rules(files, groups=["l1", "l2"])
    assert problems == [] and rules.round_robin == ("l1", "l2")
