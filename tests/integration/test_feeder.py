"""`run --once` with the feeder: the IMAP mailboxes' mail fetched and parsed by a process of
its own, stored and marked by this one. Against a real Dovecot: every mail once, marked only
after its commit, and nothing lost when the feeder dies or the run is killed."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from daemon.feeder import Feeder, FeedFailed
from daemon.runtime import run_once
from daemon.store.models import Message, Ticket
from tests.harness import Site
from tests.mailfactory import NOW, raw_mail
from tests.servers import children_of, running
from tests.servers.dovecot import Dovecot, MailUser

PROCESSED = "Postdesk/Processed"


def mails(n: int, prefix: str, body: str = "It prints nothing.\n") -> list[bytes]:
    return [raw_mail(sender=f"c{i}@customer.example", subject=f"{prefix} {i}", message_id=f"<{prefix}-{i}@c.example>",
                     body=body) for i in range(n)]


def counts(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with app.db.read() as session:
        inbound = session.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) or 0
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
    return inbound, tickets


@pytest.fixture(autouse=True)
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the feeder is for machines with two CPUs or more


def test_two_imap_mailboxes_and_a_maildir_each_mail_once_and_marked(tmp_path: Path, dovecot: Dovecot,
                                                                    sqlite_url: str) -> None:
    first, second = dovecot.new_user(), dovecot.new_user()
    dovecot.append_many(first.name, mails(70, "first"))
    dovecot.append_many(second.name, mails(30, "second"))
    new = tmp_path / "mail" / "local" / "new"
    new.mkdir(parents=True)
    for index, raw in enumerate(mails(5, "local")):
        (new / f"{index}.eml").write_bytes(raw)
    site = (Site(tmp_path, sqlite_url, agents="").imap(dovecot, first, batch_size=20)
            .maildir(address="local@example.com")
            .imap(dovecot, second, name="second", address="second@example.com", batch_size=20))
    app = site.app()
    feeder = Feeder.start(app.config, NOW)
    assert feeder is not None and feeder.mailboxes == ("support", "second")
    try:
        intake, _ = run_once(app, lambda: NOW, feeder=feeder)
        assert (intake.taken, intake.errors) == (105, [])
        assert counts(app) == (105, 105)
        for user, count in ((first, 70), (second, 30)):
            assert dovecot.folder_uids(user.name) == []
            assert len(dovecot.folder_uids(user.name, PROCESSED)) == count
        feeder.process.join(timeout=10)
        assert feeder.process.exitcode == 0  # it ended by itself, done
    finally:
        feeder.close()
        app.close()


def test_a_feeder_killed_midway_costs_no_mail_and_doubles_none(tmp_path: Path, dovecot: Dovecot,
                                                               imap_user: MailUser, sqlite_url: str,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    big = "Line of a long report about the printer.\n" * 500  # ~20 KB: more than the pipe holds
    dovecot.append_many(imap_user.name, mails(120, "killed", big))
    app = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user, batch_size=10).app()
    feeder = Feeder.start(app.config, NOW)
    assert feeder is not None
    original = feeder.batches

    def kill_after_the_first_batch(mailbox: str, sizes: Sequence[int]) -> Iterator[list[Any]]:
        for number, batch in enumerate(original(mailbox, sizes)):
            yield batch
            if number == 0:
                os.kill(feeder.process.pid, signal.SIGKILL)

    feeder.batches = kill_after_the_first_batch  # type: ignore[method-assign]
    try:
        intake, _ = run_once(app, lambda: NOW, feeder=feeder)
        assert (intake.taken, intake.errors) == (120, [])
        assert counts(app) == (120, 120)
        assert dovecot.folder_uids(imap_user.name) == []
        assert len(dovecot.folder_uids(imap_user.name, PROCESSED)) == 120
        assert "the fetching process ended unexpectedly" in caplog.text
    finally:
        feeder.close()
        app.close()


def test_a_feeder_that_cannot_log_in_leaves_the_pass_to_this_process(tmp_path: Path, dovecot: Dovecot,
                                                                     imap_user: MailUser, sqlite_url: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    dovecot.append_many(imap_user.name, mails(12, "refused"))
    site = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user)
    app = site.app()
    mailbox = app.config.mailboxes[0]
    assert mailbox.imap is not None
    refused = replace(mailbox, imap=replace(mailbox.imap, password="not-the-password"))
    feeder = Feeder.start(replace(app.config, mailboxes=(refused,)), NOW)  # the feeder is refused; this process is not
    assert feeder is not None
    try:
        intake, _ = run_once(app, lambda: NOW, feeder=feeder)
        assert (intake.taken, intake.errors) == (12, [])
        assert dovecot.folder_uids(imap_user.name) == []
        assert "refused login" in caplog.text
    finally:
        feeder.close()
        app.close()


# ----------------------------------------------------------------------------------------
# The pipe's protocol, with a scripted feeder


def scripted(pipe: Connection, messages: list[tuple[Any, ...]]) -> None:
    for message in messages:
        pipe.send(message)
    pipe.close()


def scripted_feeder(messages: list[tuple[Any, ...]], mailboxes: tuple[str, ...] = ("a", "b")) -> Feeder:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=scripted, args=(send, messages), daemon=True)
    process.start()
    send.close()
    return Feeder(process, receive, mailboxes)


def test_batches_have_the_sizes_asked_the_last_one_again_and_an_abandoned_mailbox_is_skipped() -> None:
    mail = [(uid, b"raw", "unparsed") for uid in range(1, 8)]
    feeder = scripted_feeder([("selected", "a", 9, 7), ("mails", "a", mail[:3]), ("mails", "a", mail[3:]),
                              ("done", "a"), ("selected", "b", 4, 7), ("mails", "b", mail), ("done", "b")])
    try:
        assert feeder.selected("a") == (9, 7)
        assert [[uid for uid, _, _ in batch] for batch in feeder.batches("a", [3, 2])] == [[1, 2, 3], [4, 5], [6, 7]]
        feeder.abandon("a")
        assert not feeder.serves("a") and feeder.serves("b")
        assert feeder.selected("b") == (4, 7)
        feeder.abandon("b")
    finally:
        feeder.close()


def test_an_abandoned_mailbox_s_rest_is_skipped_and_a_failure_names_its_reason() -> None:
    feeder = scripted_feeder([("selected", "a", 9, 1), ("mails", "a", [(1, b"raw", "x")]), ("mails", "a", []),
                              ("done", "a"), ("failed", "b", "mailbox b: cannot reach imap.example:993")])
    try:
        assert feeder.selected("a") == (9, 1)
        feeder.abandon("a")  # say, the database was busy after the first batch
        with pytest.raises(FeedFailed, match=r"cannot reach imap\.example:993"):
            feeder.selected("b")
        with pytest.raises(FeedFailed, match="ended unexpectedly"):
            feeder.selected("b")
        assert feeder.gone and not feeder.serves("b")
    finally:
        feeder.close()


def test_mail_of_another_mailbox_than_expected_stops_the_feed() -> None:
    feeder = scripted_feeder([("selected", "b", 4, 0)])
    try:
        with pytest.raises(FeedFailed, match="'b' while 'a' was expected"):
            feeder.selected("a")
        assert feeder.gone
    finally:
        feeder.close()


# ----------------------------------------------------------------------------------------
# The real command


def run_once_command(config: Path) -> subprocess.Popen[bytes]:
    with open(config.parent / "run.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "daemon", "-c", str(config), "run", "--once"],
                                stdout=subprocess.DEVNULL, stderr=log, cwd=config.parent)


def test_run_once_fetches_in_its_feeder_and_takes_every_mail(tmp_path: Path, dovecot: Dovecot, imap_user: MailUser,
                                                             sqlite_url: str) -> None:
    dovecot.append_many(imap_user.name, mails(150, "cli"))
    site = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user, batch_size=40)
    config = site.write()
    assert subprocess.run([sys.executable, "-m", "daemon", "-c", str(config), "migrate"], capture_output=True,
                          check=False).returncode == 0
    process = run_once_command(config)
    names: set[str] = set()
    niceness: dict[str, int] = {}
    while process.poll() is None:
        for pid, name in children_of(process.pid).items():
            names.add(name)
            with contextlib.suppress(OSError):
                niceness[name] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        time.sleep(0.01)
    log = (tmp_path / "run.log").read_text()
    assert process.returncode == 0, log[-2000:]
    assert "postdesk-fetch" in names
    # the helpers yield the CPU to the process that stores the mail
    assert niceness.get("postdesk-fetch", 0) > os.nice(0) and niceness.get("postdesk-send", 0) > os.nice(0), niceness
    assert "taken in: 150, quarantined: 0" in log
    app = site.app()
    try:
        assert counts(app) == (150, 150)
        assert len(dovecot.folder_uids(imap_user.name, PROCESSED)) == 150
    finally:
        app.close()


@pytest.mark.slow
def test_run_once_killed_at_random_points_loses_and_doubles_nothing_and_leaves_no_helper(
        tmp_path: Path, dovecot: Dovecot, imap_user: MailUser, sqlite_url: str) -> None:
    dovecot.append_many(imap_user.name, mails(400, "kill"))
    site = Site(tmp_path, sqlite_url, agents="").imap(dovecot, imap_user, batch_size=40)
    config = site.write()
    assert subprocess.run([sys.executable, "-m", "daemon", "-c", str(config), "migrate"], capture_output=True,
                          check=False).returncode == 0
    delays = iter([0.45, 0.7, 0.9, 1.1, 1.4])
    orphans: list[int] = []
    midway = 0
    for delay in delays:
        process = run_once_command(config)
        helpers: dict[int, str] = {}
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and process.poll() is None:
            helpers |= children_of(process.pid)
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        give_up = time.monotonic() + 15
        while any(running(pid) for pid in helpers) and time.monotonic() < give_up:
            time.sleep(0.1)
        orphans += [pid for pid in helpers if running(pid)]
        waiting = len(dovecot.folder_uids(imap_user.name))
        if 0 < waiting < 400:
            midway += 1  # killed while taking mail in
        if not waiting:
            break
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert orphans == []
    assert midway >= 1
    process = run_once_command(config)  # whatever is left, and nothing twice
    assert process.wait(timeout=120) == 0, (tmp_path / "run.log").read_text()[-2000:]
    app = site.app()
    try:
        assert counts(app) == (400, 400)
        assert dovecot.folder_uids(imap_user.name) == []
        processed = dovecot.fetch_all(imap_user.name, PROCESSED)
        assert len(processed) == 400 and len({m.raw for m in processed}) == 400
    finally:
        app.close()


class RefusingPipe:
    """Stands in for the pipe: the first message cannot be sent."""

    def send(self, message: object) -> None:
        raise RuntimeError("cannot pickle this")


def test_a_message_the_writer_cannot_send_is_raised_to_the_feeder_not_waited_on() -> None:
    from daemon.feeder import Ahead

    out = Ahead(RefusingPipe(), budget=10)  # type: ignore[arg-type]
    out.send(("mails", "a", []), 8)
    with pytest.raises(RuntimeError, match="cannot pickle"):
        out.send(("mails", "a", []), 8)  # over the budget: it would wait for the writer, which has failed
    with pytest.raises(RuntimeError, match="cannot pickle"):
        out.finish()
