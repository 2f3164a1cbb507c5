"""The daemon: reader threads (one per mailbox), the sender and the timers under one
asyncio loop; systemd READY/WATCHDOG; SIGTERM finishes the mail in hand and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from daemon.adapters.sdnotify import Notifier
from daemon.app import App
from daemon.readers import PassReport, one_pass, run_imap_reader, run_maildir_reader
from daemon.sender import Sender, SendReport

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
SENDER_POLL = 1.0


def real_clock() -> datetime:
    return datetime.now(UTC)


def run_once(app: App, clock: Clock = real_clock) -> tuple[PassReport, SendReport]:
    """One complete pass: every mailbox, every due timer, and the outbox — the sender drains
    while the mailboxes are read (as in the daemon), then once more at the end."""
    return asyncio.run(_run_once(app, clock))


async def _run_once(app: App, clock: Clock) -> tuple[PassReport, SendReport]:
    sender = Sender(app, clock)
    sent = SendReport()
    try:
        intake_task = asyncio.create_task(asyncio.to_thread(_read_every_mailbox, app, clock))
        while not intake_task.done():
            sent.add(await sender.drain())
            await asyncio.wait({intake_task}, timeout=0.05)
        sent.add(await sender.drain())
        return intake_task.result(), sent
    finally:
        await sender.close()


def _read_every_mailbox(app: App, clock: Clock) -> PassReport:
    intake = PassReport()
    for mailbox in app.config.mailboxes:
        try:
            intake.add(one_pass(app, mailbox, clock))
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
