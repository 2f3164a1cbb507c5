"""Gather: the one store call before the core decides. Reads only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

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
from daemon.store.models import AutoReply, Contact, IntakeRecord, Link, Message, Ticket

THREAD_IDS_KEPT = 20


def gather(session: Session, mail: InboundMail, keys: ThreadKeys, fingerprint: str, now: datetime,
           lock: bool = True) -> Facts:
    if session.scalar(select(IntakeRecord.id).where(IntakeRecord.fingerprint == fingerprint)) is not None:
        return Facts(already_taken=True)
    by_message_id = ticket_numbers_by_message_id(session, keys.message_ids)
    numbers = {n for _, n in by_message_id} | {n for n in (keys.subject_number, keys.address_number) if n}
    numbers |= set(keys.extra_numbers)
    alert = open_alert_ticket(session, keys.alert_key) if keys.alert_key else None
    if alert is not None:
        numbers.add(alert)
    tickets, merged = load_tickets(session, numbers, lock)
    return Facts(
        alert_ticket=alert,
        ticket_by_message_id=by_message_id,
        tickets=tickets,
        merged=merged,
        contact=contact_view(session, mail.sender.email),
        auto_replies_last_hour=auto_replies_since(session, mail.sender.email, now - timedelta(hours=1)),
        last_assigned=last_assigned(session),
    )


def last_assigned(session: Session) -> tuple[tuple[str, str], ...]:
    """Per group, the owner of its newest assigned ticket (for round robin)."""
    rows = session.execute(select(Ticket.group_name, Ticket.owner).where(
        Ticket.owner.is_not(None), Ticket.group_name != "").order_by(Ticket.id.desc()).limit(200)).all()
    found: dict[str, str] = {}
    for group, owner in rows:
        if owner:
            found.setdefault(group, owner)
    return tuple(found.items())


def open_alert_ticket(session: Session, key: str) -> int | None:
    """The newest ticket of this monitoring alert that is not closed (resolved ones count:
    a repeat of a resolved alert reopens it)."""
    return session.scalar(select(Ticket.number).where(
        Ticket.alert_key == key, Ticket.status.notin_(("closed", "cancelled")), Ticket.merged_into.is_(None))
        .order_by(Ticket.number.desc()).limit(1))


def ticket_numbers_by_message_id(session: Session, message_ids: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    if not message_ids:
        return ()
    rows = session.execute(
        select(Message.message_id, Ticket.number).join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.message_id.in_(message_ids))
    ).all()
    return tuple((row[0], row[1]) for row in rows)


def load_tickets(session: Session, numbers: Iterable[int], lock: bool) -> tuple[tuple[TicketView, ...],
                                                                                  tuple[tuple[int, int], ...]]:
    """The tickets with these numbers, following merges; locked for this transaction (PostgreSQL)."""
    wanted = set(numbers)
    views: dict[int, TicketView] = {}
    merged: list[tuple[int, int]] = []
    for _ in range(5):
        if not wanted:
            break
        query = select(Ticket).where(Ticket.number.in_(sorted(wanted))).order_by(Ticket.number)
        if lock:
            query = query.with_for_update()
        wanted = set()
        for ticket in session.scalars(query.options(selectinload(Ticket.participants), selectinload(Ticket.tags))):
            if ticket.merged_into is not None:
                merged.append((ticket.number, ticket.merged_into))
                if ticket.merged_into not in views:
                    wanted.add(ticket.merged_into)
            else:
                views[ticket.number] = ticket_view(session, ticket)
    return tuple(views.values()), tuple(merged)


def ticket_view(session: Session, ticket: Ticket) -> TicketView:
    cc = tuple(Address(p.email, p.name) for p in ticket.participants if p.role == "cc")
    links = session.execute(select(Link.kind, Link.ref).where(Link.ticket_id == ticket.id).order_by(Link.id)).all()
    thread = session.scalars(
        select(Message.message_id).where(Message.ticket_id == ticket.id, Message.visibility == "public")
        .order_by(Message.id.desc()).limit(THREAD_IDS_KEPT)
    ).all()
    return TicketView(
        number=ticket.number, subject=ticket.subject, status=Status(ticket.status),
        requester=Address(ticket.requester, ticket.requester_name), created_at=ticket.created_at,
        status_changed_at=ticket.status_changed_at, type=ticket.type, priority=Priority(ticket.priority),
        impact=Level(ticket.impact), urgency=Level(ticket.urgency), priority_locked=ticket.priority_locked,
        category=ticket.category, owner=ticket.owner, group=ticket.group_name, cc=cc,
        tags=tuple(t.name for t in ticket.tags), links=tuple(LinkRef(k, r) for k, r in links),
        mailbox=ticket.mailbox, language=ticket.language, sla_policy=ticket.sla_policy,
        resolution_code=ticket.resolution_code, third_party=ticket.third_party, merged_into=ticket.merged_into,
        alert_key=ticket.alert_key or "", first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at, closed_at=ticket.closed_at,
        thread_ids=tuple(reversed(thread)),
    )


def contact_view(session: Session, email: str) -> ContactView | None:
    contact = session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        return None
    attributes = tuple(sorted((str(k), str(v)) for k, v in (contact.attributes or {}).items()))
    return ContactView(email=contact.email, name=contact.name, organisation=contact.organisation,
                       language=contact.language, attributes=attributes)


def auto_replies_since(session: Session, address: str, since: datetime) -> int:
    return session.scalar(
        select(func.count()).select_from(AutoReply).where(AutoReply.address == address, AutoReply.at >= since)
    ) or 0
