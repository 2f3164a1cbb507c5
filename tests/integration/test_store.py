"""The store on SQLite and PostgreSQL: schema, idempotent intake, numbers, blobs, merge, outbox."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from daemon.core.values import Verdict
from daemon.errors import TemporaryError
from daemon.intake import take_in
from daemon.quarantine import reprocess
from daemon.store import outbox
from daemon.store.apply import merge_into_target
from daemon.store.db import Database
from daemon.store.migrate import current_revision, upgrade
from daemon.store.models import AttachmentRow, Base, Blob, Outbox, Quarantine, Ticket
from daemon.store.queries import attachment_content
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail


def count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_migrations_create_the_models_schema(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = Database(db_url)
    try:
        assert current_revision(db) is None
        upgrade(db)
        assert current_revision(db) == "0001"
        upgrade(db)  # a second upgrade changes nothing
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}),
                                           Base.metadata)
        assert differences == []
    finally:
        db.dispose()


def test_intake_is_idempotent_and_threads_follow_ups(db_url: str, tmp_path: Path) -> None:
    app = Site(tmp_path, db_url).maildir().app()
    try:
        first = take_in(app, raw_mail(), "local", NOW)
        assert first.verdict is Verdict.STORED and first.ticket_number == 1
        assert take_in(app, raw_mail(), "local", NOW).verdict is Verdict.DUPLICATE
        reply = raw_mail(subject="Re: [Support #1] Printer", message_id="<m2@customer.example>",
                         headers={"In-Reply-To": "<m1@customer.example>"})
        assert take_in(app, reply, "local", NOW).ticket_number == 1
        assert count(app, Ticket) == 1
    finally:
        app.close()


def test_ticket_numbers_are_unique_under_concurrent_intake(db_url: str, tmp_path: Path) -> None:
    app = Site(tmp_path, db_url).maildir().app()
    numbers: list[int] = []
    errors: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            for i in range(start, start + 10):
                result = take_in(app, raw_mail(message_id=f"<c{i}@customer.example>", subject=f"s{i}"), "local", NOW)
                numbers.append(result.ticket_number or 0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n * 100,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert sorted(numbers) == list(range(1, 41))
    finally:
        app.close()


def test_attachments_of_incoming_mail_live_in_its_raw_mail_and_come_back_from_it(db_url: str, tmp_path: Path) -> None:
    from email.message import EmailMessage

    def with_attachment(message_id: str) -> bytes:
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = "c@customer.example", "help@example.com", "log"
        mail["Message-ID"] = message_id
        mail.set_content("see the log")
        mail.add_attachment(b"x" * 5000, maintype="application", subtype="octet-stream", filename="log.bin")
        return mail.as_bytes()

    app = Site(tmp_path, db_url).maildir().app()
    try:
        take_in(app, with_attachment("<a1@x>"), "local", NOW)
        take_in(app, with_attachment("<a2@x>"), "local", NOW)
        assert count(app, AttachmentRow) == 2
        with app.db.read() as session:
            rows = session.scalars(select(AttachmentRow)).all()
            assert {(row.sha256, row.blob_sha256, row.size) for row in rows} == {
                (hashlib.sha256(b"x" * 5000).hexdigest(), None, 5000)}
            # the content is kept once, in each raw mail (the only blobs), and decoded from there
            assert [attachment_content(session, row) for row in rows] == [b"x" * 5000] * 2
        assert count(app, Blob) == 2
    finally:
        app.close()


def test_merge_moves_messages_and_keeps_the_old_number_working(db_url: str, tmp_path: Path) -> None:
    app = Site(tmp_path, db_url).maildir().app()
    try:
        take_in(app, raw_mail(message_id="<x1@x>", subject="first"), "local", NOW)
        take_in(app, raw_mail(sender="petro@customer.example", message_id="<x2@x>", subject="second"), "local", NOW)
        with app.db.write() as session:
            source = session.scalar(select(Ticket).where(Ticket.number == 2))
            merge_into_target(session.connection(), source, 1, NOW)
        follow = take_in(app, raw_mail(sender="petro@customer.example", subject="Re: [Support #2] second",
                                       message_id="<x3@x>"), "local", NOW)
        assert follow.ticket_number == 1
        with app.db.read() as session:
            target = session.scalar(select(Ticket).where(Ticket.number == 1))
            assert "petro@customer.example" in [p.email for p in target.participants]
    finally:
        app.close()


def test_outbox_claim_retry_fail_and_lease_expiry(db_url: str, tmp_path: Path) -> None:
    app = Site(tmp_path, db_url).maildir().app()
    try:
        take_in(app, raw_mail(), "local", NOW)
        queued = count(app, Outbox, Outbox.status == "queued")
        assert queued == 3
        items = outbox.claim_due(app.db, "w1", NOW, 10)
        assert len(items) == 3 and outbox.claim_due(app.db, "w2", NOW, 10) == []
        with app.db.write() as session:
            assert outbox.retry_in(session, items[0], "451 later", NOW, timedelta(hours=1), timedelta(minutes=5))
            outbox.failed_in(session, items[1], "550 no such user", NOW)
            outbox.sent_in(session, items[2], NOW)
        assert outbox.claim_due(app.db, "w1", NOW, 10) == []  # the retry is not due yet
        assert len(outbox.claim_due(app.db, "w1", NOW + timedelta(minutes=10), 10)) == 1
        # a claim whose worker died is taken again once its lease runs out
        assert len(outbox.claim_due(app.db, "w2", NOW + timedelta(minutes=30), 10)) == 1
        assert count(app, Outbox, Outbox.status == "failed") == 1
    finally:
        app.close()


def test_a_crash_in_processing_quarantines_and_reprocess_takes_it_in(db_url: str, tmp_path: Path) -> None:
    app = Site(tmp_path, db_url).maildir().app()
    try:
        broken = app.renderer.sources.pop("en/acknowledgement.txt.j2")
        result = take_in(app, raw_mail(), "local", NOW)
        assert result.verdict is Verdict.QUARANTINED and "LookupError" in result.reason
        assert count(app, Ticket) == 0 and count(app, Quarantine) == 1
        assert take_in(app, raw_mail(), "local", NOW).verdict is Verdict.DUPLICATE  # not taken twice
        app.renderer.sources["en/acknowledgement.txt.j2"] = broken
        app.renderer.env.cache.clear() if app.renderer.env.cache else None
        with app.db.read() as session:
            entry = session.scalar(select(Quarantine.id))
        assert reprocess(app, entry, NOW).verdict is Verdict.STORED
        assert count(app, Ticket) == 1
    finally:
        app.close()


def test_sqlite_runs_in_wal_with_foreign_keys_and_commits_on_disk(sqlite_url: str, tmp_path: Path) -> None:
    app = Site(tmp_path, sqlite_url).maildir().app()
    try:
        with app.db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            # FULL (2): a commit survives a power cut, so a mail marked done after it is never lost
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        app.close()
    assert create_engine  # used by other tests' helpers


def _hold_the_write_lock(db: Database, holding: threading.Event, spans: list[float], gap: float) -> None:
    """Two write transactions of `spans` seconds each, `gap` seconds apart (the intake's pattern:
    a batch's transaction, a moment marking it done in the mailbox, the next batch's)."""
    for number, span in enumerate(spans):
        with db.write() as session:
            session.execute(text("INSERT INTO lock_probe VALUES ('holder', 0)"))
            holding.set()
            time.sleep(span)
        if number < len(spans) - 1:
            time.sleep(gap)


def test_a_waiting_sqlite_writer_takes_the_short_gap_between_another_writers_transactions(
        sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        with db.write() as session:
            session.execute(text("CREATE TABLE lock_probe (who TEXT, at REAL)"))
        holding = threading.Event()
        holder = threading.Thread(target=_hold_the_write_lock, args=(db, holding, [0.5, 0.5], 0.02))
        holder.start()
        holding.wait(5)
        with db.write() as session:  # waits for the first transaction only, not both
            session.execute(text("INSERT INTO lock_probe VALUES ('waiter', 0)"))
            waited_for = session.execute(text("SELECT count(*) FROM lock_probe WHERE who = 'holder'")).scalar()
        holder.join()
        assert waited_for == 1
    finally:
        db.dispose()


def test_a_sqlite_writer_gives_up_after_lock_wait_with_a_temporary_error(sqlite_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("daemon.store.db.LOCK_WAIT", 0.3)
    db = Database(sqlite_url)
    try:
        with db.write() as session:
            session.execute(text("CREATE TABLE lock_probe (who TEXT, at REAL)"))
        holding = threading.Event()
        holder = threading.Thread(target=_hold_the_write_lock, args=(db, holding, [1.5], 0.0))
        holder.start()
        holding.wait(5)
        started = time.monotonic()
        with pytest.raises(TemporaryError, match="database busy"), db.write() as session:
            session.execute(text("INSERT INTO lock_probe VALUES ('waiter', 0)"))
        waited = time.monotonic() - started
        holder.join()
        assert 0.25 <= waited < 1.4
        with db.write() as session:  # the connection works again once the lock is free
            session.execute(text("INSERT INTO lock_probe VALUES ('after', 0)"))
    finally:
        db.dispose()
