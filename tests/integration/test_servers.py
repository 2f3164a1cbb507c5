"""The test servers are real: Dovecot, the recording SMTP server and PostgreSQL answer
over the network the way the daemon will talk to them."""

from __future__ import annotations

import asyncio
import os
import pwd
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import psycopg
import pytest
import sqlalchemy as sa
from imapclient import IMAPClient

from tests.servers import TestCertificate
from tests.servers.dovecot import DEFAULT_CAPABILITIES, Dovecot, MailUser
from tests.servers.postgres import PgServer, drop_database
from tests.servers.smtpd import SmtpServer


def _mail(subject: str = "Printer on fire", to: str = "support@example.com") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Carol <carol@example.org>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{os.urandom(6).hex()}@example.org>"
    msg.set_content("It is on fire.\nPlease help.\n")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def _is_tls(client: IMAPClient) -> bool:
    return isinstance(client._imap.sock, ssl.SSLSocket)


# -- Dovecot --------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_append_then_read_back(dovecot: Dovecot, imap_user: MailUser, security: str) -> None:
    raw = _mail(f"over {security}")
    uid = dovecot.append(imap_user.name, raw, flags=[r"\Flagged"])

    with dovecot.imap_client(imap_user.name, security=security) as client:  # type: ignore[arg-type]
        assert _is_tls(client) == (security != "none")
        client.select_folder("INBOX", readonly=True)
        data = client.fetch([uid], ["BODY.PEEK[]", "FLAGS"])

    assert data[uid][b"BODY[]"] == raw
    assert b"\\Flagged" in data[uid][b"FLAGS"]
    assert dovecot.folder_uids(imap_user.name) == [uid]
    [fetched] = dovecot.fetch_all(imap_user.name)
    assert (fetched.uid, fetched.raw) == (uid, raw)
    assert "\\Flagged" in fetched.flags


def test_tls_certificate_is_verified(dovecot: Dovecot) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(dovecot.host, dovecot.ssl_port, ssl=True, ssl_context=ssl.create_default_context())
    with IMAPClient(
        dovecot.host,
        dovecot.ssl_port,
        ssl=True,
        ssl_context=ssl.create_default_context(cafile=dovecot.ca_path),
    ) as client:
        assert client.has_capability("AUTH=PLAIN")


def test_wrong_password_is_refused(dovecot: Dovecot, imap_user: MailUser) -> None:
    with dovecot.imap_client(imap_user.name, login=False) as client, pytest.raises(IMAPClient.Error):
        client.login(imap_user.name, "not-" + imap_user.password)


def test_folders_append_and_uids(dovecot: Dovecot, imap_user: MailUser) -> None:
    dovecot.create_folder(imap_user.name, "Postdesk/Done")
    assert "Postdesk/Done" in dovecot.folders(imap_user.name)
    uids = dovecot.append_many(imap_user.name, [_mail(f"n{i}") for i in range(5)], folder="Postdesk/Done")
    assert dovecot.folder_uids(imap_user.name, "Postdesk/Done") == uids == sorted(uids)
    assert dovecot.folder_uids(imap_user.name) == []


def test_capabilities(dovecot: Dovecot, dovecot_without_move_idle: Dovecot) -> None:
    full = dovecot.new_user()
    with dovecot.imap_client(full.name) as client:
        assert {c.decode() for c in client.capabilities()} == {c.upper() for c in DEFAULT_CAPABILITIES}
    limited = dovecot_without_move_idle.new_user()
    with dovecot_without_move_idle.imap_client(limited.name) as client:
        caps = {c.decode() for c in client.capabilities()}
    assert caps == {c.upper() for c in DEFAULT_CAPABILITIES} - {"MOVE", "IDLE"}
    assert "UIDPLUS" in caps


def test_idle_announces_mail_from_another_connection_within_a_second(dovecot: Dovecot, imap_user: MailUser) -> None:
    with dovecot.imap_client(imap_user.name) as client:
        client.select_folder("INBOX")
        client.idle()
        for n in (1, 2):
            started = time.monotonic()
            dovecot.append(imap_user.name, _mail(f"idle {n}"))
            seen: list[tuple[int, bytes]] = []
            while (n, b"EXISTS") not in seen and time.monotonic() - started < 5:
                seen += [r for r in client.idle_check(timeout=0.1) if len(r) == 2]
            elapsed = time.monotonic() - started
            assert (n, b"EXISTS") in seen
            assert elapsed < 1.0, f"IDLE took {elapsed:.2f} s to announce the mail"
        client.idle_done()


