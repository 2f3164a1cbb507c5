"""The rules as an operator meets them on the command line (issue 8): `postdesk rules test`
(text and --json) on corpus mails, with nothing stored or sent; a broken rule file refused
by `check-config` and `rules test` with FILE:LINE; and `postdesk run` reloading its rules
on SIGHUP, keeping the old ones while the files are broken."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, Run, postdesk_command
from tests.mailfactory import raw_mail

CORPUS = ROOT / "tests" / "mail"
NOW = "2026-11-23T09:00:00Z"  # a Monday morning: the after-hours rule does not fire
SHIPPED = sorted(p.name for p in (ROOT / "rules").glob("*.toml"))


def shipped_rule_names() -> list[str]:
    import tomllib

    return [rule["name"] for name in SHIPPED for rule in tomllib.loads((ROOT / "rules" / name).read_text())["rule"]]


def nothing_stored_or_sent(postdesk: Run, site: Path) -> None:
    listed = postdesk("tickets", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    quarantined = postdesk("quarantine", "list", "--all", "--json")
    assert quarantined.returncode == 0 and json.loads(quarantined.stdout) == []
    assert not [p for p in (site / "var" / "outbox").rglob("*") if p.is_file()]


@pytest.fixture
def migrated(postdesk: Run, site: Path) -> Path:
    assert postdesk("migrate").returncode == 0
    return site


CASES: dict[str, tuple[list[str], dict[str, Any]]] = {
    # corpus mail: (rules that fire, decision fields)
    "nagios-problem-service-critical.eml": (["nagios-problem"], {
        "type": "incident", "urgency": "high", "priority": "high", "group": "l2", "owner": None,
        "acknowledgement": "none", "alert": {"state": "problem", "key": "web01/http"}}),
    "zabbix-resolved.eml": (["zabbix-resolved"], {
        "acknowledgement": "none", "alert": {"state": "recovery", "key": "zabbix/1849302"}}),
    "raw-koi8r-8bit-subject.eml": (["incident", "not-working", "urgent-words", "first-line"], {
        "type": "incident", "urgency": "high", "priority": "high", "group": "l1", "owner": "alice@example.com",
        "acknowledgement": "default", "alert": None}),
    "php-form-utf8-bom.eml": (["question", "first-line"], {
        "type": "question", "priority": "low", "group": "l1", "owner": "alice@example.com"}),
}

def test_rules_test_json_lists_every_rule_and_the_decision_and_stores_nothing(postdesk: Run,
                                                                             migrated: Path) -> None:
    for name, (expected_fired, expected) in CASES.items():
        result = postdesk("rules", "test", "--json", "--now", NOW, str(CORPUS / name))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["mail"]["as"] == "new ticket"
        assert [r["rule"] for r in report["rules"]] == shipped_rule_names()
        assert [r["rule"] for r in report["rules"] if r["matched"]] == expected_fired, name
        assert report["decision"]["fired"] == expected_fired
        assert {key: report["decision"][key] for key in expected} == expected, name
        stopper = [r["rule"] for r in report["rules"] if r["matched"]][-1]
        for rule in report["rules"]:
            assert rule["file"].startswith("rules/") and rule["line"] > 0
            if rule["matched"]:
                assert rule["why"] == "matched", rule
            elif rule["evaluated"]:
                assert rule["why"] and rule["why"] != "matched", rule
            else:
                assert rule["why"] == f"not evaluated: rule {stopper!r} stopped the evaluation", rule
        fired = [e["rule"] for e in report["decision"]["events"] if e["kind"] == "rule"]
        assert fired == expected_fired, "the events the rules would record"
    nothing_stored_or_sent(postdesk, migrated)


def test_rules_test_text_report(postdesk: Run, migrated: Path) -> None:
    result = postdesk("rules", "test", "--now", NOW, str(CORPUS / "nagios-problem-service-critical.eml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    lines = out.splitlines()
    assert lines[0].startswith("mail: from nagios@monitor.example.com, subject '** PROBLEM Service Alert")
    row = {line.split()[1]: line for line in lines if line.startswith("  ") and len(line.split()) > 2
           and line.split()[0] in ("yes", "no", "--")}
    assert set(row) == set(shipped_rule_names())
    assert row["nagios-problem"].split()[0] == "yes" and "rules/20-monitoring.toml:" in row["nagios-problem"]
    assert row["spam-flagged"].split()[0] == "no" and 'header.x-spam-flag is "yes"' in row["spam-flagged"]
    assert row["first-line"].split()[0] == "--" and "rule 'nagios-problem' stopped the evaluation" in row["first-line"]
    decision = out.split("decision (nothing stored or sent):", 1)[1]
    assert "group:            l2" in decision and "alert:            state problem, key web01/http" in decision
    assert "event: rule: rule=nagios-problem, where=rules/20-monitoring.toml:" in decision
    nothing_stored_or_sent(postdesk, migrated)


BROKEN = """# a rule file with one problem of each kind
[[rule]]
name = "broken"
[rule.when]
subjekt = { contains = "printer" }
[rule.then]
owner = "nobody@example.com"

