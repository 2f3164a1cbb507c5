"""Apply: write one Decision (ticket, message, events, outbox rows, intake record) in the
caller's transaction. Nothing here decides; it only writes what the core said."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from daemon.core.values import Attachment, Decision, EventDraft, InboundMail, OutboundMail, TicketView, Verdict
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


@dataclass(frozen=True, slots=True)
class Intake:
    """The mail being applied and where it came from."""

    mail: InboundMail
    raw: bytes
    fingerprint: str
    mailbox: str


def allocate_number(session: Session) -> int:
    """The next ticket number; the counter row stays locked until the transaction ends."""
    value = session.execute(
        update(Counter).where(Counter.name == "ticket").values(value=Counter.value + 1).returning(Counter.value)
    ).scalar_one_or_none()
    if value is None:
        session.add(Counter(name="ticket", value=1))
        session.flush()
        return 1
    return int(value)


def apply_decision(session: Session, intake: Intake, decision: Decision, outbound: tuple[OutboundMail, ...],
                   number: int | None, now: datetime) -> int | None:
    """Write everything; return the ticket's row id (None when the mail made no ticket)."""
    store_blob(session, intake.raw)
    ticket_row = write_ticket(session, decision.ticket, number, now) if decision.ticket and number else None
    ticket_id = ticket_row.id if ticket_row else None
    if decision.message is not None and ticket_id is not None:
        write_inbound_message(session, ticket_id, intake, decision, now)
    write_events(session, ticket_id, decision.events, now)
    for mail in outbound:
        write_outbound(session, ticket_id, mail, now)
    if decision.merge_into is not None and ticket_row is not None:
        merge_into_target(session, ticket_row, decision.merge_into, now)
    if decision.bounced_message_id:
        mark_bounced(session, decision.bounced_message_id, decision.reason, now)
    if decision.verdict is Verdict.QUARANTINED:
        write_quarantine(session, intake, decision.reason, now)
    record_intake(session, intake, decision, ticket_id, now)
    return ticket_id


def store_blob(session: Session, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    values = {"sha256": digest, "size": len(content), "content": content}
    dialect = session.get_bind().dialect.name
    statement: Executable
    if dialect == "postgresql":
        statement = postgresql.insert(Blob).values(values).on_conflict_do_nothing(index_elements=["sha256"])
    elif dialect == "sqlite":
        statement = sqlite.insert(Blob).values(values).on_conflict_do_nothing(index_elements=["sha256"])
    else:  # pragma: no cover - other databases are not supported
        statement = insert(Blob).values(values)
    session.execute(statement)
    return digest


def write_ticket(session: Session, view: TicketView, number: int, now: datetime) -> Ticket:
    row = session.scalar(select(Ticket).where(Ticket.number == number))
    if row is None:
        row = Ticket(number=number, created_at=view.created_at, requester=view.requester.email)
        session.add(row)
    fields = {
        "subject": view.subject, "status": view.status.value, "type": view.type, "priority": view.priority.value,
        "impact": view.impact.value, "urgency": view.urgency.value, "priority_locked": view.priority_locked,
        "category": view.category, "owner": view.owner, "group_name": view.group, "requester": view.requester.email,
        "requester_name": view.requester.name, "mailbox": view.mailbox, "language": view.language,
        "sla_policy": view.sla_policy, "resolution_code": view.resolution_code, "third_party": view.third_party,
        "merged_into": view.merged_into, "alert_key": view.alert_key or None,
        "status_changed_at": view.status_changed_at,
        "first_response_at": view.first_response_at, "resolved_at": view.resolved_at, "closed_at": view.closed_at,
    }
    for name, value in fields.items():
        if getattr(row, name, None) != value:
            setattr(row, name, value)
    row.updated_at = now
    sync_participants(row, view)
    sync_tags(row, view)
    session.flush()
    sync_links(session, row, view, now)
    return row


def merge_into_target(session: Session, source: Ticket, target_number: int, now: datetime) -> None:
    """The source's messages move to the target, its people and tags join the target's; the
    source stays (closed, `merged_into` set) so mail naming it still finds the target."""
    target = session.scalar(select(Ticket).where(Ticket.number == target_number))
    if target is None or target.id == source.id:
        raise ValueError(f"cannot merge #{source.number} into #{target_number}")
    session.execute(update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id))
    known = {p.email for p in target.participants}
    for participant in source.participants:
        if participant.email not in known:
            target.participants.append(Participant(email=participant.email, name=participant.name, role="cc"))
    names = {t.name for t in target.tags}
    for tag in source.tags:
        if tag.name not in names:
            target.tags.append(Tag(name=tag.name))
    source.merged_into = target.number
    target.updated_at = now
    session.add(Link(ticket_id=target.id, kind="merged_from", ref=str(source.number), created_at=now))
    session.add(Event(ticket_id=target.id, at=now, actor="postdesk", kind="merged",
                      detail={"from": str(source.number), "why": f"ticket #{source.number} was merged into this one"}))


