"""The shipped `rules/` on a table of sample mails: the type, priority and owner each gets,
and the refusals, holds, drops and alerts the procedures in DOMAIN.md ask for."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.core.parse import parse
from daemon.core.rules.apply import apply_outcome
from daemon.core.rules.engine import evaluate
from daemon.core.rules.load import load_rules
from daemon.core.rules.model import RuleInput, RuleOutcome, RuleSet
from daemon.core.tickets import new_ticket_view
from daemon.core.values import AgentView, ContactView, Facts, MailboxView, Setup, TicketView

ROOT = Path(__file__).resolve().parents[2]
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
# As config.example.toml: alice in l1, bob in l2.
SETUP = Setup(secret=b"0123456789abcdef0123", domain="example.com",
              mailboxes=(MailboxView("local", "help@example.com"),),
              agents=(AgentView("alice@example.com", "Alice", ("l1",)), AgentView("bob@example.com", "Bob", ("l2",))))
CONTACTS = {
    "expired@customer.example": ContactView("expired@customer.example", organisation="Old Ltd",
                                            attributes=(("contract", "expired"),)),
    "unpaid@customer.example": ContactView("unpaid@customer.example", attributes=(("contract", "unpaid"),)),
    "boss@vip.example": ContactView("boss@vip.example", organisation="VIP Broadcasting",
                                    attributes=(("contract", "active"), ("tier", "vip"))),
}


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    files = {str(p): p.read_text(encoding="utf-8") for p in (ROOT / "rules").glob("*.toml")}
    rules, problems = load_rules(files, [a.email for a in SETUP.agents], ["l1", "l2"],
                                 ["acknowledgement", "refusal", "closure"], SETUP.ticket_types)
    assert problems == [], [str(p) for p in problems]
    return rules


def sample(subject: str, text: str, sender: str = "olena@customer.example", headers: str = "",
           attachment: str = "") -> bytes:
    head = (f"From: Sender <{sender}>\r\nTo: help@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <{zlib.crc32(subject.encode())}@customer.example>\r\n"
            "Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
            f"MIME-Version: 1.0\r\n{headers}")
    if not attachment:
        return (head + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                + text + "\r\n").encode("utf-8")
    return (head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text + "\r\n--b\r\n"
            f'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="{attachment}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n").encode("utf-8")


def decide(rules: RuleSet, raw: bytes, now: datetime = TUESDAY) -> tuple[TicketView, RuleOutcome]:
    mail = parse(raw, received_at=now)
    contact = CONTACTS.get(mail.sender.email)
    outcome = evaluate(rules, RuleInput(mail, "local", None, contact, now, "Europe/Kyiv"))
    ticket = new_ticket_view(mail, Facts(contact=contact), SETUP, "local", now)
    return apply_outcome(ticket, outcome, SETUP, Facts())[0], outcome


def corpus(name: str) -> bytes:
    return (ROOT / "tests" / "mail" / f"{name}.eml").read_bytes()


A, B = "alice@example.com", "bob@example.com"
TABLE = [
    # (what, raw mail, type, priority, owner)
    ("a plain problem report", sample("Printer on floor 2 prints nothing", "Since this morning nothing prints."),
     "incident", "medium", A),
    ("a how-to question", sample("Export to PDF", "How do I export the weekly report to PDF?"),
     "question", "low", A),
    ("a feature request", sample("Dark mode", "It would be nice to have a dark mode in the web client."),
     "feature_request", "low", A),
    ("a service request", sample("Password reset", "Please reset my password for the web client."),
     "service_request", "medium", A),
    ("an outage for everyone", sample("CRM server is down", "The CRM is down since 9:00, nobody can work."),
     "incident", "urgent", A),
    ("Ukrainian: it does not work", sample("Не працює вхід до системи", "Після оновлення не можу увійти."),
     "incident", "high", A),
    ("Russian error", sample("Ошибка при сохранении", "При сохранении отчёта появляется ошибка."),
     "incident", "medium", A),
    ("German: not urgent question", sample("Frage zu Berichten", "Nicht dringend: wie kann ich Berichte filtern?"),
     "question", "low", A),
    ("urgent billing", sample("URGENT: invoice 2026-118 is wrong", "The invoice shows the wrong amount."),
     "incident", "high", A),
    ("scheduling module", sample("Playlist for tomorrow is empty", "The playlist for channel 2 is empty."),
     "incident", "medium", B),
    ("playout module, not working", sample("Playout stopped working on channel 2", "Channel 2 is black."),
     "incident", "high", B),
    ("ingest module", sample("Ingest fails for MXF files", "Every MXF file fails at 50%."),
     "incident", "medium", B),
    ("a VIP's question", sample("Question about licences", "How can I move a licence to a new server?",
                                sender="boss@vip.example"),
     "question", "high", A),
    ("high X-Priority", sample("Backup job", "The backup job did not run.", headers="X-Priority: 1 (Highest)\r\n"),
     "incident", "high", A),
    ("expired contract: refused", sample("Help with the aligner", "The aligner crashes.",
                                         sender="expired@customer.example"),
     "incident", "medium", None),
    ("unpaid: refused", sample("Ingest question", "How do I ingest?", sender="unpaid@customer.example"),
     "incident", "medium", None),
    ("quotation: refused", sample("Quotation for the HSM module", "Please send us a quotation for two licences."),
     "incident", "medium", None),
    ("Nagios problem", corpus("nagios-problem-service-critical"), "incident", "high", None),
    ("Zabbix recovery", corpus("zabbix-resolved"), "incident", "medium", None),
    ("spam flagged by the server", sample("You won", "Claim your prize", headers="X-Spam-Flag: YES\r\n"),
     "incident", "medium", None),
    ("an executable attachment", sample("Invoice attached", "See attachment.", attachment="invoice.pdf.exe"),
     "incident", "medium", A),
]


@pytest.mark.parametrize(("what", "raw", "kind", "priority", "owner"), TABLE, ids=[row[0] for row in TABLE])
def test_type_priority_and_owner(shipped: RuleSet, what: str, raw: bytes, kind: str, priority: str,
                                 owner: str | None) -> None:
    ticket, outcome = decide(shipped, raw)
    assert (ticket.type, ticket.priority.value, ticket.owner) == (kind, priority, owner), outcome.fired


def test_refusals_answer_and_close(shipped: RuleSet) -> None:
    _, expired = decide(shipped, TABLE[14][1])
    assert expired.answer is not None and expired.answer[0] == "refusal" and "expired" in expired.answer[1]
    assert expired.fired == ("contract-expired",)
    _, unpaid = decide(shipped, TABLE[15][1])
    assert unpaid.answer is not None and "unpaid" in unpaid.answer[1]
    _, quotation = decide(shipped, TABLE[16][1])
    assert quotation.answer is not None and "marketing@example.com" in quotation.answer[1]
    assert quotation.add_tags == ("out-of-scope", "quotation")


def test_monitoring_groups_and_resolves(shipped: RuleSet) -> None:
    ticket, problem = decide(shipped, corpus("nagios-problem-service-critical"))
    assert problem.alert == ("problem", "web01/http")
    assert problem.acknowledgement == ""
    assert (ticket.group, ticket.tags) == ("l2", ("monitoring", "nagios"))
    _, recovery = decide(shipped, corpus("nagios-recovery-service-ok"))
    assert recovery.alert == ("recovery", "web01/http")


def test_screening(shipped: RuleSet) -> None:
    _, spam = decide(shipped, TABLE[19][1])
    assert spam.drop is not None and spam.fired == ("spam-flagged",)
    ticket, held = decide(shipped, TABLE[20][1])
    assert held.hold is not None and "suspicious-attachment" in ticket.tags
    assert "first-line" in held.fired  # held, but still classified and routed for the agent who accepts it


def test_after_hours_tag(shipped: RuleSet) -> None:
    weekday, _ = decide(shipped, TABLE[0][1])
    weekend, _ = decide(shipped, TABLE[0][1], now=SATURDAY)
    assert "after-hours" not in weekday.tags
    assert "after-hours" in weekend.tags


def test_routing_rules_do_not_touch_follow_ups(shipped: RuleSet) -> None:
    mail = parse(TABLE[10][1], received_at=TUESDAY)
    ticket = new_ticket_view(mail, Facts(), SETUP, "local", TUESDAY)
    outcome = evaluate(shipped, RuleInput(mail, "local", ticket, None, TUESDAY, "UTC"))
    assert outcome.fired == ()


# ----------------------------------------------------------------------------------------
# The dry run: `postdesk rules test`


def test_rules_test_dry_run_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from daemon.cli import main

    mail = tmp_path / "mail.eml"
    mail.write_bytes(TABLE[10][1])
    code = main(["-c", str(ROOT / "config.example.toml"), "rules", "test", "--json", "--now", "2026-11-24T10:00:00Z",
                 str(mail)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    decision = report["decision"]
    assert (decision["type"], decision["priority"], decision["owner"]) == ("incident", "high", B)
    assert decision["fired"] == ["not-working", "first-line", "module-playout"]
    assert decision["assign"] == {"how": "module", "to": "playout"}
    first = report["rules"][0]
    assert first["rule"] == "spam-flagged" and first["matched"] is False and first["why"].startswith("none of:")
    assert {"rule", "file", "line", "evaluated", "matched", "why"} <= set(first)
    assert any(e["kind"] == "rule" and e["rule"] == "module-playout" for e in decision["events"])


def test_rules_test_text_shows_each_rule_and_the_decision(capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli import main

    code = main(["-c", str(ROOT / "config.example.toml"), "rules", "test",
                 str(ROOT / "tests" / "mail" / "opsview-problem.eml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "yes opsview-problem" in out.replace("  ", " ")
    assert "not evaluated: rule 'opsview-problem' stopped the evaluation" in out
    assert "alert:" in out and "fileserver01/disk: /srv" in out
    assert "nothing stored or sent" in out


def test_rules_test_with_broken_rules_exits_78(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from daemon.cli import main

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-bad.toml").write_text('[[rule]]\nname = "x"\nthen = { owner = "nobody@example.com" }\n')
    config = (ROOT / "config.example.toml").read_text().replace('rules = "rules"', f'rules = "{rules}"')
    (tmp_path / "postdesk.toml").write_text(config)
    mail = tmp_path / "mail.eml"
    mail.write_bytes(TABLE[0][1])
    code = main(["-c", str(tmp_path / "postdesk.toml"), "rules", "test", str(mail)])
    assert code == 78
    assert "rules/10-bad.toml:3: owner: unknown agent 'nobody@example.com'" in capsys.readouterr().err
