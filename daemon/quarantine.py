"""Quarantined mail: take it in again (after a fix), or mark it dealt with."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select

from daemon.app import App
from daemon.intake import IntakeResult, take_in
from daemon.store.models import Blob, IntakeRecord, Quarantine


def reprocess(app: App, entry_id: int, now: datetime | None = None) -> IntakeResult | None:
    """Forget the quarantine verdict and take the stored raw mail in again."""
    with app.db.write() as session:
        entry = session.get(Quarantine, entry_id)
        if entry is None or entry.state != "held":
            return None
        raw = session.scalar(select(Blob.content).where(Blob.sha256 == entry.raw_sha256))
        mailbox = entry.mailbox
        session.execute(delete(IntakeRecord).where(IntakeRecord.raw_sha256 == entry.raw_sha256,
                                                   IntakeRecord.verdict == "quarantined"))
        entry.state = "released"
    assert raw is not None
    result = take_in(app, raw, mailbox or app.config.mailboxes[0].name, now)
    return result


def discard(app: App, entry_id: int) -> bool:
    with app.db.write() as session:
        entry = session.get(Quarantine, entry_id)
        if entry is None or entry.state != "held":
            return False
        entry.state = "discarded"
        entry.reason += f" (discarded {datetime.now(UTC).isoformat(timespec='seconds')})"
    return True