def sync_participants(row: Ticket, view: TicketView) -> None:
    wanted = {view.requester.email: ("requester", view.requester.name)}
    for address in view.cc:
        wanted.setdefault(address.email, ("cc", address.name))
    for participant in list(row.participants):
        if participant.email not in wanted:
            row.participants.remove(participant)
        else:
            participant.role, participant.name = wanted.pop(participant.email)
    for email, (role, name) in wanted.items():
        row.participants.append(Participant(email=email, name=name, role=role))


def sync_tags(row: Ticket, view: TicketView) -> None:
    wanted = set(view.tags)
    for tag in list(row.tags):
        if tag.name not in wanted:
            row.tags.remove(tag)
        wanted.discard(tag.name)
    for name in sorted(wanted):
        row.tags.append(Tag(name=name))


def sync_links(session: Session, row: Ticket, view: TicketView, now: datetime) -> None:
    rows = session.execute(select(Link.kind, Link.ref).where(Link.ticket_id == row.id))
    existing = {(kind, ref) for kind, ref in rows}
    for link in view.links:
        if (link.kind, link.ref) not in existing:
            session.add(Link(ticket_id=row.id, kind=link.kind, ref=link.ref, created_at=now))


def write_inbound_message(session: Session, ticket_id: int, intake: Intake, decision: Decision,
                          now: datetime) -> Message:
    mail, kind = intake.mail, decision.message
    assert kind is not None
    row = Message(
        ticket_id=ticket_id, direction="in", visibility=kind.visibility.value, auto=kind.auto, kind=kind.kind,
        message_id=mail.message_id, from_addr=mail.sender.email, from_name=mail.sender.name,
        to_addrs=[a.email for a in mail.to], cc_addrs=[a.email for a in mail.cc], subject=mail.subject,
        date=mail.date, body_text=mail.body_text, new_text=mail.new_text,
        raw_sha256=hashlib.sha256(intake.raw).hexdigest(), mailbox=intake.mailbox, created_at=now,
    )
    row.attachments = [attachment_row(session, a) for a in mail.attachments]
    session.add(row)
    return row


def attachment_row(session: Session, attachment: Attachment) -> AttachmentRow:
    blob = store_blob(session, attachment.content) if attachment.content is not None else None
    return AttachmentRow(filename=attachment.filename, content_type=attachment.content_type, size=attachment.size,
                         sha256=attachment.sha256, blob_sha256=blob, inline=attachment.inline,
                         content_id=attachment.content_id, omitted_reason=attachment.omitted_reason)


def write_events(session: Session, ticket_id: int | None, events: tuple[EventDraft, ...], now: datetime) -> None:
    for event in events:
        session.add(Event(ticket_id=ticket_id, at=now, actor=event.actor, kind=event.kind, detail=event.as_dict()))


def write_outbound(session: Session, ticket_id: int | None, mail: OutboundMail, now: datetime) -> None:
    if ticket_id is not None:
        row = Message(
            ticket_id=ticket_id, direction="out", visibility=mail.visibility.value, auto=mail.auto,
            kind=mail.kind.value, message_id=mail.message_id, from_addr=mail.sender.email,
            from_name=mail.sender.name, to_addrs=[a.email for a in mail.to], cc_addrs=[a.email for a in mail.cc],
            subject=mail.subject, date=now, body_text=mail.body_text, new_text=mail.body_text, created_at=now,
        )
        row.attachments = [attachment_row(session, a) for a in mail.attachments]
        session.add(row)
    session.add(Outbox(ticket_id=ticket_id, kind=mail.kind.value, auto=mail.auto, status="queued",
                       message_id=mail.message_id, envelope_from=mail.envelope_from, recipients=list(mail.recipients),
                       raw=mail.raw, next_attempt_at=now, created_at=now))
    if mail.auto and not mail.kind.to_agents:
        session.execute(insert(AutoReply), [{"address": r, "at": now} for r in mail.recipients])


def mark_bounced(session: Session, message_id: str, reason: str, now: datetime) -> None:
    session.execute(update(Outbox).where(Outbox.message_id == message_id)
                    .values(status="failed", last_error=f"bounced: {reason}"[:2000]))


def write_quarantine(session: Session, intake: Intake, reason: str, now: datetime) -> None:
    mail = intake.mail
    session.add(Quarantine(mailbox=intake.mailbox, raw_sha256=hashlib.sha256(intake.raw).hexdigest(),
                           message_id=mail.message_id, sender=mail.sender.email, subject=mail.subject[:500],
                           reason=reason, at=now))


def record_intake(session: Session, intake: Intake, decision: Decision, ticket_id: int | None,
                  now: datetime) -> None:
    session.add(IntakeRecord(fingerprint=intake.fingerprint, message_id=intake.mail.message_id[:998],
                             raw_sha256=hashlib.sha256(intake.raw).hexdigest(), mailbox=intake.mailbox,
                             verdict=decision.verdict.value, reason=decision.reason[:2000], ticket_id=ticket_id,
                             at=now))
