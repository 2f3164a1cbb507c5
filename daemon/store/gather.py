"""Gather: the one store call before the core decides. Reads only (and locks the tickets it
reads on PostgreSQL, so two instances never decide on the same ticket at once).

Hot path: plain SQLAlchemy Core selects, and only the ones the mail's keys call for."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, func, select
from sqlalchemy.orm import Session

from daemon.core.values import (
    Address,
    ContactView,
    Facts,
    InboundMail,
    Level,
    LinkRef,
    Priority,
    Status,
    ThreadKeys,
    TicketView,
)
from daemon.store.apply import AUTO_REPLIES, INTAKE, LINKS, MESSAGES, PARTICIPANTS, TAGS, TICKETS
from daemon.store.models import Contact

THREAD_IDS_KEPT = 20
CONTACTS = Contact.__table__

# Statements built once: building a statement per call costs more than running it.
TAKEN = select(INTAKE.c.id).where(INTAKE.c.fingerprint == bindparam("fingerprint"))
CONTACT = select(CONTACTS).where(CONTACTS.c.email == bindparam("email"))
AUTO_REPLY_COUNTS = select(
    func.count(), func.coalesce(func.sum(case((AUTO_REPLIES.c.at >= bindparam("hour"), 1), else_=0)), 0),
).select_from(AUTO_REPLIES).where(AUTO_REPLIES.c.address == bindparam("address"),
                                  AUTO_REPLIES.c.at >= bindparam("day"))
BY_MESSAGE_ID = (select(MESSAGES.c.message_id, TICKETS.c.number).join(TICKETS, TICKETS.c.id == MESSAGES.c.ticket_id)
                 .where(MESSAGES.c.message_id.in_(bindparam("ids", expanding=True))))
TICKETS_BY_NUMBER = (select(TICKETS).where(TICKETS.c.number.in_(bindparam("numbers", expanding=True)))
                     .order_by(TICKETS.c.number))
ALERT_TICKET = (select(TICKETS.c.number).where(
    TICKETS.c.alert_key == bindparam("key"), TICKETS.c.status.notin_(("closed", "cancelled")),
    TICKETS.c.merged_into.is_(None)).order_by(TICKETS.c.number.desc()).limit(1))


def gather(session: Session, mail: InboundMail, keys: ThreadKeys, fingerprint: str, now: datetime,
           lock: bool = True, round_robin: tuple[str, ...] = ()) -> Facts:
    connection = session.connection()
    if connection.execute(TAKEN, {"fingerprint": fingerprint}).first() is not None:
        return Facts(already_taken=True)
    by_message_id = ticket_numbers_by_message_id(connection, keys.message_ids)
    numbers = {n for _, n in by_message_id} | {n for n in (keys.subject_number, keys.address_number) if n}
    numbers |= set(keys.extra_numbers)
    alert = open_alert_ticket(connection, keys.alert_key) if keys.alert_key else None
    if alert is not None:
        numbers.add(alert)
    tickets, merged = load_tickets(connection, numbers, lock)
    day, hour = auto_replies(connection, mail.sender.email, now)
    return Facts(
        alert_ticket=alert,
        ticket_by_message_id=by_message_id,
        tickets=tickets,
        merged=merged,
        contact=contact_view(connection, mail.sender.email),
        auto_replies_last_day=day,
        auto_replies_last_hour=hour,
        last_assigned=last_assigned(connection, round_robin),
    )


_LAST_OWNER = (select(TICKETS.c.owner).where(TICKETS.c.group_name == bindparam("group"), TICKETS.c.owner.is_not(None))
               .order_by(TICKETS.c.id.desc()).limit(1))


def last_assigned(connection: Connection, groups: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Per round-robin group, the owner of its newest assigned ticket (index on group, id)."""
    found = []
    for group in groups:
        owner = connection.execute(_LAST_OWNER, {"group": group}).scalar()
        if owner:
            found.append((group, owner))
    return tuple(found)


def open_alert_ticket(connection: Connection, key: str) -> int | None:
    """The newest ticket of this monitoring alert that is not closed (resolved ones count:
    a repeat of a resolved alert reopens it)."""
    return connection.execute(ALERT_TICKET, {"key": key}).scalar()


