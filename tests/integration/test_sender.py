"""The outbox and the SMTP sender against a real aiosmtpd: outages, refusals, TLS, AUTH."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.app import App
from daemon.intake import take_in
from daemon.runtime import run_once
from daemon.sender import Sender
from daemon.store.models import Event, Outbox
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.servers.smtpd import SmtpServer


def statuses(app) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        rows = session.scalars(select(Outbox.status)).all()
    return {s: rows.count(s) for s in set(rows)}


def drain(app, at=NOW):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        sender = Sender(app, lambda: at)
        try:
            return await sender.drain()
        finally:
            await sender.close()
    return asyncio.run(go())


def test_mail_queued_while_the_server_is_down_is_delivered_once_when_it_is_back(
        tmp_path: Path, smtp: SmtpServer, sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        smtp.stop()
        for i in range(5):
            take_in(app, raw_mail(message_id=f"<down{i}@customer.example>", subject=f"s{i}"), "local", NOW)
        report = drain(app)
        assert (report.sent, report.retried) == (0, 5)
        assert drain(app).sent == 0, "nothing is due before the backoff"
        smtp.start()
        report = drain(app, NOW + timedelta(minutes=5))
        assert report.sent == 5
        assert drain(app, NOW + timedelta(hours=2)).sent == 0
        assert len(smtp.messages) == 5
        assert len({m.raw for m in smtp.messages}) == 5
        assert statuses(app) == {"sent": 5}
    finally:
        app.close()


def test_550_fails_the_mail_with_an_event_on_its_ticket(tmp_path: Path, smtp: SmtpServer, sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        smtp.fail_rcpt("olena@customer.example", 550, "5.1.1 no such user")
        take_in(app, raw_mail(), "local", NOW)
        report = drain(app)
        assert (report.sent, report.failed) == (0, 1)
        assert statuses(app) == {"failed": 1}
        with app.db.read() as session:
            event = session.scalar(select(Event).where(Event.kind == "delivery_failed"))
        assert event is not None and event.ticket_id is not None and "550" in event.detail["error"]
    finally:
        app.close()


def test_temporary_refusal_is_retried_then_delivered(tmp_path: Path, smtp: SmtpServer, sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        smtp.fail_next(451, "4.3.0 try again later", count=1, stage="rcpt")
        take_in(app, raw_mail(), "local", NOW)
        assert drain(app).retried == 1
        assert drain(app, NOW + timedelta(minutes=5)).sent == 1
        assert len(smtp.messages) == 1
    finally:
        app.close()


def test_partial_refusal_retries_only_the_refused_recipient(tmp_path: Path, smtp: SmtpServer,
                                                           sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        smtp.fail_rcpt("petro@customer.example", 452, "4.2.2 mailbox full", count=1)
        take_in(app, raw_mail(cc="petro@customer.example"), "local", NOW)
        # the acknowledgement goes to the requester only; a relay to requester + cc shows the partial case
        with app.db.write() as session:
            row = session.scalar(select(Outbox))
            row.recipients = ["olena@customer.example", "petro@customer.example"]
        assert drain(app).retried == 1
        assert [list(m.rcpt_tos) for m in smtp.messages] == [["olena@customer.example"]]
        assert drain(app, NOW + timedelta(minutes=5)).sent == 1
        assert list(smtp.messages[-1].rcpt_tos) == ["petro@customer.example"]
    finally:
        app.close()


def test_starttls_and_auth(tmp_path: Path, make_smtp_server, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    server = make_smtp_server(security="starttls", auth=("postdesk", "s3cret"))
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(server).app()
    try:
        take_in(app, raw_mail(), "local", NOW)
        assert drain(app).sent == 1
        received = server.messages[-1]
        assert received.tls and received.login == "postdesk"
    finally:
        app.close()


def test_run_once_exits_with_failure_when_a_mail_failed(tmp_path: Path, smtp: SmtpServer, sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        smtp.fail_rcpt("olena@customer.example", 550, "5.1.1 no such user")
        take_in(app, raw_mail(), "local", NOW)
        _, sent = run_once(app, lambda: NOW)
        assert sent.failed == 1 and sent.errors
    finally:
        app.close()


def test_a_subject_with_template_syntax_and_crlf_comes_back_literally(tmp_path: Path, smtp: SmtpServer,
                                                                    sqlite_url: str) -> None:
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        evil = raw_mail(subject="=?utf-8?q?{{_7*7_}}_and_{%_raw_%}=0D=0ABcc:_victim@evil.example?=")
        take_in(app, evil, "local", NOW)
        drain(app)
        sent = email.message_from_bytes(smtp.messages[-1].raw, policy=email.policy.default)
        assert "{{ 7*7 }}" in str(sent["Subject"]) and "49" not in str(sent["Subject"])
        assert sent["Bcc"] is None
        assert list(smtp.messages[-1].rcpt_tos) == ["olena@customer.example"]
        assert "{{ 7*7 }}" in sent.get_body(("plain",)).get_content()
    finally:
        app.close()


def test_a_queue_longer_than_one_claim_is_sent_batch_by_batch_each_mail_once(
        tmp_path: Path, smtp: SmtpServer, sqlite_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each batch's outcomes are recorded in the transaction that claims the next batch; a mail
    recorded there for a retry is not claimed again by the same pass."""
    monkeypatch.setattr("daemon.sender.CLAIM_BATCH", 3)
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        for i in range(8):
            take_in(app, raw_mail(message_id=f"<batch{i}@customer.example>", subject=f"s{i}",
                                  sender=f"customer{i}@customer.example"), "local", NOW)
        smtp.fail_rcpt("customer4@customer.example", 451, "4.2.0 later", count=1)
        report = drain(app)
        assert (report.sent, report.retried, report.failed) == (7, 1, 0)
        assert sorted(m.rcpt_tos[0] for m in smtp.messages) == sorted(
            f"customer{i}@customer.example" for i in range(8) if i != 4)
        assert statuses(app) == {"sent": 7, "queued": 1}
        assert drain(app, NOW + timedelta(minutes=5)).sent == 1
        assert len(smtp.messages) == 8 and statuses(app) == {"sent": 8}
    finally:
        app.close()


