"""Mailbox readers: one pass takes in every waiting mail, marking each done only after its
ticket is committed. `run --once` calls a pass; the daemon runs each mailbox's loop in its
own thread (IMAP IDLE, or polling; Maildir by a short poll)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from daemon.adapters.imap import (
    NETWORK_ERRORS,
    FetchedMail,
    ImapMailbox,
    connect_imap,
    connection_lost,
    ramped_batches,
    tapered_batches,
)
from daemon.adapters.maildir import MaildirBox
from daemon.app import App
from daemon.config import MailboxConfig
from daemon.core.values import Verdict
from daemon.errors import TemporaryError
from daemon.feeder import Feeder, FeedFailed
from daemon.intake import Arrival, IntakeResult, Parsing, start_parsing, take_in_many
from daemon.store.models import MailboxState

log = logging.getLogger(__name__)
BURST_QUIET = 1.0  # seconds without new mail after which a reader goes back to IDLE or polling
Clock = Callable[[], datetime]


@dataclass
class PassReport:
    taken: int = 0
    quarantined: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, verdict: Verdict) -> None:
        if verdict is Verdict.QUARANTINED:
            self.quarantined += 1
        elif verdict is Verdict.DUPLICATE:
            self.duplicates += 1
        else:
            self.taken += 1

    def add(self, other: PassReport) -> None:
        self.taken += other.taken
        self.quarantined += other.quarantined
        self.duplicates += other.duplicates
        self.errors += other.errors


# ----------------------------------------------------------------------------------------
# Maildir


def maildir_box(mailbox: MailboxConfig) -> MaildirBox:
    assert mailbox.maildir is not None
    config = mailbox.maildir
    return MaildirBox(config.path, config.done, config.processed_folder, config.quarantine_folder)


MAILDIR_BATCH = 100


def maildir_pass(app: App, mailbox: MailboxConfig, box: MaildirBox, clock: Clock,
                 stop: threading.Event | None = None) -> PassReport:
    """Every file in new/, a batch per transaction; each file leaves new/ only after its commit."""
    report = PassReport()
    waiting = box.waiting()
    for start in range(0, len(waiting), MAILDIR_BATCH):
        if stop is not None and stop.is_set():
            break
        found = [m for m in (box.read(p) for p in waiting[start:start + MAILDIR_BATCH]) if m is not None]
        # TemporaryError: nothing was committed, the files stay in new/
        results = take_in_many(app, [Arrival(m.raw, mailbox.name, clock()) for m in found])
        for mail, result in zip(found, results, strict=True):
            if result.verdict is Verdict.QUARANTINED:
                box.mark_quarantined(mail.path)
            else:
                box.mark_done(mail.path)
            report.count(result.verdict)
    return report


# ----------------------------------------------------------------------------------------
# IMAP


def imap_pass(app: App, mailbox: MailboxConfig, imap: ImapMailbox, clock: Clock,
              stop: threading.Event | None = None) -> PassReport:
    """Take in every waiting mail of a connected IMAP mailbox, batch by batch."""
    assert mailbox.imap is not None
    remember_uidvalidity(app, mailbox, imap)
    uids = imap.waiting_uids()
    report = PassReport()
    batches = ramped_batches(uids, mailbox.imap.batch_size)
    if not batches:
        return report
    batch = _fetched_batch(app, mailbox, imap, batches[0], clock)
    with ThreadPoolExecutor(1, thread_name_prefix="imap-prefetch") as fetcher:
        for following in [*batches[1:], None]:
            # The next batch is fetched (and handed to the parser) while this one is stored; the
            # connection is used by one thread at a time: the fetch ends before marking starts.
            prefetch = None
            if following is not None and not (stop is not None and stop.is_set()):
                prefetch = fetcher.submit(_fetched_batch, app, mailbox, imap, following, clock)
            try:
                results = take_in_many(app, batch.arrivals, batch.parsing)  # one commit
            finally:
                if prefetch is not None:
                    wait([prefetch])
            report.add(_mark_batch(app, mailbox, imap, batch, results))
            if prefetch is None:
                break
            batch = prefetch.result()  # a failed fetch raises here, after this batch is marked
    return report


@dataclass(frozen=True, slots=True)
class _Batch:
    fetched: list[FetchedMail]
    arrivals: list[Arrival]
    parsing: Parsing


def _fetched_batch(app: App, mailbox: MailboxConfig, imap: ImapMailbox, uids: list[int], clock: Clock) -> _Batch:
    fetched = list(imap.fetch(uids))
    arrivals = [Arrival(f.raw, mailbox.name, clock()) for f in fetched]
    return _Batch(fetched, arrivals, start_parsing(app, arrivals))


def _mark_batch(app: App, mailbox: MailboxConfig, imap: ImapMailbox, batch: _Batch,
                results: list[IntakeResult]) -> PassReport:
    report = _mark_on_server(imap, batch.fetched, results)
    if batch.fetched:
        remember_last_uid(app, mailbox, imap, max(f.uid for f in batch.fetched))
    return report


def _mark_on_server(imap: ImapMailbox, fetched: list[FetchedMail], results: list[IntakeResult]) -> PassReport:
    """After the commit, each mail moved or flagged done, or moved to the quarantine folder."""
    report = PassReport()
    for result in results:
        report.count(result.verdict)
    imap.mark_done([f.uid for f, r in zip(fetched, results, strict=True) if r.verdict is not Verdict.QUARANTINED])
    imap.move_to_quarantine([f.uid for f, r in zip(fetched, results, strict=True)
                             if r.verdict is Verdict.QUARANTINED])
    return report


def remember_uidvalidity(app: App, mailbox: MailboxConfig, imap: ImapMailbox) -> None:
    """Record the folder's UIDVALIDITY (a change means a re-scan). Read first: most passes find
    it unchanged and need no write transaction (a reader looks again often during bursts)."""
    assert mailbox.imap is not None
    folder = mailbox.imap.folder
    with app.db.read() as session:
        known = session.scalar(select(MailboxState.uidvalidity).where(MailboxState.mailbox == mailbox.name,
                                                                      MailboxState.folder == folder))
    if known == imap.uidvalidity:
        return
    with app.db.write() as session:
        state = session.scalar(select(MailboxState).where(MailboxState.mailbox == mailbox.name,
                                                          MailboxState.folder == folder))
        if state is None:
            session.add(MailboxState(mailbox=mailbox.name, folder=folder, uidvalidity=imap.uidvalidity, last_uid=0))
        elif state.uidvalidity != imap.uidvalidity:
            log.warning("mailbox=%s folder %s: UIDVALIDITY changed from %d to %d; re-scanning "
                        "(mails already taken in are recognised and not doubled)", mailbox.name, folder,
                        state.uidvalidity, imap.uidvalidity)
            state.uidvalidity, state.last_uid = imap.uidvalidity, 0


def remember_last_uid(app: App, mailbox: MailboxConfig, imap: ImapMailbox, uid: int) -> None:
    assert mailbox.imap is not None
    with app.db.write() as session:
        state = session.scalar(select(MailboxState).where(MailboxState.mailbox == mailbox.name,
                                                          MailboxState.folder == mailbox.imap.folder))
        if state is not None and uid > state.last_uid:
            state.last_uid = uid


def one_pass(app: App, mailbox: MailboxConfig, clock: Clock, feeder: Feeder | None = None) -> PassReport:
    """A complete pass over one mailbox, connecting and disconnecting (for `run --once`);
    with the feeder's mail if it fetches this mailbox (see daemon/feeder.py)."""
    if mailbox.maildir is not None:
        return maildir_pass(app, mailbox, maildir_box(mailbox), clock)
    if feeder is None or not feeder.serves(mailbox.name):
        return _connected(mailbox, lambda imap: imap_pass(app, mailbox, imap, clock))
    try:
        return _connected(mailbox, lambda imap: _fed_then_own(app, mailbox, imap, feeder, clock))
    finally:
        feeder.abandon(mailbox.name)  # whatever it still sends of this mailbox is skipped


