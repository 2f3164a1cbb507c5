"""Intake under faults, against a real Dovecot and the real `postdesk run` process:
IDLE latency, a server restart in the middle of a batch, SIGKILL at random points."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.runtime import run_once
from daemon.store.models import Message, Ticket
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.servers.dovecot import Dovecot, MailUser


def mails(n: int, prefix: str) -> list[bytes]:
    return [raw_mail(sender=f"c{i}@customer.example", subject=f"{prefix} {i}", message_id=f"<{prefix}-{i}@c.example>")
            for i in range(n)]


def daemon(config: Path) -> subprocess.Popen[bytes]:
    """`postdesk run`, logging to a file (a pipe nobody reads would fill up and block it)."""
    with open(config.parent / "daemon.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "daemon", "-c", str(config), "run"],
                                stdout=subprocess.DEVNULL, stderr=log, cwd=config.parent)


def stop(process: subprocess.Popen[bytes], config_dir: Path) -> bytes:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return (config_dir / "daemon.log").read_bytes()


def counts(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        inbound = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) or 0
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
    return inbound, tickets


def wait_until(condition, timeout: float, step: float = 0.01) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def test_idle_takes_a_mail_appended_while_the_reader_waits_in_under_a_second(
        tmp_path: Path, dovecot: Dovecot, imap_user: MailUser, sqlite_url: str) -> None:
    site = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user)
    app = site.app()
    process = daemon(site.write())
    try:
        assert wait_until(lambda: _ready(app), 20)
        time.sleep(1.0)  # the reader is now in IDLE
        latencies = []
        for index in range(3):
            appended = time.monotonic()
            dovecot.append(imap_user.name, raw_mail(message_id=f"<idle-{index}@c.example>", subject=f"idle {index}"))
            assert wait_until(lambda i=index: counts(app)[1] == i + 1, 5)
            latencies.append(time.monotonic() - appended)
            time.sleep(0.3)
        assert max(latencies) < 1.0, latencies
    finally:
        err = stop(process, tmp_path)
        app.close()
    assert process.returncode == 0, err[-2000:]


def _ready(app) -> bool:  # type: ignore[no-untyped-def]
    from daemon.store.models import MailboxState

    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(MailboxState)) == 1


def test_dovecot_restart_in_the_middle_of_a_batch_loses_and_doubles_nothing(
        tmp_path: Path, make_dovecot, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    server = make_dovecot()
    user = server.new_user()
    server.append_many(user.name, mails(500, "restart"))
    site = Site(tmp_path, sqlite_url, agents="").imap(server, user, batch_size=50)
    app = site.app()
    process = daemon(site.write())
    try:
        assert wait_until(lambda: counts(app)[0] >= 60, 60)
        server.restart()
        finished = wait_until(lambda: counts(app)[0] >= 500 and not server.folder_uids(user.name), 120, 0.2)
    finally:
        err = stop(process, tmp_path)
        app.close()
    assert finished, (counts(site.app()), err.decode(errors="replace")[-3000:])
    app = site.app()
    try:
        assert counts(app) == (500, 500)
        assert len(server.folder_uids(user.name, "Postdesk/Processed")) == 500
    finally:
        app.close()
    assert b"reconnected" in err or b"IMAP trouble" in err


@pytest.mark.slow
def test_sigkill_at_random_points_while_taking_in_500_mails(tmp_path: Path, dovecot: Dovecot,
                                                           imap_user: MailUser, sqlite_url: str) -> None:
    dovecot.append_many(imap_user.name, mails(500, "kill"))
    site = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user, batch_size=40)
    config = site.write()
    app = site.app()
    rng = random.Random(int(os.environ.get("POSTDESK_FAULT_SEED", "20261124")))
    kills = 0
    try:
        for _ in range(6):
            process = daemon(config)
            time.sleep(rng.uniform(0.3, 2.5))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            kills += 1
            if not dovecot.folder_uids(imap_user.name):
                break
        intake, _ = run_once(app, lambda: NOW)  # whatever is left, and nothing twice
        assert intake.errors == []
        assert counts(app) == (500, 500)
        assert dovecot.folder_uids(imap_user.name) == []
        processed = dovecot.fetch_all(imap_user.name, "Postdesk/Processed")
        assert len(processed) == 500
        assert len({m.raw for m in processed}) == 500
    finally:
        app.close()
    assert kills >= 1


def test_reader_thread_stops_cleanly_when_asked(tmp_path: Path, dovecot: Dovecot, imap_user: MailUser,
                                                sqlite_url: str) -> None:
    from daemon.readers import run_imap_reader

    app = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user).app()
    stop_event = threading.Event()
    thread = threading.Thread(target=run_imap_reader, args=(app, app.config.mailboxes[0], lambda: NOW, stop_event))
    try:
        thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        stop_event.set()
        thread.join(timeout=10)
        assert not thread.is_alive() and time.monotonic() - started < 2
    finally:
        stop_event.set()
        app.close()


def test_a_server_without_idle_is_polled(tmp_path: Path, dovecot_without_move_idle: Dovecot, sqlite_url: str) -> None:
    from daemon.readers import run_imap_reader

    server = dovecot_without_move_idle
    user = server.new_user()
    app = Site(tmp_path, sqlite_url, agents="").imap(server, user, poll_interval=1).app()
    stop_event = threading.Event()
    thread = threading.Thread(target=run_imap_reader, args=(app, app.config.mailboxes[0], lambda: NOW, stop_event))
    try:
        thread.start()
        time.sleep(1.5)
        server.append(user.name, raw_mail(message_id="<polled@c.example>", subject="polled"))
        assert wait_until(lambda: counts(app)[1] == 1, 5)
        assert wait_until(lambda: server.folder_uids(user.name) == [], 5)
    finally:
        stop_event.set()
        thread.join(timeout=10)
        app.close()


def test_while_mail_keeps_coming_the_reader_looks_again_soon_then_goes_back_to_its_schedule(
        tmp_path: Path, dovecot_without_move_idle: Dovecot, sqlite_url: str) -> None:
    """burst_recheck: after a pass that took mail, the reader looks again every 0.1 s for a
    second (Dovecot announces mail over IDLE only ~0.5 s after it comes); once mail stops, it
    waits as configured (here: polls every 30 s, the server having no IDLE)."""
    from daemon.readers import BURST_QUIET, run_imap_reader

    server = dovecot_without_move_idle
    user = server.new_user()
    app = Site(tmp_path, sqlite_url, agents="").imap(server, user, poll_interval=30, burst_recheck=0.1).app()
    stop_event = threading.Event()
    thread = threading.Thread(target=run_imap_reader, args=(app, app.config.mailboxes[0], lambda: NOW, stop_event))
    try:
        server.append(user.name, raw_mail(message_id="<first@c.example>", subject="first"))
        thread.start()
        assert wait_until(lambda: counts(app)[1] == 1, 10)
        time.sleep(0.3)
        server.append(user.name, raw_mail(message_id="<burst@c.example>", subject="burst", sender="b@c.example"))
        assert wait_until(lambda: counts(app)[1] == 2, 3), "a mail during a burst is taken in at once"
        time.sleep(BURST_QUIET + 0.5)
        server.append(user.name, raw_mail(message_id="<later@c.example>", subject="later", sender="l@c.example"))
        assert not wait_until(lambda: counts(app)[1] == 3, 3), "after the burst, the poll interval applies again"
    finally:
        stop_event.set()
        thread.join(timeout=10)
        app.close()
