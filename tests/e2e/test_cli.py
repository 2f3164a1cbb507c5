"""The command line as an operator uses it: check-config, migrate, ingest, tickets, run."""

from __future__ import annotations

import json
import mailbox
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import Run, postdesk_command
from tests.mailfactory import raw_mail
from tests.servers import children_of, process_alive, running

MAIL = raw_mail(subject="=?utf-8?b?0J/RgNC40L3RgtC10YAg0L3QtSDQtNGA0YPQutGD0ZQ=?=",
                message_id="<e2e-1@customer.example>")


def test_version() -> None:
    result = subprocess.run([*postdesk_command(), "--version"], capture_output=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith(b"postdesk ")


def test_check_config_ok_on_the_example(postdesk: Run) -> None:
    result = postdesk("check-config")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(b": ok")


def _broken(site: Path, old: str, new: str) -> Path:
    path = site / "broken.toml"
    path.write_text((site / "postdesk.toml").read_text().replace(old, new, 1))
    return path


def test_check_config_wrong_type_unknown_key_syntax_error(postdesk: Run, site: Path) -> None:
    cases = [('subject_prefix = "Support"', "subject_prefix = 42", "instance.subject_prefix is an integer 42"),
             ('subject_prefix = "Support"', 'subject_prefix = "Support"\ncolour = "blue"',
              "unknown key 'instance.colour'"),
             ('subject_prefix = "Support"', 'subject_prefix = "Support', "TOML syntax error")]
    for old, new, words in cases:
        config = _broken(site, old, new)
        result = postdesk("check-config", config=config)
        out = (result.stdout + result.stderr).decode()
        assert result.returncode == 78, out
        line = out.strip().splitlines()[0]
        assert line.startswith(f"{config}:") and int(line.split(":")[1]) > 1 and words in line, out


def test_check_config_lists_every_problem(postdesk: Run, site: Path) -> None:
    text = (site / "postdesk.toml").read_text()
    text = text.replace('subject_prefix = "Support"', "subject_prefix = 42", 1)
    text = text.replace('transport = "maildir"', 'transport = "carrier-pigeon"', 1)
    text = text.replace("auto_replies_per_hour = 5", 'auto_replies_per_hour = "five"', 1)
    config = site / "several.toml"
    config.write_text(text)
    result = postdesk("check-config", config=config)
    lines = [line for line in result.stdout.decode().splitlines() if line.startswith(str(config))]
    assert result.returncode == 78 and len(lines) == 3, result.stdout


def test_ingest_twice_is_one_ticket_and_show_has_the_contract_shape(postdesk: Run) -> None:
    assert postdesk("migrate").returncode == 0
    for _ in range(2):
        result = postdesk("ingest", "-", input=MAIL)
        assert result.returncode == 0, result.stderr
    tickets = json.loads(postdesk("tickets", "list", "--json").stdout)
    assert len(tickets) == 1
    shown = json.loads(postdesk("tickets", "show", str(tickets[0]["number"]), "--json").stdout)
    assert shown["subject"] == "Принтер не друкує" and shown["requester"] == "olena@customer.example"
    assert shown["messages"][0]["direction"] == "in" and shown["messages"][0]["body_text"].strip()
    assert shown["events"][0]["kind"] == "created"
    assert postdesk("tickets", "show", "999999", "--json").returncode == 1


def test_ingest_from_a_file_and_a_missing_file(postdesk: Run, site: Path) -> None:
    (site / "m.eml").write_bytes(MAIL)
    assert postdesk("ingest", str(site / "m.eml")).returncode == 0
    assert postdesk("ingest", str(site / "absent.eml")).returncode == 1


def test_ingest_exits_75_when_the_database_is_unreachable(postdesk: Run, site: Path) -> None:
    config = _broken(site, 'url = "sqlite:///var/postdesk.db"', 'url = "postgresql://nobody@127.0.0.1:1/none"')
    result = postdesk("ingest", "-", input=MAIL, config=config)
    assert result.returncode == 75, result.stderr


def test_daemon_takes_a_dropped_mail_within_a_second_and_stops_on_sigterm(postdesk: Run, site: Path) -> None:
    assert postdesk("migrate").returncode == 0
    process = subprocess.Popen([*postdesk_command(), "-c", str(site / "postdesk.toml"), "run"], cwd=site,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        inbox = mailbox.Maildir(str(site / "var" / "mail" / "help"), create=False) \
            if (site / "var/mail/help/new").exists() else None
        deadline = time.monotonic() + 20
        while inbox is None and time.monotonic() < deadline:  # the daemon creates its Maildir at start
            time.sleep(0.05)
            if (site / "var/mail/help/new").exists():
                inbox = mailbox.Maildir(str(site / "var" / "mail" / "help"), create=False)
        assert inbox is not None, "the daemon did not create its Maildir"
        time.sleep(0.3)
        dropped = time.monotonic()
        inbox.add(MAIL)
        while time.monotonic() - dropped < 5 and not list((site / "var/mail/help/cur").glob("*")):
            time.sleep(0.01)
        taken = time.monotonic() - dropped
        assert taken < 1.0, f"took {taken:.2f} s"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        _, err = process.communicate(timeout=10)
    assert b"stored: new ticket" in err and b"postdesk stopped" in err
    tickets = json.loads(postdesk("tickets", "list", "--json").stdout)
    assert len(tickets) == 1
    sent = list((site / "var/outbox/new").glob("*"))
    assert sent, "the acknowledgement should be in the outbox Maildir"


def test_run_once_over_the_maildir(postdesk: Run, site: Path) -> None:
    (site / "var" / "mail").mkdir(parents=True)
    inbox = mailbox.Maildir(str(site / "var" / "mail" / "help"), create=True)
    for i in range(3):
        inbox.add(raw_mail(message_id=f"<once-{i}@customer.example>", subject=f"Problem {i}"))
    result = postdesk("run", "--once")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(postdesk("tickets", "list", "--json").stdout)) == 3
    assert len(list((site / "var/mail/help/cur").glob("*"))) == 3
    assert not list((site / "var/mail/help/new").glob("*"))
    assert postdesk("run", "--once").returncode == 0
    assert len(json.loads(postdesk("tickets", "list", "--json").stdout)) == 3


def test_demo_prints_tickets_and_sent_mail(tmp_path: Path) -> None:
    result = subprocess.run([*postdesk_command(), "demo", "--dir", str(tmp_path / "demo")], capture_output=True,
                            timeout=120, check=False)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "Subject: [Support #1] Printer on floor 2 prints nothing" in out
    tickets = out.split("The tickets now", 1)[1].split("==", 1)[0]
    statuses = {line.split()[0]: line.split()[1] for line in tickets.strip().splitlines()}
    # Olena's ticket was answered (open), Taras's resolved and then closed by his thanks, the newsletter closed
    assert statuses == {"#1": "open", "#2": "closed", "#3": "closed"}, tickets
    assert "Kind: resolution" in out and "Kind: command_result" in out


def test_broken_rule_files_make_ingest_exit_75_and_leave_reading_alone(postdesk: Run, site: Path) -> None:
    assert postdesk("ingest", "-", input=MAIL).returncode == 0
    (site / "rules" / "99-broken.toml").write_text('[[rule]]\nname = "x"\n[rule.when]\nsubjekt = "y"\n')
    result = postdesk("ingest", "-", input=raw_mail(message_id="<other@customer.example>"))
    assert result.returncode == 75, result.stderr
    assert b"99-broken.toml:" in result.stderr
    listed = postdesk("tickets", "list", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 1
    assert postdesk("check-config").returncode == 78


def test_quarantine_list_reprocess_and_discard(postdesk: Run, site: Path) -> None:
    no_sender = b"Subject: who sent this?\r\nMessage-ID: <nosender@x.example>\r\n\r\nHello?\r\n"
    assert postdesk("ingest", "-", input=no_sender).returncode == 0
    held = json.loads(postdesk("quarantine", "list", "--json").stdout)
    assert len(held) == 1 and "no sender" in held[0]["reason"] and held[0]["state"] == "held"
    text = postdesk("quarantine", "list").stdout.decode()
    assert "no sender" in text
    result = postdesk("quarantine", "reprocess", str(held[0]["id"]))
    assert result.returncode == 0 and b"quarantined" in result.stdout  # still no sender: held again
    again = json.loads(postdesk("quarantine", "list", "--json").stdout)
    assert len(again) == 1 and again[0]["id"] != held[0]["id"]
    assert postdesk("quarantine", "discard", str(again[0]["id"])).returncode == 0
    assert json.loads(postdesk("quarantine", "list", "--json").stdout) == []
    everything = json.loads(postdesk("quarantine", "list", "--all", "--json").stdout)
    assert {q["state"] for q in everything} == {"released", "discarded"}
    assert postdesk("quarantine", "discard", "999").returncode == 1


def test_under_systemd_the_daemon_says_ready_watchdog_and_stopping(postdesk: Run, site: Path) -> None:
    import socket

    assert postdesk("migrate").returncode == 0
    address = str(site / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(20)
    env = {**os.environ, "NOTIFY_SOCKET": address}
    with open(site / "daemon.log", "wb") as log:
        process = subprocess.Popen([*postdesk_command(), "-c", str(site / "postdesk.toml"), "run"], cwd=site,
                                   stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        said = listener.recv(4096).decode()
        assert "READY=1" in said and "STATUS=" in said
        assert "WATCHDOG=1" in listener.recv(4096).decode()
        process.send_signal(signal.SIGTERM)
        messages = []
        while not any("STOPPING=1" in m for m in messages):
            messages.append(listener.recv(4096).decode())
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        listener.close()


def test_run_once_killed_leaves_no_helper_process_behind(postdesk: Run, site: Path) -> None:
    """SIGKILL on `run --once` in the middle of its work: its sending process and its parse
    worker notice and end too, instead of draining the outbox forever as orphans."""
    (site / "var" / "mail").mkdir(parents=True)
    inbox = mailbox.Maildir(str(site / "var" / "mail" / "help"), create=True)
    for i in range(600):
        inbox.add(raw_mail(message_id=f"<kill-{i}@customer.example>", subject=f"Problem {i}",
                           sender=f"c{i}@customer.example"))
    assert postdesk("migrate").returncode == 0
    process = subprocess.Popen([*postdesk_command(), "-c", str(site / "postdesk.toml"), "run", "--once"], cwd=site,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    helpers: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while len(helpers) < 2 and time.monotonic() < deadline and process.poll() is None:
            helpers = list(children_of(process.pid))
            time.sleep(0.01)
        assert len(helpers) >= 2, "the sending process and the parse worker should have started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in helpers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in helpers if running(pid)]
    finally:
        if process.poll() is None:
            process.kill()
        for pid in helpers:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
