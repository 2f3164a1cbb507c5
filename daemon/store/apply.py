"""Apply: write one Decision (ticket, message, events, outbox rows, intake record) in the
caller's transaction. Nothing here decides; it only writes what the core said.

This is the hot path of intake, so it speaks SQLAlchemy Core (plain INSERT/UPDATE on the
tables the models define) rather than the ORM's unit of work, and writes only what changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Executable, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from daemon.core.values import Attachment, Decision, EventDraft, InboundMail, OutboundMail, TicketView, Verdict
from daemon.store.fast import execute, shaped
from daemon.store.models import (
    AttachmentRow,
    AutoReply,
    Blob,
    Counter,
    Event,
    IntakeRecord,
    Link,
    Message,
    Outbox,
    Participant,
    Quarantine,
    Tag,
    Ticket,
)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


TICKETS, PARTICIPANTS, TAGS, LINKS = _table(Ticket), _table(Participant), _table(Tag), _table(Link)
MESSAGES, ATTACHMENTS, BLOBS, EVENTS = _table(Message), _table(AttachmentRow), _table(Blob), _table(Event)
OUTBOX, AUTO_REPLIES, INTAKE, QUARANTINE, COUNTERS = (_table(Outbox), _table(AutoReply), _table(IntakeRecord),
                                                     _table(Quarantine), _table(Counter))


# Statements built once: building a statement per call costs more than running it.
NEXT_NUMBER = (update(COUNTERS).where(COUNTERS.c.name == "ticket").values(value=COUNTERS.c.value + 1)
               .returning(COUNTERS.c.value))
INSERT_TICKET = insert(TICKETS).returning(TICKETS.c.id)
INSERT_MESSAGE, INSERT_MESSAGES = insert(MESSAGES).returning(MESSAGES.c.id), insert(MESSAGES)
INSERT_PARTICIPANTS, INSERT_TAGS, INSERT_LINKS = insert(PARTICIPANTS), insert(TAGS), insert(LINKS)
INSERT_ATTACHMENTS, INSERT_EVENTS, INSERT_OUTBOX = insert(ATTACHMENTS), insert(EVENTS), insert(OUTBOX)
INSERT_AUTO_REPLIES, INSERT_INTAKE, INSERT_QUARANTINE = insert(AUTO_REPLIES), insert(INTAKE), insert(QUARANTINE)
TICKET_VERSION = select(TICKETS.c.id, TICKETS.c.version).where(TICKETS.c.number == bindparam("number"))
DELETE_PARTICIPANTS = delete(PARTICIPANTS).where(PARTICIPANTS.c.ticket_id == bindparam("ticket"))
DELETE_TAGS = delete(TAGS).where(TAGS.c.ticket_id == bindparam("ticket"))


@dataclass(frozen=True, slots=True)
class Intake:
    """The mail being applied and where it came from."""

    mail: InboundMail
    raw: bytes
    fingerprint: str
    mailbox: str


def allocate_number(connection: Connection) -> int:
    """The next ticket number; the counter row stays locked until the transaction ends."""
    value = execute(connection, NEXT_NUMBER).scalar()
    if value is None:
        connection.execute(insert(COUNTERS).values(name="ticket", value=1))
        return 1
    return int(value)


def apply_decision(connection: Connection, intake: Intake, decision: Decision, outbound: tuple[OutboundMail, ...],
                   number: int | None, now: datetime) -> int | None:
    """Write everything; return the ticket's row id (None when the mail made no ticket)."""
    raw_sha = store_blob(connection, intake.raw, intake.mail.raw_sha256)
    ticket_id = None
    if decision.ticket is not None and number:
        ticket_id = write_ticket(connection, decision.ticket, decision.before, number, now)
    if decision.message is not None and ticket_id is not None:
        write_inbound_message(connection, ticket_id, intake, decision, raw_sha, now)
    write_events(connection, ticket_id, decision.events, now)
    write_outbound(connection, ticket_id, outbound, now)
    if decision.merge_into is not None and ticket_id is not None:
        merge_into_target(connection, ticket_id, decision.merge_into, now)
    if decision.bounced_message_id:
        mark_bounced(connection, decision.bounced_message_id, decision.reason)
    if decision.verdict is Verdict.QUARANTINED:
        write_quarantine(connection, intake, decision.reason, now)
    record_intake(connection, intake, decision, raw_sha, ticket_id, now)
    return ticket_id