def ticket_numbers_by_message_id(connection: Connection, message_ids: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    if not message_ids:
        return ()
    rows = connection.execute(BY_MESSAGE_ID, {"ids": list(message_ids)}).all()
    return tuple((row[0], row[1]) for row in rows)


def load_tickets(connection: Connection | Session, numbers: Iterable[int],
                 lock: bool = True) -> tuple[tuple[TicketView, ...], tuple[tuple[int, int], ...]]:
    """The tickets with these numbers, following merges; locked for this transaction (PostgreSQL)."""
    if isinstance(connection, Session):
        connection = connection.connection()
    wanted = set(numbers)
    views: dict[int, TicketView] = {}
    merged: list[tuple[int, int]] = []
    for _ in range(5):
        if not wanted:
            break
        query = TICKETS_BY_NUMBER.with_for_update() if lock and connection.dialect.name == "postgresql" \
            else TICKETS_BY_NUMBER
        numbers, wanted = sorted(wanted), set()
        for row in connection.execute(query, {"numbers": numbers}):
            if row.merged_into is not None:
                merged.append((row.number, row.merged_into))
                if row.merged_into not in views:
                    wanted.add(row.merged_into)
            else:
                views[row.number] = ticket_view(connection, row)
    return tuple(views.values()), tuple(merged)


def ticket_view(connection: Connection, row: Row[Any]) -> TicketView:
    people = connection.execute(select(PARTICIPANTS.c.email, PARTICIPANTS.c.name, PARTICIPANTS.c.role)
                                .where(PARTICIPANTS.c.ticket_id == row.id).order_by(PARTICIPANTS.c.id)).all()
    tags = connection.execute(select(TAGS.c.name).where(TAGS.c.ticket_id == row.id).order_by(TAGS.c.name)).scalars()
    links = connection.execute(select(LINKS.c.kind, LINKS.c.ref).where(LINKS.c.ticket_id == row.id)
                               .order_by(LINKS.c.id)).all()
    thread = connection.execute(
        select(MESSAGES.c.message_id).where(MESSAGES.c.ticket_id == row.id, MESSAGES.c.visibility == "public")
        .order_by(MESSAGES.c.id.desc()).limit(THREAD_IDS_KEPT)).scalars().all()
    return TicketView(
        number=row.number, subject=row.subject, status=Status(row.status),
        requester=Address(row.requester, row.requester_name), created_at=row.created_at,
        status_changed_at=row.status_changed_at, type=row.type, priority=Priority(row.priority),
        impact=Level(row.impact), urgency=Level(row.urgency), priority_locked=row.priority_locked,
        category=row.category, owner=row.owner, group=row.group_name,
        cc=tuple(Address(email, name) for email, name, role in people if role == "cc"),
        tags=tuple(tags), links=tuple(LinkRef(kind, ref) for kind, ref in links),
        mailbox=row.mailbox, language=row.language, sla_policy=row.sla_policy,
        resolution_code=row.resolution_code, third_party=row.third_party, merged_into=row.merged_into,
        alert_key=row.alert_key or "", first_response_at=row.first_response_at,
        resolved_at=row.resolved_at, closed_at=row.closed_at, thread_ids=tuple(reversed(thread)),
    )


def contact_view(connection: Connection, email: str) -> ContactView | None:
    row = connection.execute(CONTACT, {"email": email}).first()
    if row is None:
        return None
    attributes = tuple(sorted((str(k), str(v)) for k, v in (row.attributes or {}).items()))
    return ContactView(email=row.email, name=row.name, organisation=row.organisation, language=row.language,
                       attributes=attributes)


def auto_replies(connection: Connection, address: str, now: datetime) -> tuple[int, int]:
    """Automatic mails already sent to this address in the last day and the last hour."""
    day, hour = connection.execute(AUTO_REPLY_COUNTS, {"address": address, "day": now - timedelta(days=1),
                                                       "hour": now - timedelta(hours=1)}).one()
    return int(day or 0), int(hour or 0)