[[rule]]
name = "bad-regex"
when.subject = { regex = '(unclosed' }
then.group = "l9"
then.acknowledgement = "no-such-template"
"""


def test_a_broken_rule_file_makes_check_config_and_rules_test_exit_78_with_file_and_line(postdesk: Run,
                                                                                      site: Path) -> None:
    (site / "rules" / "70-broken.toml").write_text(BROKEN)
    (site / "rules" / "71-syntax.toml").write_text('[[rule]]\nname = "x"\nthen = { tags = ["a"]\n')
    expected = ["rules/70-broken.toml:5: unknown field 'subjekt'",
                "rules/70-broken.toml:7: owner: unknown agent 'nobody@example.com'",
                "rules/70-broken.toml:11: subject regex: bad regex '(unclosed'",
                "rules/70-broken.toml:12: group: unknown group 'l9'",
                "rules/70-broken.toml:13: acknowledgement: unknown template 'no-such-template'",
                "rules/71-syntax.toml:3: TOML syntax error"]
    checked = postdesk("check-config")
    tested = postdesk("rules", "test", "--now", NOW, str(CORPUS / "nagios-problem-service-critical.eml"))
    for result in (checked, tested):
        out = (result.stdout + result.stderr).decode()
        assert result.returncode == 78, out
        problems = [line for line in out.splitlines() if line.startswith("rules/")]
        assert len(problems) == len(expected), out
        for line, start in zip(problems, expected, strict=True):
            assert line.startswith(start), (line, start)
    assert b"decision" not in tested.stdout
    assert not (site / "var" / "postdesk.db").exists(), "a broken rule set stores nothing"


# ----------------------------------------------------------------------------------------
# SIGHUP: reload the rules; a broken file keeps the old ones


PROBE = '[[rule]]\nname = "reload-probe"\nwhen.subject = {{ contains = "reload" }}\nthen.tags = ["{tag}"]\n'


class Daemon:
    def __init__(self, site: Path) -> None:
        self.site = site
        self.log_path = site / "daemon.log"
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen([*postdesk_command(), "-c", str(site / "postdesk.toml"), "run"],
                                            cwd=site, stdout=subprocess.DEVNULL, stderr=log)
        self.inbox: mailbox.Maildir | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            assert self.process.poll() is None, f"the daemon exited ({self.process.returncode}):\n{self.log()}"
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def started(self) -> None:
        self.wait_for(lambda: "postdesk running" in self.log(), "the daemon to start")
        self.inbox = mailbox.Maildir(str(self.site / "var" / "mail" / "help"), create=False)

    def sighup(self, expected: str) -> None:
        before = self.log().count(expected)
        self.process.send_signal(signal.SIGHUP)
        self.wait_for(lambda: self.log().count(expected) > before, f"{expected!r} in the log")

    def drop(self, raw: bytes) -> None:
        """Deliver a mail into the Maildir and wait until the daemon has taken it in."""
        assert self.inbox is not None
        cur = self.site / "var" / "mail" / "help" / "cur"
        done = len(list(cur.glob("*")))
        self.inbox.add(raw)
        self.wait_for(lambda: len(list(cur.glob("*"))) > done, "the mail to be taken in")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def daemon(migrated: Path) -> Iterator[Daemon]:
    (migrated / "rules" / "05-probe.toml").write_text(PROBE.format(tag="rules-v1"))
    running = Daemon(migrated)
    try:
        running.started()
        yield running
    finally:
        running.stop()


def test_sighup_reloads_the_rules_and_a_broken_file_keeps_the_old_ones(postdesk: Run, daemon: Daemon) -> None:
    probe = daemon.site / "rules" / "05-probe.toml"
    probe.write_text(PROBE.format(tag="rules-v2") + 'then.colour = "red"\n')
    daemon.sighup("rule files not reloaded; the old rules stay in force")
    assert "rules/05-probe.toml:5: unknown action 'colour'" in daemon.log()
    daemon.drop(raw_mail(subject="Please reload the printer driver", message_id="<reload-1@customer.example>"))

    probe.write_text(PROBE.format(tag="rules-v2"))
    daemon.sighup("rule files reloaded:")
    daemon.drop(raw_mail(subject="Reload the scanner driver too", message_id="<reload-2@customer.example>"))
    daemon.stop()
    assert daemon.process.returncode == 0
    log = daemon.log()
    assert log.count("stored: new ticket") == 2 and "postdesk stopped" in log and "Traceback" not in log

    # (read afterwards: every postdesk command loads the rules, and refuses a broken rule set)
    tickets = json.loads(postdesk("tickets", "list", "--json").stdout)
    assert [t["subject"] for t in tickets] == ["Please reload the printer driver", "Reload the scanner driver too"]
    old, new = (json.loads(postdesk("tickets", "show", str(t["number"]), "--json").stdout) for t in tickets)
    assert "rules-v1" in old["tags"] and "rules-v2" not in old["tags"], "taken in while the files were broken"
    assert "rules-v2" in new["tags"] and "rules-v1" not in new["tags"], "taken in after the fixed files were loaded"
    for ticket in (old, new):
        fired = [e["detail"] for e in ticket["events"] if e["kind"] == "rule"]
        assert fired[0]["rule"] == "reload-probe" and fired[0]["where"] == "rules/05-probe.toml:1"
        assert "first-line" in [d["rule"] for d in fired], "the shipped rules still run"