def test_restart_and_kill_keep_ports_and_mail(dovecot: Dovecot, imap_user: MailUser) -> None:
    uid = dovecot.append(imap_user.name, _mail("survives"))
    port, ssl_port, master = dovecot.port, dovecot.ssl_port, dovecot.pid

    dovecot.restart()
    assert (dovecot.port, dovecot.ssl_port) == (port, ssl_port)
    assert dovecot.pid != master
    assert dovecot.folder_uids(imap_user.name) == [uid]

    client = dovecot.imap_client(imap_user.name)
    client.select_folder("INBOX")
    dovecot.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((dovecot.host, port), timeout=1).close()
    with pytest.raises((OSError, IMAPClient.AbortError)):
        client.noop()
    client.shutdown()

    dovecot.start()
    assert dovecot.folder_uids(imap_user.name, "INBOX") == [uid]
    assert dovecot.fetch_all(imap_user.name)[0].raw.endswith(b"Please help.\r\n")


def _processes(pgid: int) -> dict[int, tuple[str, int]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
                if os.getpgid(int(entry)) != pgid:
                    continue
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            found[int(entry)] = (fields["Name"].strip(), int(fields["Uid"].split()[1]))  # effective uid
    return found


def test_dovecot_runs_unprivileged(dovecot: Dovecot, imap_user: MailUser) -> None:
    # over TLS, so that imap-login stays (as the TLS proxy) next to imap
    with dovecot.imap_client(imap_user.name, security="tls") as client:
        client.select_folder("INBOX")
        assert dovecot.pid is not None
        procs = _processes(dovecot.pid).values()
    uid_of = {name: uid for name, uid in procs}
    login_uid = pwd.getpwnam(dovecot.login_user).pw_uid
    assert uid_of["imap-login"] == login_uid
    assert uid_of["imap"] == dovecot.mail_uid
    assert uid_of["auth"] == pwd.getpwnam(dovecot.internal_user).pw_uid
    assert dovecot.maildir(imap_user.name).stat().st_uid == dovecot.mail_uid
    if os.geteuid() == 0:
        assert 0 not in (login_uid, dovecot.mail_uid, uid_of["auth"])
        # only the master and its log and config helpers stay root
        assert {name for name, uid in procs if uid == 0} <= {"dovecot", "log", "config"}


# -- SMTP -----------------------------------------------------------------------------


def test_smtp_records_mail(smtp: SmtpServer) -> None:
    raw = _mail("to smtp")
    with smtplib.SMTP(smtp.host, smtp.port) as client:
        client.sendmail("support@example.com", ["carol@example.org", "dave@example.org"], raw)
    [mail] = smtp.wait_for(1)
    assert mail.mail_from == "support@example.com"
    assert mail.rcpt_tos == ("carol@example.org", "dave@example.org")
    assert mail.raw == raw
    assert mail.message["Subject"] == "to smtp"
    assert not mail.tls and mail.login is None
    assert abs(mail.received_at - time.time()) < 5


def test_smtp_answers_failure_codes_on_cue(smtp: SmtpServer) -> None:
    smtp.fail_rcpt("bad@example.com", 550, "5.1.1 no such user")
    smtp.fail_next(451, "4.3.0 try later", count=2)

    def send(*rcpts: str) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(smtp.host, smtp.port) as client:
            return client.sendmail("support@example.com", list(rcpts), _mail())

    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send("good@example.com")
        assert refused.value.recipients == {"good@example.com": (451, b"4.3.0 try later")}
    assert send("good@example.com", "BAD@example.com") == {"BAD@example.com": (550, b"5.1.1 no such user")}
    assert [m.rcpt_tos for m in smtp.messages] == [("good@example.com",)]

    smtp.fail_next(554, "5.6.0 content rejected", stage="data")
    with pytest.raises(smtplib.SMTPDataError) as data_error:
        send("good@example.com")
    assert data_error.value.smtp_code == 554
    smtp.fail_next(421, "4.7.0 not now", stage="mail")
    with pytest.raises(smtplib.SMTPSenderRefused):
        send("good@example.com")
    assert len(smtp.messages) == 1
    assert [(r.stage, r.code) for r in smtp.refusals] == [
        ("rcpt", 451), ("rcpt", 451), ("rcpt", 550), ("data", 554), ("mail", 421)
    ]  # fmt: skip

    smtp.clear_failures()
    send("bad@example.com")
    assert len(smtp.wait_for(2)) == 2


def test_smtp_outage_on_the_same_port(smtp: SmtpServer) -> None:
    port = smtp.port
    smtp.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp.host, port, timeout=2)
    smtp.start()
    assert smtp.port == port
    with smtplib.SMTP(smtp.host, port) as client:
        client.sendmail("support@example.com", ["carol@example.org"], _mail())
    smtp.wait_for(1)


