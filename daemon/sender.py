"""The sender: drains the outbox through SMTP (or the Maildir outbox) with a few workers,
each on its own reused connection. Database calls run in threads; the loop never blocks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.orm import Session

from daemon.adapters.maildir import MaildirOutbox
from daemon.adapters.smtp import Outcome, SmtpConnection
from daemon.app import App
from daemon.store import outbox
from daemon.store.outbox import OutboxItem

log = logging.getLogger(__name__)
CLAIM_BATCH = 200  # mails claimed, then recorded, per transaction (see Sender._record_all_and_claim)


class Connection(Protocol):
    async def deliver(self, item: OutboxItem) -> Outcome: ...

    async def close(self) -> None: ...


class MaildirConnection:
    def __init__(self, box: MaildirOutbox) -> None:
        self.box = box

    async def deliver(self, item: OutboxItem) -> Outcome:
        await asyncio.to_thread(self.box.write, item.message_id, item.raw)
        return Outcome("sent")

    async def close(self) -> None:
        return None


class SmtpItemConnection:
    def __init__(self, connection: SmtpConnection) -> None:
        self.connection = connection

    async def deliver(self, item: OutboxItem) -> Outcome:
        return await self.connection.deliver(item.envelope_from, item.recipients, item.raw)

    async def close(self) -> None:
        await self.connection.close()


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.errors += other.errors


class Sender:
    def __init__(self, app: App, clock: Callable[[], datetime] | None = None) -> None:
        self.app = app
        self.clock = clock or (lambda: datetime.now(UTC))
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = app.config.outbound.concurrency
        self.connections: list[Connection] = [self._connection() for _ in range(self.concurrency)]

    def _connection(self) -> Connection:
        config = self.app.config
        if config.outbound.transport == "maildir":
            return MaildirConnection(MaildirOutbox(config.outbound.maildir))
        assert config.smtp is not None
        return SmtpItemConnection(SmtpConnection(config.smtp))

    async def drain(self) -> SendReport:
        """Send everything due now; return when nothing due is left."""
        report = SendReport()
        items = await asyncio.to_thread(outbox.claim_due, self.app.db, self.worker, self.clock(), CLAIM_BATCH)
        while items:
            done = await self._deliver_all(items)
            items = await asyncio.to_thread(self._record_all_and_claim, done, report)
        return report

    async def _deliver_all(self, items: list[OutboxItem]) -> list[tuple[OutboxItem, Outcome]]:
        """Deliver a claimed batch over the workers' connections. Once the server cannot be
        reached, the rest of the batch is not tried (a server that times out would otherwise
        hold the batch for a timeout a mail): it is retried with the same backoff."""
        queue: asyncio.Queue[OutboxItem] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        done: list[tuple[OutboxItem, Outcome]] = []
        unreachable: list[str] = []
        workers = [self._work(connection, queue, done, unreachable) for connection in self.connections[: len(items)]]
        await asyncio.gather(*workers)
        return done

    async def _work(self, connection: Connection, queue: asyncio.Queue[OutboxItem],
                    done: list[tuple[OutboxItem, Outcome]], unreachable: list[str]) -> None:
        while not queue.empty():
            item = queue.get_nowait()
            if unreachable:
                done.append((item, Outcome("retry", f"not tried, the server was unreachable: {unreachable[0]}")))
                continue
            outcome = await connection.deliver(item)
            if outcome.unreachable:
                unreachable.append(outcome.error)
            done.append((item, outcome))

    def _record_all_and_claim(self, done: list[tuple[OutboxItem, Outcome]], report: SendReport) -> list[OutboxItem]:
        """Every outcome of a delivered batch recorded and the next batch claimed, in one
        transaction (a crash before its commit re-sends only the delivered batch, once its
        lease ends)."""
        now = self.clock()
        with self.app.db.write() as session:
            for item, outcome in done:
                self._record(session, item, outcome, report, now)
            return outbox.claim_due_in(session, self.app.db.is_sqlite, self.worker, now, CLAIM_BATCH)

    def _record(self, session: Session, item: OutboxItem, outcome: Outcome, report: SendReport,
                now: datetime) -> None:
        config = self.app.config.outbound
        if outcome.state == "sent":
            outbox.sent_in(session, item, now, outcome.error)
            report.sent += 1
            log.info("outbox=%d mail=<%s> sent to %s", item.id, item.message_id, ", ".join(item.recipients))
        elif outcome.state == "failed":
            outbox.failed_in(session, item, outcome.error, now)
            report.failed += 1
            report.errors.append(f"<{item.message_id}>: {outcome.error}")
            log.error("outbox=%d mail=<%s> failed for good: %s", item.id, item.message_id, outcome.error)
        elif outbox.retry_in(session, item, outcome.error, now, config.retry_for, config.max_backoff,
                             outcome.retry_recipients):
            report.retried += 1
            log.warning("outbox=%d mail=<%s> will be retried: %s", item.id, item.message_id, outcome.error)
        else:
            report.failed += 1
            report.errors.append(f"<{item.message_id}>: {outcome.error}")

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()