def _connected(mailbox: MailboxConfig, work: Callable[[ImapMailbox], PassReport]) -> PassReport:
    imap = connect_imap(mailbox)
    try:
        return work(imap)
    except NETWORK_ERRORS as error:
        raise connection_lost(mailbox, error) from error
    finally:
        imap.close()


def _fed_then_own(app: App, mailbox: MailboxConfig, imap: ImapMailbox, feeder: Feeder, clock: Clock) -> PassReport:
    """The feeder's mail; if the feeder fails, the rest is fetched here."""
    report = PassReport()
    try:
        return fed_pass(app, mailbox, imap, feeder, clock, report)
    except FeedFailed as error:
        log.warning("mailbox=%s %s; fetching the rest in this process", mailbox.name, error)
    report.add(imap_pass(app, mailbox, imap, clock))
    return report


def fed_pass(app: App, mailbox: MailboxConfig, imap: ImapMailbox, feeder: Feeder, clock: Clock,
             report: PassReport) -> PassReport:
    """Take in what the feeder fetched and parsed, batch by batch. Each committed batch is
    marked done over this process's own connection `imap` by a thread of its own while the next
    one is stored. `report` counts as it goes, so after a FeedFailed it holds what was done."""
    assert mailbox.imap is not None
    uidvalidity, waiting = feeder.selected(mailbox.name)
    if uidvalidity != imap.uidvalidity:
        raise TemporaryError(f"mailbox {mailbox.name}: UIDVALIDITY changed during the pass "
                             f"({uidvalidity}, then {imap.uidvalidity}); the next pass takes the mail in")
    remember_uidvalidity(app, mailbox, imap)
    highest = 0
    with ThreadPoolExecutor(1, thread_name_prefix="imap-mark") as marker:
        marks: list[Future[PassReport]] = []
        try:
            for fed in feeder.batches(mailbox.name, tapered_batches(waiting, mailbox.imap.batch_size)):
                if any(mark.done() and mark.exception() for mark in marks):
                    break  # the connection failed: the rest waits for the next pass
                fetched = [FetchedMail(uid, raw) for uid, raw, _ in fed]
                arrivals = [Arrival(raw, mailbox.name, clock()) for _, raw, _ in fed]
                results = take_in_many(app, arrivals, Parsing(iter([parsed for _, _, parsed in fed])))  # one commit
                marks.append(marker.submit(_mark_on_server, imap, fetched, results))  # only now, after it
                highest = fetched[-1].uid
        finally:
            wait(marks)
            for mark in marks:
                if mark.exception() is None:
                    report.add(mark.result())
            if highest:
                remember_last_uid(app, mailbox, imap, highest)
        for mark in marks:
            mark.result()  # the first failure, if any
    return report


