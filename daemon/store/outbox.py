"""The outbox: rows queued with the ticket change that caused them, claimed with a lease,
then marked sent, retried with backoff, or failed with an event on the ticket.

A crash after the claim leaves the row `sending`; when its lease runs out another pass
claims it again. So a mail is sent twice only if the crash fell between the server's
accept and the commit that records it (`sent_in`; the sender records a batch at a time).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from daemon.store.apply import EVENTS, OUTBOX
from daemon.store.db import Database
from daemon.store.fast import execute
from daemon.store.models import Outbox

LEASE = timedelta(minutes=5)
FIRST_BACKOFF = timedelta(seconds=30)

# Statements built once (the sender's hot path; see store/fast.py).
_NOW = bindparam("now", type_=OUTBOX.c.next_attempt_at.type)
_DUE = select(OUTBOX).where(or_(and_(OUTBOX.c.status == "queued", OUTBOX.c.next_attempt_at <= _NOW),
                                and_(OUTBOX.c.status == "sending", OUTBOX.c.claimed_until < _NOW))
                            ).order_by(OUTBOX.c.id).limit(bindparam("limit"))
DUE, DUE_LOCKED = _DUE, _DUE.with_for_update(skip_locked=True)
CLAIM = update(OUTBOX).where(OUTBOX.c.id == bindparam("row")).values(
    status="sending", claimed_by=bindparam("worker"),
    claimed_until=bindparam("until", type_=OUTBOX.c.claimed_until.type), attempts=OUTBOX.c.attempts + 1)
SENT = update(OUTBOX).where(OUTBOX.c.id == bindparam("row")).values(
    status="sent", sent_at=bindparam("at", type_=OUTBOX.c.sent_at.type), claimed_until=None,
    last_error=bindparam("note"))


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    ticket_id: int | None
    kind: str
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    attempts: int
    created_at: datetime


def claim_due(db: Database, worker: str, now: datetime, limit: int) -> list[OutboxItem]:
    """Claim up to `limit` mails that are due (or whose claim expired) for this worker."""
    with db.write() as session:
        return claim_due_in(session, db.is_sqlite, worker, now, limit)


def claim_due_in(session: Session, sqlite: bool, worker: str, now: datetime, limit: int) -> list[OutboxItem]:
    rows = execute(session, DUE if sqlite else DUE_LOCKED, {"now": now, "limit": limit}).all()
    execute(session, CLAIM, [{"row": r.id, "worker": worker, "until": now + LEASE} for r in rows])
    return [OutboxItem(r.id, r.ticket_id, r.kind, r.message_id, r.envelope_from, tuple(r.recipients or ()),
                       r.raw, r.attempts + 1, r.created_at) for r in rows]


def sent_in(session: Session, item: OutboxItem, now: datetime, note: str = "") -> None:
    execute(session, SENT, {"row": item.id, "at": now, "note": note[:2000]})
    if note:
        _event(session, item, now, "delivery_partial", note)


def retry_in(session: Session, item: OutboxItem, error: str, now: datetime, retry_for: timedelta,
             max_backoff: timedelta, recipients: tuple[str, ...] | None = None) -> bool:
    """Schedule another attempt; past `retry_for` the mail fails instead. True if it will be retried."""
    if now - item.created_at >= retry_for:
        failed_in(session, item, f"gave up after {item.attempts} attempts over {retry_for}: {error}", now)
        return False
    delay = min(max_backoff, FIRST_BACKOFF * (2 ** max(0, item.attempts - 1)))
    delay = delay * random.uniform(0.8, 1.2)  # jitter, so many queued mails don't retry in lockstep
    values: dict[str, object] = {"status": "queued", "next_attempt_at": now + delay, "claimed_until": None,
                                 "last_error": error[:2000]}
    if recipients is not None:
        values["recipients"] = list(recipients)
    session.execute(update(OUTBOX).where(OUTBOX.c.id == item.id).values(**values))
    return True


def failed_in(session: Session, item: OutboxItem, error: str, now: datetime) -> None:
    session.execute(update(OUTBOX).where(OUTBOX.c.id == item.id)
                    .values(status="failed", claimed_until=None, last_error=error[:2000]))
    _event(session, item, now, "delivery_failed", error)


def _event(session: Session, item: OutboxItem, now: datetime, kind: str, error: str) -> None:
    session.execute(insert(EVENTS).values(ticket_id=item.ticket_id, at=now, actor="postdesk", kind=kind, detail={
        "message_id": item.message_id, "mail": item.kind, "recipients": ", ".join(item.recipients),
        "error": error[:1000]}))


def pending_count(db: Database, now: datetime) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status.in_(("queued", "sending")), Outbox.next_attempt_at <= now)) or 0


def counts(db: Database) -> dict[str, int]:
    with db.read() as session:
        rows = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
        return {status: count for status, count in rows}
