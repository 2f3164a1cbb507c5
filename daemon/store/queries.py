"""Read-only queries for the command line: tickets in the contract's JSON shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from daemon.store.models import AttachmentRow, Blob, Event, Message, Quarantine, Ticket


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "type": ticket.type,
        "priority": ticket.priority,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "category": ticket.category,
        "owner": ticket.owner,
        "group": ticket.group_name or None,
        "requester": ticket.requester,
        "cc": [p.email for p in ticket.participants if p.role == "cc"],
        "tags": [t.name for t in ticket.tags],
        "mailbox": ticket.mailbox,
        "language": ticket.language,
        "merged_into": ticket.merged_into,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "sla": {
            "policy": ticket.sla_policy or None,
            "first_response_due": iso(ticket.first_response_due),
            "resolution_due": iso(ticket.resolution_due),
            "breached": list(ticket.breached or []),
        },
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "direction": message.direction,
        "visibility": message.visibility,
        "auto": message.auto,
        "kind": message.kind,
        "from": message.from_addr,
        "from_name": message.from_name,
        "to": list(message.to_addrs or []),
        "cc": list(message.cc_addrs or []),
        "subject": message.subject,
        "message_id": message.message_id,
        "date": iso(message.date),
        "body_text": message.body_text,
        "new_text": message.new_text,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "sha256": a.sha256,
             "inline": a.inline, "omitted": bool(a.omitted_reason), "omitted_reason": a.omitted_reason or None}
            for a in message.attachments
        ],
    }


def event_json(event: Event) -> dict[str, Any]:
    return {"at": iso(event.at), "actor": event.actor, "kind": event.kind, "detail": event.detail}


def list_tickets(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    query = select(Ticket).options(selectinload(Ticket.participants), selectinload(Ticket.tags)).order_by(Ticket.number)
    if status:
        query = query.where(Ticket.status == status)
    return [ticket_summary(t) for t in session.scalars(query)]


def show_ticket(session: Session, number: int) -> dict[str, Any] | None:
    ticket = session.scalar(select(Ticket).where(Ticket.number == number)
                            .options(selectinload(Ticket.participants), selectinload(Ticket.tags)))
    if ticket is None:
        return None
    messages = session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
                               .options(selectinload(Message.attachments))).all()
    events = session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)).all()
    return {**ticket_summary(ticket), "messages": [message_json(m) for m in messages],
            "events": [event_json(e) for e in events]}


def attachment_content(session: Session, attachment: AttachmentRow) -> bytes | None:
    """An attachment's bytes: its own blob, else decoded again from its mail's raw bytes (found
    by its sha256); None when it was omitted (over the size limit) or the raw mail is gone."""
    if attachment.blob_sha256:
        return session.scalar(select(Blob.content).where(Blob.sha256 == attachment.blob_sha256))
    if attachment.omitted_reason:
        return None
    raw = session.scalar(select(Blob.content).join(Message, Message.raw_sha256 == Blob.sha256)
                         .where(Message.id == attachment.message_row_id))
    if raw is None:
        return None
    from daemon.core.parse import parse  # the parser only where an attachment is wanted

    for found in parse(raw, received_at=datetime.now(UTC), max_attachment_bytes=attachment.size).attachments:
        if found.sha256 == attachment.sha256 and found.content is not None:
            return found.content
    return None


def list_quarantine(session: Session, state: str | None = "held") -> list[dict[str, Any]]:
    query = select(Quarantine).order_by(Quarantine.id)
    if state:
        query = query.where(Quarantine.state == state)
    return [{"id": q.id, "at": iso(q.at), "mailbox": q.mailbox, "sender": q.sender, "subject": q.subject,
             "message_id": q.message_id, "reason": q.reason, "state": q.state} for q in session.scalars(query)]