def test_once_the_server_cannot_be_reached_the_rest_of_the_batch_waits_for_the_retry(
        tmp_path: Path, smtp: SmtpServer, sqlite_url: str) -> None:
    """One connection attempt per worker, not one per mail: a server that times out would
    otherwise hold the whole batch for a timeout each."""
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    try:
        smtp.stop()
        for i in range(12):
            take_in(app, raw_mail(message_id=f"<away{i}@customer.example>", subject=f"s{i}",
                                  sender=f"customer{i}@customer.example"), "local", NOW)
        assert drain(app).retried == 12
        with app.db.read() as session:
            errors = session.scalars(select(Outbox.last_error)).all()
        not_tried = [e for e in errors if e.startswith("not tried, the server was unreachable: cannot connect")]
        assert len(not_tried) >= 12 - app.config.outbound.concurrency
        assert all("cannot connect" in e for e in errors)
        smtp.start()
        assert drain(app, NOW + timedelta(minutes=5)).sent == 12
        assert len(smtp.messages) == 12
    finally:
        app.close()


# RFC 6532: the address written in UTF-8 in the header, as an EAI-capable client sends it
UTF8_MAIL = ('From: "Jöhn Doe" <jdöe@mächine.example>\r\nTo: help@example.com\r\nSubject: Säying Hello\r\n'
             'Message-ID: <eai1@mächine.example>\r\nDate: Mon, 23 Nov 2026 09:15:00 +0100\r\n'
             'Content-Type: text/plain; charset=utf-8\r\n\r\nThe printer is offline.\r\n').encode()


def test_an_address_in_utf8_is_answered_with_smtputf8_where_the_server_offers_it(
        tmp_path: Path, sqlite_url: str) -> None:
    with SmtpServer(smtputf8=True) as server:
        server.start()
        app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(server).app()
        try:
            result = take_in(app, UTF8_MAIL, "local", NOW)
            assert (result.verdict.value, result.ticket_number) == ("stored", 1)
            assert drain(app).sent == 1
            [ack] = server.messages
            # the domain in its ASCII (IDNA) form; the local part stays UTF-8, so SMTPUTF8
            assert ack.rcpt_tos == ("jdöe@xn--mchine-bua.example",)
            assert "SMTPUTF8" in ack.mail_options
            assert "jdöe@xn--mchine-bua.example".encode() in ack.raw.split(b"\r\n\r\n")[0]
            assert ack.message["Subject"].startswith("[Support #1]")
            # UTF-8 in that address only; everything else in the header stays ASCII
            head = ack.raw.split(b"\r\n\r\n")[0].decode("utf-8").split("\r\n")
            assert [line[:3] for line in head if not line.isascii()] == ["To:"]
        finally:
            app.close()


@pytest.fixture
def smtp_app(tmp_path: Path, smtp: SmtpServer, sqlite_url: str) -> Iterator[App]:
    """A Maildir-fed Postdesk that sends through the `smtp` server, no agents configured."""
    app = Site(tmp_path, sqlite_url, agents="").maildir().smtp(smtp).app()
    yield app
    app.close()


def test_an_address_in_utf8_fails_clearly_where_the_server_has_no_smtputf8(smtp_app: App, smtp: SmtpServer) -> None:
    assert take_in(smtp_app, UTF8_MAIL, "local", NOW).ticket_number == 1
    report = drain(smtp_app)
    assert (report.sent, report.retried, report.failed) == (0, 0, 1)
    assert "SMTPUTF8" in report.errors[0]
    assert smtp.messages == []
    with smtp_app.db.read() as session:
        event = session.scalar(select(Event).where(Event.kind == "delivery_failed"))
    assert event is not None and "SMTPUTF8" in event.detail["error"]


def test_an_internationalised_domain_alone_goes_out_in_ascii(smtp_app: App, smtp: SmtpServer) -> None:
    raw = UTF8_MAIL.replace('"Jöhn Doe" <jdöe@mächine.example>'.encode(), "Jan <jan@bücher.example>".encode())
    take_in(smtp_app, raw, "local", NOW)
    assert drain(smtp_app).sent == 1
    [ack] = smtp.messages
    assert ack.rcpt_tos == ("jan@xn--bcher-kva.example",)
    assert "SMTPUTF8" not in ack.mail_options
    assert ack.raw.isascii()
    assert ack.message["To"] == "Jan <jan@xn--bcher-kva.example>"
