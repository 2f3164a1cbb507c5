"""`run --once` with the sender in a process of its own (two CPUs or more): every mail the
intake queues is delivered once, the sending process is gone afterwards, and if it dies
without a report this process sends what is left."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon import runtime
from daemon.runtime import run_once
from daemon.store.models import Outbox
from tests.harness import Site
from tests.mailfactory import raw_mail
from tests.servers.smtpd import SmtpServer

COUNT = 30


def drop_mails(site: Site, count: int) -> None:
    new = site.root / "mail" / "local" / "new"
    new.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (new / f"{i}.eml").write_bytes(raw_mail(message_id=f"<once{i}@customer.example>", subject=f"Question {i}",
                                                sender=f"customer{i}@customer.example"))


def outbox_states(app) -> list[str]:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        return list(session.scalars(select(Outbox.status)))


def die_without_report(*args: object) -> None:
    """Stands in for the sending process: gone at once, nothing sent, nothing said."""
    os._exit(3)


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the path under test, whatever this machine has


def test_the_sending_process_delivers_each_acknowledgement_once(tmp_path: Path, smtp: SmtpServer,
                                                                db_url: str) -> None:
    site = Site(tmp_path, db_url, agents="").maildir().smtp(smtp)
    app = site.app()
    try:
        drop_mails(site, COUNT)
        intake, sent = run_once(app, sender_process=True)
        assert (intake.taken, intake.errors) == (COUNT, [])
        assert (sent.sent, sent.failed, sent.errors) == (COUNT, 0, [])
        assert len(smtp.wait_for(COUNT)) == COUNT
        assert len({mail.raw for mail in smtp.messages}) == COUNT
        assert outbox_states(app) == ["sent"] * COUNT
        assert not [p for p in multiprocessing.active_children() if p.name == "postdesk-sender"]
    finally:
        app.close()


def test_this_process_sends_when_the_sending_process_dies(tmp_path: Path, smtp: SmtpServer, sqlite_url: str,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(runtime, "send_until_done", die_without_report)
    site = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp)
    app = site.app()
    try:
        drop_mails(site, COUNT)
        intake, sent = run_once(app, sender_process=True)
        assert intake.taken == COUNT
        assert (sent.sent, sent.failed) == (COUNT, 0)
        assert len(smtp.wait_for(COUNT)) == COUNT
        assert outbox_states(app) == ["sent"] * COUNT
        assert "the sending process ended without a report (exit 3)" in caplog.text
    finally:
        app.close()
