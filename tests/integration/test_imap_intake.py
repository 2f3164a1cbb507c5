"""Intake from a real Dovecot: every mail stored once, then marked done on the server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.runtime import run_once
from daemon.store.models import Message, Quarantine, Ticket
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.servers.dovecot import Dovecot, MailUser


def count(app, model) -> int:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def customer_mails(n: int, prefix: str = "m") -> list[bytes]:
    return [raw_mail(sender=f"Customer {i} <c{i}@customer.example>", subject=f"Problem number {i}",
                     message_id=f"<{prefix}{i}@customer.example>", body=f"Details of problem {i}.\n")
            for i in range(n)]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_run_once_takes_50_mails_into_50_tickets_and_a_second_run_none(
        db: str, tmp_path: Path, dovecot: Dovecot, imap_user: MailUser, sqlite_url: str, fresh_pg_url) -> None:
    url = sqlite_url if db == "sqlite" else fresh_pg_url()
    dovecot.append_many(imap_user.name, customer_mails(50))
    app = Site(tmp_path, url).imap(dovecot, imap_user).app()
    try:
        intake, sent = run_once(app, lambda: NOW)
        assert (intake.taken, intake.quarantined, intake.errors) == (50, 0, [])
        assert count(app, Ticket) == 50
        assert sent.sent == 50 + 50 * 2  # acknowledgements, and a notification to each of the two agents
        assert dovecot.folder_uids(imap_user.name, "INBOX") == []
        assert len(dovecot.folder_uids(imap_user.name, "Postdesk/Processed")) == 50
        intake, _ = run_once(app, lambda: NOW)
        assert intake.taken == 0 and count(app, Ticket) == 50
    finally:
        app.close()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls(security: str, tmp_path: Path, dovecot: Dovecot, imap_user: MailUser,
                          sqlite_url: str) -> None:
    dovecot.append_many(imap_user.name, customer_mails(2))
    app = Site(tmp_path, sqlite_url).imap(dovecot, imap_user, security=security).app()
    try:
        assert run_once(app, lambda: NOW)[0].taken == 2
    finally:
        app.close()


def test_keyword_mode_marks_instead_of_moving(tmp_path: Path, dovecot: Dovecot, imap_user: MailUser,
                                              sqlite_url: str) -> None:
    dovecot.append_many(imap_user.name, customer_mails(3))
    app = Site(tmp_path, sqlite_url).imap(dovecot, imap_user, done="keyword").app()
    try:
        assert run_once(app, lambda: NOW)[0].taken == 3
        mails = dovecot.fetch_all(imap_user.name, "INBOX")
        assert len(mails) == 3 and all("$PostdeskDone" in m.flags for m in mails)
        assert "\\Seen" not in mails[0].flags, "BODY.PEEK[] must not mark mail read"
        assert run_once(app, lambda: NOW)[0].taken == 0
    finally:
        app.close()


def test_server_without_move_gets_copy_and_expunge(tmp_path: Path, dovecot_without_move_idle: Dovecot,
                                                   sqlite_url: str) -> None:
    server = dovecot_without_move_idle
    user = server.new_user()
    server.append_many(user.name, customer_mails(4))
    app = Site(tmp_path, sqlite_url).imap(server, user).app()
    try:
        assert run_once(app, lambda: NOW)[0].taken == 4
        assert server.folder_uids(user.name, "INBOX") == []
        assert len(server.folder_uids(user.name, "Postdesk/Processed")) == 4
    finally:
        app.close()


def test_a_bad_mail_is_quarantined_and_does_not_block_the_others(tmp_path: Path, dovecot: Dovecot,
                                                                imap_user: MailUser, sqlite_url: str) -> None:
    bad = b"Subject: no sender at all\r\nMessage-ID: <bad@x>\r\n\r\nWho sent this?\r\n"
    dovecot.append_many(imap_user.name, [customer_mails(1, "a")[0], bad, customer_mails(1, "b")[0]])
    app = Site(tmp_path, sqlite_url).imap(dovecot, imap_user).app()
    try:
        intake, _ = run_once(app, lambda: NOW)
        assert (intake.taken, intake.quarantined) == (2, 1)
        assert len(dovecot.folder_uids(imap_user.name, "Postdesk/Quarantine")) == 1
        with app.db.read() as session:
            reasons = session.scalars(select(Quarantine.reason)).all()
        assert reasons and "no sender" in reasons[0]
    finally:
        app.close()


def test_uidvalidity_change_rescans_without_duplicates(tmp_path: Path, dovecot: Dovecot, imap_user: MailUser,
                                                       sqlite_url: str) -> None:
    mails = customer_mails(5)
    dovecot.create_folder(imap_user.name, "Support")
    dovecot.append_many(imap_user.name, mails, folder="Support")
    app = Site(tmp_path, sqlite_url).imap(dovecot, imap_user, folder="Support", done="keyword").app()
    try:
        assert run_once(app, lambda: NOW)[0].taken == 5
        with dovecot.imap_client(imap_user.name) as client:
            client.delete_folder("Support")
            client.create_folder("Support")
        dovecot.append_many(imap_user.name, mails, folder="Support")  # the same mails, new UIDVALIDITY
        intake, _ = run_once(app, lambda: NOW)
        assert (intake.taken, intake.duplicates) == (0, 5)
        assert count(app, Ticket) == 5
        with app.db.read() as session:
            inbound = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in"))
        assert inbound == 5
        assert all("$PostdeskDone" in m.flags for m in dovecot.fetch_all(imap_user.name, "Support"))
    finally:
        app.close()


@pytest.mark.parametrize("verbose", [False, True])
def test_imaplib_formats_the_conversation_only_when_it_is_logged(verbose: bool, tmp_path: Path, dovecot: Dovecot,
                                                                 imap_user: MailUser, sqlite_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """imapclient makes imaplib describe every response it reads (each fetched mail as a
    repr); Postdesk has that done only when the "imapclient.imaplib" logger is listening."""
    from daemon.adapters.imap import connect_imap

    dovecot.append_many(imap_user.name, customer_mails(3, "quiet"))
    app = Site(tmp_path, sqlite_url).imap(dovecot, imap_user).app()
    caplog.set_level(logging.DEBUG if verbose else logging.INFO, logger="imapclient.imaplib")
    imap = connect_imap(app.config.mailboxes[0])
    described: list[object] = []
    assert imap.client is not None
    original = imap.client._imap._mesg
    imap.client._imap._mesg = lambda *args: described.append(args) or original(*args)
    try:
        assert len(list(imap.fetch(imap.waiting_uids()))) == 3
    finally:
        imap.close()
        app.close()
    if verbose:
        assert any("Details of problem 1" in str(args) for args in described)
        assert "FETCH" in caplog.text
    else:
        assert described == []
