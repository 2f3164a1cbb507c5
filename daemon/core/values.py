"""Values that describe one incoming mail, as the parser hands it to the rest of the core.

Nothing past `core/parse.py` sees mail-parser objects or `email.message.Message`: every stage
reads an `InboundMail`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: the address lower-cased, and the display name decoded."""

    email: str
    name: str = ""

    def formatted(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attachment or inline part.

    `content` is None when the part was over the size limit: the mail is kept, the part is
    replaced by a note (`omitted_reason`), and `size`/`sha256` still describe the original.
    """

    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes | None
    inline: bool = False
    content_id: str = ""
    omitted_reason: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a bounce (RFC 3464 DSN, or a non-standard bounce) says about the mail that bounced."""

    original_message_id: str  # without <>; "" when the bounce does not show it
    failed_recipients: tuple[str, ...]
    action: str  # "failed", "delayed", "delivered", ... lower-case; "" when unknown
    status: str  # enhanced status code such as "5.1.1"; "" when unknown
    diagnostic: str  # the server's words, shortened; "" when none


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A parsed incoming mail. Header names in `headers` are lower-case; values decoded."""

    message_id: str  # without angle brackets; generated from the raw hash when missing
    subject: str
    sender: Address  # From (first address)
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime  # timezone-aware UTC; the received time when the header is missing/broken
    in_reply_to: tuple[str, ...]  # message ids without brackets
    references: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]
    body_text: str  # the whole decoded text (HTML converted when there is no text part)
    new_text: str  # the author's own text: no quoted history, no signature
    quoted_text: str  # the quoted history that was cut off (may be empty)
    signature: str  # the signature that was cut off (may be empty)
    attachments: tuple[Attachment, ...]
    raw_sha256: str
    raw_size: int
    language: str = ""  # from Content-Language, lower-case primary tag ("uk", "en"), or ""
    return_path: str | None = None  # None: no header; "": the null sender <>
    message_id_generated: bool = False
    date_generated: bool = False
    content_type: str = "text/plain"  # of the top-level part, lower-case, no parameters
    delivery_report: DeliveryReport | None = None  # set when the mail is a bounce
    defects: tuple[str, ...] = field(default=())  # what was wrong and how it was repaired
    fingerprint: str = ""  # core.identity.fingerprint of the raw mail, if whoever parsed it computed it

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def header_values(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key == wanted)

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


# ----------------------------------------------------------------------------------------
# Enums


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_THIRD_PARTY = "waiting_third_party"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Status.CLOSED, Status.CANCELLED)


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Level(StrEnum):
    """Impact and urgency."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Nature(StrEnum):
    """What kind of mail this is, whoever sent it."""

    NORMAL = "normal"
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, another system's acknowledgement
    BOUNCE = "bounce"  # a delivery status notification
    LIST = "list"  # mailing-list traffic
    BULK = "bulk"  # newsletters, Precedence: bulk/junk
    MACHINE = "machine"  # noreply@, notifications from systems


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SELF = "self"  # Postdesk's own addresses


class Verdict(StrEnum):
    STORED = "stored"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"


class Visibility(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


class OutboundKind(StrEnum):
    """One member = one template set per language: templates/<lang>/<kind>.*.j2"""

    ACKNOWLEDGEMENT = "acknowledgement"
    AGENT_REPLY = "agent_reply"
    INFO_REQUEST = "info_request"
    STATUS_CHANGE = "status_change"
    RESOLUTION = "resolution"
    CLOSURE = "closure"
    AUTOCLOSE_WARNING = "autoclose_warning"
    AUTOCLOSE_NOTICE = "autoclose_notice"
    REOPEN_NOTICE = "reopen_notice"
    CLOSED_TICKET = "closed_ticket"
    REFUSAL = "refusal"
    AGENT_NEW_TICKET = "agent_new_ticket"
    AGENT_ASSIGNMENT = "agent_assignment"
    AGENT_UPDATE = "agent_update"
    COMMAND_RESULT = "command_result"
    COMMAND_ERROR = "command_error"
    ESCALATION = "escalation"
    THIRD_PARTY = "third_party"

    @property
    def to_agents(self) -> bool:
        """Mail to agents (not counted against a customer's automatic-mail limit)."""
        return self in _AGENT_KINDS


_AGENT_KINDS = frozenset({OutboundKind.AGENT_NEW_TICKET, OutboundKind.AGENT_ASSIGNMENT, OutboundKind.AGENT_UPDATE,
                          OutboundKind.COMMAND_RESULT, OutboundKind.COMMAND_ERROR, OutboundKind.ESCALATION})


# ----------------------------------------------------------------------------------------
# What the store knows, handed to the core


@dataclass(frozen=True, slots=True)
class LinkRef:
    kind: str  # ticket | change | defect | related | merged_from | merged_into
    ref: str


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket as the core sees it (number 0: a ticket not yet created)."""

    number: int
    subject: str
    status: Status
    requester: Address
    created_at: datetime
    status_changed_at: datetime
    type: str = "incident"
    priority: Priority = Priority.MEDIUM
    impact: Level = Level.MEDIUM
    urgency: Level = Level.MEDIUM
    priority_locked: bool = False
    category: str = ""
    owner: str | None = None
    group: str = ""
    cc: tuple[Address, ...] = ()
    tags: tuple[str, ...] = ()
    links: tuple[LinkRef, ...] = ()
    mailbox: str = ""
    language: str = ""
    sla_policy: str = ""
    resolution_code: str = ""
    third_party: str = ""
    merged_into: int | None = None
    alert_key: str = ""
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    thread_ids: tuple[str, ...] = ()  # Message-IDs of the ticket's public mails, oldest first

    @property
    def participants(self) -> frozenset[str]:
        return frozenset({self.requester.email, *(a.email for a in self.cc)})


@dataclass(frozen=True, slots=True)
class ContactView:
    email: str
    name: str = ""
    organisation: str = ""
    language: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    """What to look up in the store to find the ticket a mail belongs to."""

    message_ids: tuple[str, ...]  # In-Reply-To first, then References newest first
    subject_number: int | None
    address_number: int | None  # from support+N@ in a recipient
    extra_numbers: tuple[int, ...] = ()  # tickets an agent's commands name (#merge N, #link N)
    alert_key: str = ""  # a monitoring alert's identity (rules), to group repeats into one ticket


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the store knows that the core needs to decide about one mail."""

    already_taken: bool = False
    ticket_by_message_id: tuple[tuple[str, int], ...] = ()  # message id → ticket number
    tickets: tuple[TicketView, ...] = ()  # every ticket the keys name (merges followed)
    contact: ContactView | None = None
    auto_replies_last_hour: int = 0  # automatic mails already sent to this sender
    auto_replies_last_day: int = 0
    merged: tuple[tuple[int, int], ...] = ()  # (merged ticket, the ticket it now lives in)
    alert_ticket: int | None = None  # the open ticket of the same monitoring alert, if any
    agent_load: tuple[tuple[str, int], ...] = ()  # agent → open tickets they own (for round robin)
    last_assigned: tuple[tuple[str, str], ...] = ()  # group → the agent it last assigned a ticket to

    def ticket(self, number: int | None) -> TicketView | None:
        """The ticket with this number, following merges."""
        for _ in range(10):
            target = next((new for old, new in self.merged if old == number), None)
            if target is None:
                break
            number = target
        return next((t for t in self.tickets if t.number == number), None)


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    number: int | None  # None: a new ticket
    how: str  # "in-reply-to", "references", "subject", "address", "" for new
    note: str = ""  # why a token was not followed, for the event


# ----------------------------------------------------------------------------------------
# What the core decides


@dataclass(frozen=True, slots=True)
class EventDraft:
    actor: str
    kind: str
    detail: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, str]:
        return dict(self.detail)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """How the incoming mail is recorded on its ticket."""

    visibility: Visibility
    auto: bool
    kind: str  # customer | agent | auto_reply | bounce | stranger | command | held


@dataclass(frozen=True, slots=True)
class OutboundDraft:
    """A mail to send, before rendering: the template kind and what it talks about."""

    kind: OutboundKind
    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    language: str = "en"
    auto: bool = True  # Auto-Submitted: auto-replied / auto-generated
    agent: str | None = None  # the agent addressed (signed into the Message-ID token)
    sender_name: str = ""  # display name in From ("Alice via Support"), default: instance name
    variables: tuple[tuple[str, str], ...] = ()  # extra template variables (text, results...)
    in_reply_to: str | None = None  # the mail this answers
    attachments: tuple[Attachment, ...] = ()
    visibility: Visibility = Visibility.PUBLIC


@dataclass(frozen=True, slots=True)
class OutboundMail:
    """A rendered mail, ready for the outbox."""

    kind: OutboundKind
    message_id: str  # without <>
    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes
    auto: bool
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    body_text: str
    visibility: Visibility
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Everything one mail (or one timer) should do; `store/apply.py` writes it in one transaction."""

    verdict: Verdict
    reason: str = ""
    ticket: TicketView | None = None  # the ticket's state after this decision (number 0: new)
    before: TicketView | None = None  # the ticket's state before (None: new or no ticket)
    message: StoredMessage | None = None  # None: the mail is not recorded on a ticket
    events: tuple[EventDraft, ...] = ()
    drafts: tuple[OutboundDraft, ...] = ()
    bounced_message_id: str | None = None  # an outbound mail to mark failed
    merge_into: int | None = None  # the ticket is merged into this one

    @property
    def creates_ticket(self) -> bool:
        return self.ticket is not None and self.ticket.number == 0


# ----------------------------------------------------------------------------------------
# The static setup the core decides with (built from the config at start)


@dataclass(frozen=True, slots=True)
class AgentView:
    email: str
    name: str = ""
    groups: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    language: str = ""

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(a.lower() for a in (self.email, *self.aliases))


@dataclass(frozen=True, slots=True)
class MailboxView:
    name: str
    address: str
    aliases: tuple[str, ...] = ()
    unknown_sender: str = "open"  # open | hold
    language: str = ""


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    closed_followup: str = "new"  # reopen | new | reply
    reopen_within: timedelta = timedelta(days=14)
    stranger: str = "new"  # new | hold | append
    thanks_closes: bool = True
    thanks_phrases: tuple[str, ...] = ()
    close_resolved_after: timedelta = timedelta(days=5)
    close_waiting_after: timedelta = timedelta(days=25)
    warn_before_close: timedelta = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Setup:
    """What the core needs of the configuration."""

    secret: bytes
    domain: str
    subject_prefix: str = "Support"
    instance_name: str = "Support"
    default_language: str = "en"
    languages: tuple[str, ...] = ("en",)
    mailboxes: tuple[MailboxView, ...] = ()
    agents: tuple[AgentView, ...] = ()
    lifecycle: LifecyclePolicy = LifecyclePolicy()
    auto_replies_per_hour: int = 5
    auto_replies_per_day: int = 20  # stops slow loops the hourly limit never sees
    loop_header: str = "X-Postdesk-Loop"
    reply_languages: tuple[str, ...] = ()
    max_attachment_bytes: int = 25 * 1024 * 1024
    trusted_authserv_ids: tuple[str, ...] = ()  # Authentication-Results from these servers count
    ticket_types: tuple[str, ...] = ("incident", "question", "feature_request", "service_request")
    low_priority_types: tuple[str, ...] = ("question", "feature_request")
    priority_matrix: tuple[tuple[str, str, str], ...] = ()  # (impact, urgency, priority); () = the default
    resolution_codes: tuple[str, ...] = ()  # () = any code is accepted
    notify_agents_on_new: bool = True
    timezone: str = "UTC"  # for the rules' weekday and time conditions

    @property
    def own_addresses(self) -> frozenset[str]:
        return frozenset(a.lower() for m in self.mailboxes for a in (m.address, *m.aliases))

    def agent(self, address: str) -> AgentView | None:
        wanted = address.lower()
        return next((a for a in self.agents if wanted in a.addresses), None)

    def mailbox(self, name: str) -> MailboxView:
        found = next((m for m in self.mailboxes if m.name == name), None)
        if found is not None:
            return found
        return self.mailboxes[0] if self.mailboxes else MailboxView(name=name, address=f"support@{self.domain}")