def test_wait_for_times_out_saying_what_arrived(smtp: SmtpServer) -> None:
    with pytest.raises(TimeoutError, match="0 mail"):
        smtp.wait_for(1, timeout=0.1)


def test_smtp_starttls_and_auth(make_smtp_server: Callable[..., SmtpServer], tls_certificate: TestCertificate) -> None:
    server = make_smtp_server(security="starttls", auth=("support", "s3cret"))
    context = tls_certificate.client_context()

    with smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("support@example.com", ["carol@example.org"], _mail())
        assert refused.value.smtp_code == 530
    with smtplib.SMTP(server.host, server.port) as client:
        client.starttls(context=context)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("support", "wrong")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("support@example.com", ["carol@example.org"], _mail())
    with smtplib.SMTP(server.host, server.port) as client:
        client.starttls(context=context)
        client.login("support", "s3cret")
        client.sendmail("support@example.com", ["carol@example.org"], _mail("secured"))
    [mail] = server.wait_for(1)
    assert mail.tls and mail.login == "support"
    assert mail.message["Subject"] == "secured"


def test_aiosmtplib_over_implicit_tls_and_starttls(
    make_smtp_server: Callable[..., SmtpServer], tls_certificate: TestCertificate
) -> None:
    implicit = make_smtp_server(security="tls", auth=("u", "p"))
    starttls = make_smtp_server(security="starttls")
    context = tls_certificate.client_context()
    raw = _mail("async")

    async def send() -> None:
        await aiosmtplib.send(
            raw, sender="support@example.com", recipients=["carol@example.org"],
            hostname=implicit.host, port=implicit.port, use_tls=True, tls_context=context,
            username="u", password="p",
        )  # fmt: skip
        await aiosmtplib.send(
            raw, sender="support@example.com", recipients=["carol@example.org"],
            hostname=starttls.host, port=starttls.port, start_tls=True, tls_context=context,
        )  # fmt: skip

    asyncio.run(send())
    [a] = implicit.wait_for(1)
    [b] = starttls.wait_for(1)
    assert a.raw == b.raw == raw
    assert a.tls and b.tls and a.login == "u"


# -- PostgreSQL and the db_url fixture ------------------------------------------------


def _databases(pg: PgServer) -> set[str]:
    with pg.connect() as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_fresh_pg_database_takes_a_table_and_is_dropped(pg_admin: PgServer, fresh_pg_url: Callable[[], str]) -> None:
    url = fresh_pg_url()
    name = sa.make_url(url).database
    assert url.startswith("postgresql+psycopg://") and name and name.startswith("postdesk_test_")
    assert name in _databases(pg_admin)

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id serial PRIMARY KEY, body text NOT NULL)"))
        conn.execute(sa.text("INSERT INTO t (body) VALUES ('hello')"))
    lingering = engine.connect()  # the drop must not wait for it
    assert lingering.execute(sa.text("SELECT body FROM t")).scalar_one() == "hello"
    assert fresh_pg_url() != url

    drop_database(pg_admin, url)
    assert name not in _databases(pg_admin)
    with pytest.raises(sa.exc.OperationalError):
        lingering.execute(sa.text("SELECT 1"))
    lingering.invalidate()
    engine.dispose()
    drop_database(pg_admin, url)  # already gone: no error (the session end drops it again)


def test_drop_refuses_a_database_that_is_not_a_test_one(pg_admin: PgServer) -> None:
    with pytest.raises(ValueError, match="not a test database"):
        drop_database(pg_admin, "postgres")


def test_db_url_gives_an_empty_database(db_url: str, request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["db_url"]
    engine = sa.create_engine(db_url)
    try:
        assert engine.dialect.name == kind
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE ticket (number integer PRIMARY KEY, subject text)"))
            conn.execute(sa.text("INSERT INTO ticket VALUES (1, 'Printer on fire')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT subject FROM ticket")).scalar_one() == "Printer on fire"
    finally:
        engine.dispose()
    if kind == "postgresql":
        with psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql")) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (sa.make_url(db_url).database,)
