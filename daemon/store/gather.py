"""Gather: the one store call before the core decides. Reads only (and locks the tickets it
reads on PostgreSQL, so two instances never decide on the same ticket at once).

Hot path: plain SQLAlchemy Core selects, and only the ones the mail's keys call for."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, case, func, select
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
from daemon.store.fast import execute, in_list, shaped
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
PEOPLE = (select(PARTICIPANTS.c.email, PARTICIPANTS.c.name, PARTICIPANTS.c.role)
          .where(PARTICIPANTS.c.ticket_id == bindparam("ticket")).order_by(PARTICIPANTS.c.id))
TAG_NAMES = select(TAGS.c.name).where(TAGS.c.ticket_id == bindparam("ticket")).order_by(TAGS.c.name)
LINK_ROWS = select(LINKS.c.kind, LINKS.c.ref).where(LINKS.c.ticket_id == bindparam("ticket")).order_by(LINKS.c.id)
THREAD = (select(MESSAGES.c.message_id).where(MESSAGES.c.ticket_id == bindparam("ticket"),
                                              MESSAGES.c.visibility == "public")
          .order_by(MESSAGES.c.id.desc()).limit(THREAD_IDS_KEPT))
ALERT_TICKET = (select(TICKETS.c.number).where(
    TICKETS.c.alert_key == bindparam("key"), TICKETS.c.status != "closed", TICKETS.c.status != "cancelled",
    TICKETS.c.merged_into.is_(None)).order_by(TICKETS.c.number.desc()).limit(1))


def gather(connection: Connection, mail: InboundMail, keys: ThreadKeys, fingerprint: str, now: datetime,
           lock: bool = True, round_robin: tuple[str, ...] = ()) -> Facts:
    if execute(connection, TAKEN, {"fingerprint": fingerprint}).first() is not None:
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
        owner = execute(connection, _LAST_OWNER, {"group": group}).scalar()
        if owner:
            found.append((group, owner))
    return tuple(found)


def open_alert_ticket(connection: Connection, key: str) -> int | None:
    """The newest ticket of this monitoring alert that is not closed (resolved ones count:
    a repeat of a resolved alert reopens it)."""
    return execute(connection, ALERT_TICKET, {"key": key}).scalar()  # type: ignore[no-any-return]


def ticket_numbers_by_message_id(connection: Connection, message_ids: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    if not message_ids:
        return ()
    rows = execute(connection, _by_message_id(len(message_ids)),
                   {f"id_{i}": message_id for i, message_id in enumerate(message_ids)}).all()
    return tuple((row[0], row[1]) for row in rows)


def _by_message_id(count: int) -> Executable:
    return shaped(("messages by id", count), lambda: (
        select(MESSAGES.c.message_id, TICKETS.c.number).join(TICKETS, TICKETS.c.id == MESSAGES.c.ticket_id)
        .where(MESSAGES.c.message_id.in_(in_list("id", count)))))


def _tickets_by_number(count: int, lock: bool) -> Executable:
    def build() -> Executable:
        query = select(TICKETS).where(TICKETS.c.number.in_(in_list("n", count))).order_by(TICKETS.c.number)
        return query.with_for_update() if lock else query

    return shaped(("tickets by number", count, lock), build)


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
        query = _tickets_by_number(len(wanted), lock and connection.dialect.name == "postgresql")
        numbers, wanted = sorted(wanted), set()
        for row in execute(connection, query, {f"n_{i}": number for i, number in enumerate(numbers)}):
            if row.merged_into is not None:
                merged.append((row.number, row.merged_into))
                if row.merged_into not in views:
                    wanted.add(row.merged_into)
            else:
                views[row.number] = ticket_view(connection, row)
    return tuple(views.values()), tuple(merged)


def ticket_view(connection: Connection, row: Any) -> TicketView:
    ticket = {"ticket": row.id}
    people = execute(connection, PEOPLE, ticket).all()
    tags = execute(connection, TAG_NAMES, ticket).scalars()
    links = execute(connection, LINK_ROWS, ticket).all()
    thread = execute(connection, THREAD, ticket).scalars()
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
    row = execute(connection, CONTACT, {"email": email}).first()
    if row is None:
        return None
    attributes = tuple(sorted((str(k), str(v)) for k, v in (row.attributes or {}).items()))
    return ContactView(email=row.email, name=row.name, organisation=row.organisation, language=row.language,
                       attributes=attributes)


def auto_replies(connection: Connection, address: str, now: datetime) -> tuple[int, int]:
    """Automatic mails already sent to this address in the last day and the last hour."""
    day, hour = execute(connection, AUTO_REPLY_COUNTS, {"address": address, "day": now - timedelta(days=1),
                                                        "hour": now - timedelta(hours=1)}).one()
    return int(day or 0), int(hour or 0)



