"""The daemon: reader threads (one per mailbox), the sender and the timers under one
asyncio loop; systemd READY/WATCHDOG; SIGTERM finishes the mail in hand and exits 0.

`run --once` on a machine with two CPUs or more sends from a process of its own while this
one takes mail in: both are busy Python, and in one process they would take turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent

from daemon.adapters.sdnotify import Notifier
from daemon.app import App
from daemon.config import Config
from daemon.feeder import Feeder
from daemon.logs import configure_logging
from daemon.processes import name_this_process, start_method, yield_to_intake
from daemon.readers import PassReport, maildir_box, one_pass, run_imap_reader, run_maildir_reader
from daemon.sender import Sender, SendReport

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SENDER_POLL = 1.0


def real_clock() -> datetime:
    return datetime.now(UTC)


def run_once(app: App, clock: Clock = real_clock, sender_process: bool = False,
             fixed_now: datetime | None = None, feeder: Feeder | None = None) -> tuple[PassReport, SendReport]:
    """One complete pass: every mailbox, every due timer, and the outbox — the sender drains
    while the mailboxes are read (as in the daemon), then once more at the end. With
    `sender_process` (and two CPUs), the sender works in a process of its own meanwhile, its
    clock the real one or `fixed_now`; if that process fails, this one sends what is left.
    `feeder`: the IMAP mailboxes' mail, fetched and parsed by a process of its own."""
    if sender_process and (os.cpu_count() or 1) >= 2:
        return _run_once_beside_a_sender(app, clock, fixed_now, feeder)
    _start_parser_unless_fed(app, feeder)
    return asyncio.run(_run_once(app, clock, feeder))


def _start_parser_unless_fed(app: App, feeder: Feeder | None) -> None:
    if feeder is None or any(not feeder.serves(m.name) for m in app.config.mailboxes):
        app.parser.start(fork=True)


def _run_once_beside_a_sender(app: App, clock: Clock, fixed_now: datetime | None,
                              feeder: Feeder | None) -> tuple[PassReport, SendReport]:
    method = start_method()
    if method == "fork":
        app.db.dispose()  # the child opens its own connections; none may be shared
    context = get_context("fork") if method == "fork" else get_context("spawn")
    done = context.Event()
    receive, send = context.Pipe(duplex=False)
    level = logging.getLogger().getEffectiveLevel()
    process = context.Process(target=send_until_done, args=(app.config, fixed_now, level, done, send),
                              name="postdesk-sender", daemon=True)
    process.start()
    send.close()
    _start_parser_unless_fed(app, feeder)  # after the sending process: a fork is taken only from a single thread
    try:
        intake = _read_every_mailbox(app, clock, feeder)
    finally:
        done.set()
    app.db.checkpoint()  # while the sending process delivers what the last commits queued
    sent = _sender_report(process, receive)
    if sent is None:
        log.warning("the sending process ended without a report (exit %s); sending from this one",
                    process.exitcode)
        sent = asyncio.run(_drain_until(app, clock, _at_once))
    return intake, sent


def _sender_report(process: BaseProcess, receive: Connection) -> SendReport | None:
    while not receive.poll(0.5):
        if not process.is_alive() and not receive.poll(0):
            process.join()
            return None
    try:
        report = receive.recv()
    except (EOFError, OSError):
        report = None
    process.join(timeout=30)
    return report if isinstance(report, SendReport) else None


def send_until_done(config: Config, fixed_now: datetime | None, level: int, done: ProcessEvent,
                    results: Connection) -> None:
    """The sending process of `run --once`: drains the outbox until the intake is done (or the
    process that started it is gone, killed say: then it sends what is queued and ends rather
    than linger), then once more, and hands its report back."""
    name_this_process("postdesk-send")
    yield_to_intake()
    configure_logging(level)
    parent = os.getppid()
    app = App.from_config(config, migrate=False, rules=False)

    async def intake_done(pause: float) -> bool:
        if await asyncio.to_thread(done.wait, pause):
            return True
        if os.getppid() != parent:
            log.warning("the intake process is gone; sending what is queued, then stopping")
            return True
        return False

    try:
        clock: Clock = (lambda: fixed_now) if fixed_now is not None else real_clock
        report = asyncio.run(_drain_until(app, clock, intake_done))
        with contextlib.suppress(OSError):  # nobody left to read it
            results.send(report)
    finally:
        app.close()
        results.close()