# ----------------------------------------------------------------------------------------
# The daemon's reader loops (one thread each)


class Backoff:
    """Capped exponential backoff with jitter; logs a failure once until it recovers."""

    def __init__(self, first: float = 1.0, cap: float = 300.0) -> None:
        self.first, self.cap, self.failures = first, cap, 0

    def failed(self) -> float:
        self.failures += 1
        delay = min(self.cap, self.first * 2 ** (self.failures - 1))
        return float(delay * random.uniform(0.5, 1.0))

    def recovered(self) -> bool:
        was_failing, self.failures = self.failures > 0, 0
        return was_failing


def run_maildir_reader(app: App, mailbox: MailboxConfig, clock: Clock, stop: threading.Event,
                       on_mail: Callable[[], None] = lambda: None) -> None:
    assert mailbox.maildir is not None
    box = maildir_box(mailbox)
    backoff = Backoff()
    while not stop.is_set():
        try:
            report = maildir_pass(app, mailbox, box, clock, stop)
            if backoff.recovered():
                log.info("mailbox=%s intake works again", mailbox.name)
            if report.taken or report.quarantined:
                on_mail()
            stop.wait(mailbox.maildir.poll_interval.total_seconds())
        except TemporaryError as error:
            delay = backoff.failed()
            if backoff.failures == 1:
                log.warning("mailbox=%s %s; retrying with backoff", mailbox.name, error)
            stop.wait(delay)
        except Exception:  # a reader thread must never die: log it, wait, go on
            log.exception("mailbox=%s reader failed unexpectedly; retrying with backoff", mailbox.name)
            stop.wait(backoff.failed())


def run_imap_reader(app: App, mailbox: MailboxConfig, clock: Clock, stop: threading.Event,
                    on_mail: Callable[[], None] = lambda: None) -> None:
    assert mailbox.imap is not None
    backoff = Backoff()
    while not stop.is_set():
        imap: ImapMailbox | None = None
        try:
            imap = connect_imap(mailbox)
            if backoff.recovered():
                log.info("mailbox=%s reconnected to %s", mailbox.name, mailbox.imap.host)
            _imap_session(app, mailbox, imap, clock, stop, on_mail)
        except (TemporaryError, *NETWORK_ERRORS) as error:
            delay = backoff.failed()
            if backoff.failures == 1:
                log.warning("mailbox=%s IMAP trouble (%s: %s); reconnecting with backoff", mailbox.name,
                            type(error).__name__, error)
            stop.wait(delay)
        except Exception:  # a reader thread must never die: log it, reconnect after a wait
            log.exception("mailbox=%s reader failed unexpectedly; reconnecting with backoff", mailbox.name)
            stop.wait(backoff.failed())
        finally:
            if imap is not None:
                imap.close()


def _imap_session(app: App, mailbox: MailboxConfig, imap: ImapMailbox, clock: Clock, stop: threading.Event,
                  on_mail: Callable[[], None]) -> None:
    assert mailbox.imap is not None
    config = mailbox.imap
    last_mail = -BURST_QUIET
    while not stop.is_set():
        report = imap_pass(app, mailbox, imap, clock, stop)
        if report.taken or report.quarantined:
            on_mail()
            last_mail = time.monotonic()
        if config.burst_recheck and time.monotonic() - last_mail < BURST_QUIET:
            # Mail is coming in: look again shortly (a NOOP lets the server show what came
            # meanwhile) instead of waiting for IDLE, which some servers answer late.
            stop.wait(config.burst_recheck.total_seconds())
            imap.noop()
        elif config.idle and imap.has_idle:
            imap.idle_until(config.idle_renew.total_seconds(), stop)
        else:
            deadline = time.monotonic() + config.poll_interval.total_seconds()
            while not stop.is_set() and time.monotonic() < deadline:
                stop.wait(min(1.0, deadline - time.monotonic()))
            imap.noop()