def store_blob(connection: Connection | Session, content: bytes, digest: str = "") -> str:
    """Content-addressed: the same bytes are stored once, whoever stores them first."""
    digest = digest or hashlib.sha256(content).hexdigest()
    if isinstance(connection, Session):
        connection = connection.connection()
    dialect = connection.dialect.name
    execute(connection, shaped(("blob", dialect), lambda: _insert_blob(dialect)),
            {"sha256": digest, "size": len(content), "content": content})
    return digest


def _insert_blob(dialect: str) -> Executable:
    """INSERT ... ON CONFLICT DO NOTHING in the dialect's own form (imported only when used:
    the PostgreSQL dialect costs a SQLite process 25 ms to load)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(BLOBS).on_conflict_do_nothing(index_elements=["sha256"])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(BLOBS).on_conflict_do_nothing(index_elements=["sha256"])


# ----------------------------------------------------------------------------------------
# The ticket


def ticket_columns(view: TicketView) -> dict[str, Any]:
    return {
        "subject": view.subject, "status": view.status.value, "type": view.type, "priority": view.priority.value,
        "impact": view.impact.value, "urgency": view.urgency.value, "priority_locked": view.priority_locked,
        "category": view.category, "owner": view.owner, "group_name": view.group, "requester": view.requester.email,
        "requester_name": view.requester.name, "mailbox": view.mailbox, "language": view.language,
        "sla_policy": view.sla_policy, "resolution_code": view.resolution_code, "third_party": view.third_party,
        "merged_into": view.merged_into, "alert_key": view.alert_key or None,
        "status_changed_at": view.status_changed_at, "first_response_at": view.first_response_at,
        "resolved_at": view.resolved_at, "closed_at": view.closed_at,
    }


def write_ticket(connection: Connection, view: TicketView, before: TicketView | None, number: int,
                 now: datetime) -> int:
    if before is None:
        return insert_ticket(connection, view, number, now)
    row = execute(connection, TICKET_VERSION, {"number": number}).one()
    old = ticket_columns(before)
    changed = {k: v for k, v in ticket_columns(view).items() if old.get(k) != v}
    result = execute(connection, _ticket_update(tuple(changed)), {
        **{f"new_{k}": v for k, v in changed.items()}, "new_updated_at": now, "new_version": row.version + 1,
        "id": row.id, "version": row.version})
    if result.rowcount != 1:
        raise StaleDataError(f"ticket #{number} changed meanwhile")
    if (view.requester, view.cc) != (before.requester, before.cc):
        sync_participants(connection, row.id, view)
    if view.tags != before.tags:
        sync_tags(connection, row.id, view)
    add_links(connection, row.id, view, before, now)
    return int(row.id)


def _ticket_update(columns: tuple[str, ...]) -> Executable:
    """UPDATE tickets SET <these columns>, updated_at, version WHERE id and version match."""
    return shaped(("ticket update", columns), lambda: (
        update(TICKETS).where(TICKETS.c.id == bindparam("id"), TICKETS.c.version == bindparam("version"))
        .values({TICKETS.c[k]: bindparam(f"new_{k}", type_=TICKETS.c[k].type)
                 for k in (*columns, "updated_at", "version")})))


def insert_ticket(connection: Connection, view: TicketView, number: int, now: datetime) -> int:
    ticket_id = int(execute(connection, INSERT_TICKET, {
        **ticket_columns(view), "number": number, "created_at": view.created_at, "updated_at": now,
        "breached": [], "version": 1}).scalar_one())
    execute(connection, INSERT_PARTICIPANTS, participant_rows(ticket_id, view))
    if view.tags:
        execute(connection, INSERT_TAGS, [{"ticket_id": ticket_id, "name": t} for t in dict.fromkeys(view.tags)])
    add_links(connection, ticket_id, view, None, now)
    return ticket_id


def participant_rows(ticket_id: int, view: TicketView) -> list[dict[str, Any]]:
    rows = {view.requester.email: {"ticket_id": ticket_id, "email": view.requester.email,
                                   "name": view.requester.name, "role": "requester"}}
    for address in view.cc:
        rows.setdefault(address.email, {"ticket_id": ticket_id, "email": address.email, "name": address.name,
                                        "role": "cc"})
    return list(rows.values())


def sync_participants(connection: Connection, ticket_id: int, view: TicketView) -> None:
    execute(connection, DELETE_PARTICIPANTS, {"ticket": ticket_id})
    execute(connection, INSERT_PARTICIPANTS, participant_rows(ticket_id, view))


def sync_tags(connection: Connection, ticket_id: int, view: TicketView) -> None:
    execute(connection, DELETE_TAGS, {"ticket": ticket_id})
    if view.tags:
        execute(connection, INSERT_TAGS, [{"ticket_id": ticket_id, "name": t} for t in dict.fromkeys(view.tags)])


def add_links(connection: Connection, ticket_id: int, view: TicketView, before: TicketView | None,
              now: datetime) -> None:
    known = set(before.links) if before is not None else set()
    new = [link for link in dict.fromkeys(view.links) if link not in known]
    if new:
        execute(connection, INSERT_LINKS, [{"ticket_id": ticket_id, "kind": link.kind, "ref": link.ref,
                                            "created_at": now} for link in new])


def merge_into_target(connection: Connection, source: int | Ticket, target_number: int, now: datetime) -> None:
    """The source's messages move to the target, its people and tags join the target's; the
    source stays (closed, `merged_into` set) so mail naming it still finds the target."""
    source_id = source if isinstance(source, int) else source.id
    target = connection.execute(select(TICKETS.c.id, TICKETS.c.number).where(TICKETS.c.number == target_number)).first()
    number = connection.execute(select(TICKETS.c.number).where(TICKETS.c.id == source_id)).scalar()
    if target is None or target.id == source_id:
        raise ValueError(f"cannot merge #{number} into #{target_number}")
    connection.execute(update(MESSAGES).where(MESSAGES.c.ticket_id == source_id).values(ticket_id=target.id))
    known = set(connection.execute(select(PARTICIPANTS.c.email).where(PARTICIPANTS.c.ticket_id == target.id)).scalars())
    people = connection.execute(select(PARTICIPANTS.c.email, PARTICIPANTS.c.name)
                                .where(PARTICIPANTS.c.ticket_id == source_id)).all()
    joining = [{"ticket_id": target.id, "email": e, "name": n, "role": "cc"} for e, n in people if e not in known]
    if joining:
        connection.execute(insert(PARTICIPANTS), joining)
    names = set(connection.execute(select(TAGS.c.name).where(TAGS.c.ticket_id == target.id)).scalars())
    tags = [t for t in connection.execute(select(TAGS.c.name).where(TAGS.c.ticket_id == source_id)).scalars()
            if t not in names]
    if tags:
        connection.execute(insert(TAGS), [{"ticket_id": target.id, "name": t} for t in tags])
    connection.execute(update(TICKETS).where(TICKETS.c.id == source_id).values(merged_into=target.number))
    connection.execute(update(TICKETS).where(TICKETS.c.id == target.id).values(updated_at=now))
    connection.execute(insert(LINKS).values(ticket_id=target.id, kind="merged_from", ref=str(number), created_at=now))
    connection.execute(insert(EVENTS).values(ticket_id=target.id, at=now, actor="postdesk", kind="merged", detail={
        "from": str(number), "why": f"ticket #{number} was merged into this one"}))


# ----------------------------------------------------------------------------------------
# Messages, events, the outbox


def write_inbound_message(connection: Connection, ticket_id: int, intake: Intake, decision: Decision,
                          raw_sha: str, now: datetime) -> None:
    mail, kind = intake.mail, decision.message
    assert kind is not None
    message_id = execute(connection, INSERT_MESSAGE, {
        "ticket_id": ticket_id, "direction": "in", "visibility": kind.visibility.value, "auto": kind.auto,
        "kind": kind.kind, "message_id": mail.message_id, "from_addr": mail.sender.email,
        "from_name": mail.sender.name, "to_addrs": [a.email for a in mail.to], "cc_addrs": [a.email for a in mail.cc],
        "subject": mail.subject, "date": mail.date, "body_text": mail.body_text, "new_text": mail.new_text,
        "raw_sha256": raw_sha, "mailbox": intake.mailbox, "created_at": now}).scalar_one()
    write_attachments(connection, int(message_id), mail.attachments, apart=False)


def write_attachments(connection: Connection, message_row_id: int, attachments: tuple[Attachment, ...],
                      apart: bool = True) -> None:
    """One row per attachment (name, type, size, sha256 of its content). Its content is kept
    as a blob of its own only `apart`: a mail that came in is kept whole, so its attachments
    are already in its raw mail (encoded), and `queries.attachment_content` decodes them from
    there; storing them decoded too doubled the space attachments take (a quarter of the
    database in bench/intake.py, most of a real help desk's)."""
    if not attachments:
        return
    rows = []
    for attachment in attachments:
        blob = store_blob(connection, attachment.content, attachment.sha256) \
            if attachment.content is not None and apart else None
        rows.append({"message_row_id": message_row_id, "filename": attachment.filename,
                     "content_type": attachment.content_type, "size": attachment.size, "sha256": attachment.sha256,
                     "blob_sha256": blob, "inline": attachment.inline, "content_id": attachment.content_id,
                     "omitted_reason": attachment.omitted_reason})
    execute(connection, INSERT_ATTACHMENTS, rows)


def write_events(connection: Connection, ticket_id: int | None, events: tuple[EventDraft, ...],
                 now: datetime) -> None:
    if events:
        execute(connection, INSERT_EVENTS, [{"ticket_id": ticket_id, "at": now, "actor": e.actor, "kind": e.kind,
                                             "detail": e.as_dict()} for e in events])


def write_outbound(connection: Connection, ticket_id: int | None, mails: tuple[OutboundMail, ...],
                   now: datetime) -> None:
    if not mails:
        return
    if ticket_id is not None:
        write_outbound_messages(connection, ticket_id, mails, now)
    execute(connection, INSERT_OUTBOX, [{
        "ticket_id": ticket_id, "kind": mail.kind.value, "auto": mail.auto, "status": "queued",
        "message_id": mail.message_id, "envelope_from": mail.envelope_from, "recipients": list(mail.recipients),
        "raw": mail.raw, "attempts": 0, "next_attempt_at": now, "claimed_by": "", "last_error": "",
        "created_at": now} for mail in mails])
    answers = [{"address": r, "at": now} for mail in mails if mail.auto and not mail.kind.to_agents
               for r in mail.recipients]
    if answers:
        execute(connection, INSERT_AUTO_REPLIES, answers)


def write_outbound_messages(connection: Connection, ticket_id: int, mails: tuple[OutboundMail, ...],
                            now: datetime) -> None:
    """The ticket's record of what was sent: one statement for all, unless attachments need ids."""
    if not any(mail.attachments for mail in mails):
        execute(connection, INSERT_MESSAGES, [outbound_message_row(ticket_id, mail, now) for mail in mails])
        return
    for mail in mails:
        row_id = execute(connection, INSERT_MESSAGE, outbound_message_row(ticket_id, mail, now)).scalar_one()
        write_attachments(connection, int(row_id), mail.attachments)


def outbound_message_row(ticket_id: int, mail: OutboundMail, now: datetime) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "direction": "out", "visibility": mail.visibility.value, "auto": mail.auto,
            "kind": mail.kind.value, "message_id": mail.message_id, "from_addr": mail.sender.email,
            "from_name": mail.sender.name, "to_addrs": [a.email for a in mail.to],
            "cc_addrs": [a.email for a in mail.cc], "subject": mail.subject, "date": now, "body_text": mail.body_text,
            "new_text": mail.body_text, "raw_sha256": None, "mailbox": "", "created_at": now}


def mark_bounced(connection: Connection, message_id: str, reason: str) -> None:
    connection.execute(update(OUTBOX).where(OUTBOX.c.message_id == message_id)
                       .values(status="failed", last_error=f"bounced: {reason}"[:2000]))


def write_quarantine(session: Session | Connection, intake: Intake, reason: str, now: datetime) -> None:
    connection = session.connection() if isinstance(session, Session) else session
    mail = intake.mail
    execute(connection, INSERT_QUARANTINE, {
        "mailbox": intake.mailbox, "raw_sha256": mail.raw_sha256 or hashlib.sha256(intake.raw).hexdigest(),
        "message_id": mail.message_id[:998], "sender": mail.sender.email, "subject": mail.subject[:500],
        "reason": reason, "state": "held", "at": now})


def record_intake(connection: Connection, intake: Intake, decision: Decision, raw_sha: str, ticket_id: int | None,
                  now: datetime) -> None:
    execute(connection, INSERT_INTAKE, {
        "fingerprint": intake.fingerprint, "message_id": intake.mail.message_id[:998], "raw_sha256": raw_sha,
        "mailbox": intake.mailbox, "verdict": decision.verdict.value, "reason": decision.reason[:2000],
        "ticket_id": ticket_id, "at": now})