async def _drain_until(app: App, clock: Clock, finished: Callable[[float], Awaitable[bool]]) -> SendReport:
    """Drain the outbox, pause, again, until `finished(pause)` says the intake is done; then
    once more for what its last mails queued."""
    sender = Sender(app, clock)
    sent = SendReport()
    try:
        while True:
            sent.add(await sender.drain())
            if await finished(0.05):
                break
        sent.add(await sender.drain())
        return sent
    finally:
        await sender.close()


async def _at_once(pause: float) -> bool:
    return True


async def _run_once(app: App, clock: Clock, feeder: Feeder | None) -> tuple[PassReport, SendReport]:
    intake_task = asyncio.create_task(asyncio.to_thread(_read_every_mailbox, app, clock, feeder))

    async def intake_done(pause: float) -> bool:
        await asyncio.wait({intake_task}, timeout=pause)
        return intake_task.done()

    sent = await _drain_until(app, clock, intake_done)
    return await intake_task, sent


def _read_every_mailbox(app: App, clock: Clock, feeder: Feeder | None = None) -> PassReport:
    intake = PassReport()
    for mailbox in app.config.mailboxes:
        try:
            intake.add(one_pass(app, mailbox, clock, feeder))
        except Exception as error:  # one mailbox's trouble must not stop the others
            log.error("mailbox=%s pass failed: %s", mailbox.name, error)
            said = str(error)
            intake.errors.append(said if said.startswith("mailbox ") else f"mailbox {mailbox.name}: {said}")
    return intake


class Daemon:
    def __init__(self, app: App, notify_socket: str | None = None, clock: Clock = real_clock) -> None:
        self.app = app
        self.clock = clock
        self.stop = threading.Event()
        self.notifier = Notifier(notify_socket)
        self.threads: list[threading.Thread] = []

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        wake = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, stopping, sig)
        loop.add_signal_handler(signal.SIGHUP, self.app.reload_rules)
        self.app.parser.start()
        self._start_readers(lambda: self._wake_from_thread(loop, wake))
        sender = Sender(self.app, self.clock)
        tasks = [asyncio.create_task(self._send_loop(sender, wake, stopping), name="sender")]
        if self.notifier.active:
            tasks.append(asyncio.create_task(self._watchdog(stopping), name="watchdog"))
        self.notifier.send("READY=1", f"STATUS=taking in {len(self.app.config.mailboxes)} mailbox(es)")
        log.info("postdesk running: %d mailbox(es), outbound via %s", len(self.app.config.mailboxes),
                 self.app.config.outbound.transport)
        await stopping.wait()
        self.notifier.send("STOPPING=1")
        await asyncio.to_thread(self._join_readers)
        wake.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sender.close()
        log.info("postdesk stopped")
        return 0

    @staticmethod
    def _wake_from_thread(loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        loop.call_soon_threadsafe(wake.set)

    def _request_stop(self, stopping: asyncio.Event, sig: signal.Signals) -> None:
        log.info("%s received: finishing the mail in hand, then stopping", sig.name)
        self.stop.set()
        stopping.set()

    def _start_readers(self, on_mail: Callable[[], None]) -> None:
        for mailbox in self.app.config.mailboxes:
            if mailbox.maildir is not None:  # its folders exist once the daemon says it is running
                try:
                    maildir_box(mailbox)
                except OSError as error:  # the reader keeps trying, with backoff
                    log.warning("mailbox=%s cannot create %s: %s", mailbox.name, mailbox.maildir.path, error)
            target = run_maildir_reader if mailbox.maildir is not None else run_imap_reader
            thread = threading.Thread(target=target, args=(self.app, mailbox, self.clock, self.stop, on_mail),
                                      name=f"reader-{mailbox.name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _join_readers(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            if thread.is_alive():
                log.warning("reader %s did not stop within 60 s", thread.name)

    async def _send_loop(self, sender: Sender, wake: asyncio.Event, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await sender.drain()
            except Exception:
                log.exception("sender pass failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), SENDER_POLL)
            wake.clear()
        with contextlib.suppress(TimeoutError):  # what the last mails in hand queued, if quick
            await asyncio.wait_for(sender.drain(), 10)

    async def _watchdog(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            self.notifier.send("WATCHDOG=1")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 10)
