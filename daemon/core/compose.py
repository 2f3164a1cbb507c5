"""Drafts → rendered, threaded, well-formed mails (bytes), ready for the outbox.

Templates are files (`templates/<lang>/<kind>.subject.j2`, `.txt.j2`, `.html.j2`) whose
sources the caller loads; here they run in a sandboxed Jinja2 with StrictUndefined.
Customer text is only ever a variable, never template source.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from jinja2 import DictLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from daemon.core import mime, tokens
from daemon.core.values import (
    Address,
    OutboundDraft,
    OutboundKind,
    OutboundMail,
    Setup,
    TicketView,
)

PARTS = ("subject", "txt", "html")
MAX_REFERENCES = 12


class Renderer:
    """Template sources by name ("en/acknowledgement.txt.j2"), compiled once."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = dict(sources)
        self.env = SandboxedEnvironment(loader=DictLoader(self.sources), undefined=StrictUndefined,
                                        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                                        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
        self.compiled: dict[str, tuple[Template, dict[str, Any]]] = {}

    def has(self, language: str, kind: OutboundKind, part: str) -> bool:
        return f"{language}/{kind.value}.{part}.j2" in self.sources

    def language_for(self, wanted: str, kind: OutboundKind) -> str:
        return wanted if self.has(wanted, kind, "txt") else "en"

    def render(self, language: str, kind: OutboundKind, part: str, context: Mapping[str, Any]) -> str | None:
        name = f"{language}/{kind.value}.{part}.j2"
        found = self.compiled.get(name)
        if found is None:
            try:
                template = self.env.get_template(name)
            except TemplateNotFound:
                return None
            found = self.compiled[name] = (template, dict(template.globals))
        template, globals_ = found
        # Template.render with one copy of the context instead of three (a mail renders up to
        # three templates): the template's globals and the values in a new dict the context uses as is.
        try:
            return self.env.concat(template.root_render_func(
                template.new_context({**globals_, **context}, shared=True)))
        except Exception:
            self.env.handle_exception()
            raise  # not reached: handle_exception raises the error, its traceback pointing into the template


@dataclass(frozen=True, slots=True)
class Envelope:
    """Where mail about a ticket comes from: the mailbox's address and the instance's name."""

    address: str
    name: str


def compose(drafts: tuple[OutboundDraft, ...], ticket: TicketView, setup: Setup, renderer: Renderer,
            envelope: Envelope, seed: str, now: datetime,
            context_extra: Mapping[str, Any] | None = None) -> tuple[OutboundMail, ...]:
    return tuple(
        compose_one(draft, ticket, setup, renderer, envelope, f"{seed}#{index}", now, context_extra or {})
        for index, draft in enumerate(drafts)
    )


def compose_one(draft: OutboundDraft, ticket: TicketView, setup: Setup, renderer: Renderer, envelope: Envelope,
                seed: str, now: datetime, context_extra: Mapping[str, Any]) -> OutboundMail:
    language = renderer.language_for(draft.language, draft.kind)
    context = template_context(draft, ticket, setup, envelope, now, context_extra)
    subject = subject_line(renderer.render(language, draft.kind, "subject", context) or ticket.subject,
                           ticket, setup)
    text = renderer.render(language, draft.kind, "txt", context)
    if text is None:
        raise LookupError(f"no template {language}/{draft.kind.value}.txt.j2")
    html = renderer.render(language, draft.kind, "html", context)
    message_id = tokens.make_message_id(setup.secret, setup.domain, ticket.number, seed, draft.agent)
    sender = Address(envelope.address, _sender_name(draft, envelope))
    recipients = _recipients(draft, setup)
    raw = build_mime(draft, ticket, sender, envelope, subject, text, html, message_id, language, setup, now)
    return OutboundMail(kind=draft.kind, message_id=message_id, envelope_from=envelope.address,
                        recipients=recipients, raw=raw, auto=draft.auto, sender=sender, to=draft.to, cc=draft.cc,
                        subject=subject, body_text=text, visibility=draft.visibility, attachments=draft.attachments)


DEFAULT_VARIABLES: dict[str, Any] = {
    "text": "", "change": "", "error": "", "line": "", "reason": "", "results": "", "close_at": "",
    "mail": {"from": "", "name": "", "subject": "", "text": ""}, "commands": [],
    "sla": {"first_response_due": "", "resolution_due": ""},  # filled by the SLA step when a policy applies
}


def template_context(draft: OutboundDraft, ticket: TicketView, setup: Setup, envelope: Envelope, now: datetime,
                     extra: Mapping[str, Any]) -> dict[str, Any]:
    """Every variable a template may use is always defined (empty when it does not apply)."""
    return {
        **DEFAULT_VARIABLES,
        "ticket": ticket_fields(ticket),
        "token": ticket_token(ticket, setup),
        "instance": {"name": setup.instance_name, "address": envelope.address, "prefix": setup.subject_prefix},
        "recipient": {"email": draft.to[0].email if draft.to else "", "name": draft.to[0].name if draft.to else ""},
        "agent_name": draft.sender_name,
        "followup": {"policy": setup.lifecycle.closed_followup,  # what a reply after closure does
                     "reopen_days": int(setup.lifecycle.reopen_within.total_seconds() // 86400)},
        "now": now,
        **extra,
        **dict(draft.variables),
    }


def ticket_fields(ticket: TicketView) -> dict[str, Any]:
    return {
        "number": ticket.number, "subject": ticket.subject, "status": ticket.status.value,
        "priority": ticket.priority.value, "impact": ticket.impact.value, "urgency": ticket.urgency.value,
        "type": ticket.type, "category": ticket.category, "owner": ticket.owner or "", "group": ticket.group,
        "requester": ticket.requester.email, "requester_name": ticket.requester.name or ticket.requester.email,
        "cc": [a.email for a in ticket.cc], "tags": list(ticket.tags), "created_at": ticket.created_at,
        "resolution_code": ticket.resolution_code, "third_party": ticket.third_party,
    }


def ticket_token(ticket: TicketView, setup: Setup) -> str:
    return f"[{setup.subject_prefix} #{ticket.number}]"


def subject_line(rendered: str, ticket: TicketView, setup: Setup) -> str:
    """One line, no control characters, with the ticket token exactly once."""
    line = re.sub(r"[\x00-\x1f\x7f]+", " ", rendered)
    line = re.sub(r"\s+", " ", line).strip()
    token = ticket_token(ticket, setup)
    if ticket.number == 0:  # about a mail that made no ticket: no token to name
        return line.replace(token, "").strip()[:900]
    if token not in line:
        line = f"{token} {line}".strip()
    return line[:900]


def _sender_name(draft: OutboundDraft, envelope: Envelope) -> str:
    if draft.sender_name:
        return f"{draft.sender_name} via {envelope.name}"
    return envelope.name


def _recipients(draft: OutboundDraft, setup: Setup) -> tuple[str, ...]:
    own = setup.own_addresses
    seen: dict[str, None] = {}
    for address in (*draft.to, *draft.cc):
        if address.email and address.email.lower() not in own:
            seen.setdefault(mime.mailbox(address.email), None)
    return tuple(seen)


def build_mime(draft: OutboundDraft, ticket: TicketView, sender: Address, envelope: Envelope, subject: str,
               text: str, html: str | None, message_id: str, language: str, setup: Setup,
               now: datetime) -> bytes:
    """The mail as bytes (see core/mime.py for why it is written by hand)."""
    content_head, payload = mime.body(text, html, draft.attachments, message_id)
    lines = [
        mime.address_list("From", [sender]),
        mime.address_list("To", draft.to) or "To: undisclosed-recipients:;\r\n",
        mime.address_list("Cc", draft.cc),
        mime.address_list("Reply-To", [Address(envelope.address, envelope.name)]),
        mime.unstructured("Subject", subject),
        f"Date: {format_datetime(now)}\r\n",
        f"Message-ID: <{message_id}>\r\n",
        *_thread_headers(draft, ticket),
        *_outlook_thread(ticket, setup, message_id),
        *_automatic_headers(draft),
        f"{setup.loop_header}: {setup.domain}\r\n",
        f"X-Postdesk-Kind: {draft.kind.value}\r\n",  # lets agents filter notifications in their client
        f"Content-Language: {language}\r\n",
        "MIME-Version: 1.0\r\n",
        content_head,
    ]
    # every header value is ASCII (encoded-words, IDNA domains) but an address with a UTF-8
    # local part, which RFC 6532 writes as it is
    return "".join(lines).encode("utf-8") + b"\r\n" + payload


def _automatic_headers(draft: OutboundDraft) -> list[str]:
    if not draft.auto:
        return []
    kind = "auto-replied" if draft.in_reply_to and not draft.kind.to_agents else "auto-generated"
    return [f"Auto-Submitted: {kind}\r\n", "X-Auto-Response-Suppress: All\r\n"]


def _outlook_thread(ticket: TicketView, setup: Setup, message_id: str) -> list[str]:
    """Thread-Topic and Thread-Index, which Outlook groups conversations by: the same 22-byte
    header block (time of the ticket + a GUID made from the ticket) on every mail of a ticket,
    then a 5-byte block of this mail."""
    if ticket.number == 0:
        return []
    filetime = int((ticket.created_at.timestamp() + 11_644_473_600) * 10_000_000)
    guid = hmac.new(setup.secret, f"thread-index|{ticket.number}".encode(), hashlib.sha256).digest()[:16]
    child = hashlib.sha256(message_id.encode()).digest()[:5]
    index = base64.b64encode(b"\x01" + (filetime >> 16).to_bytes(8, "big")[-5:] + guid + child).decode("ascii")
    return [mime.unstructured("Thread-Topic", f"{ticket_token(ticket, setup)} {ticket.subject}"),
            f"Thread-Index: {index}\r\n"]


def _thread_headers(draft: OutboundDraft, ticket: TicketView) -> list[str]:
    """In-Reply-To the mail answered (or the ticket's last), References the ticket's thread."""
    # an identifier in another script (broken clients) would make the mail need SMTPUTF8: left out
    chain = [m for m in ticket.thread_ids if m.isascii()]
    parent = next((m for m in (draft.in_reply_to, *chain[-1:]) if m and m.isascii()), None)
    if parent and parent not in chain:
        chain.append(parent)
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    lines = [f"In-Reply-To: <{parent}>\r\n"] if parent else []
    if chain:
        lines.append(mime.fold("References", [f"<{m}>" for m in chain]))
    return lines
