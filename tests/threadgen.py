"""Synthetic help-desk conversations, for the threading tests and `bench/threading.py`.

Part 1, mail clients: Gmail, Outlook, Apple Mail and Thunderbird write a new mail, a reply
(In-Reply-To/References as each client writes them, its prefixes and its quote header
block) and a forward, the way the corpus in `tests/mail/` shows them; corpus mails are
re-aimed at a mail Postdesk really sent (`aimed`, `out_of_office`, `bounce`): the same
bytes, with the Message-IDs, ticket numbers and addresses of this run.

Part 2, the simulation: customers write, Postdesk answers, and customers, their colleagues,
their out-of-office responders, their mail servers and the agents react to what Postdesk
sent them. Every mail handed to Postdesk is labelled with the conversation it truly
belongs to ("new" when it starts one, "none" when it must not open a ticket), so a run can
be scored: the share of mails filed in the right ticket, and the mails of one customer
that landed in another customer's ticket. The run is deterministic for a seed.

    simulation = Simulation(threads=100, seed=7, support="help@example.com")
    score = play(app, simulation, "local")      # take_in, drain the outbox, deliver, repeat
    print(score.summary())
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import heapq
import os
import random
import re
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, getaddresses, parsedate_to_datetime
from functools import cache, partial
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from daemon.app import App

CORPUS = Path(__file__).resolve().parent / "mail"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
Client = Literal["gmail", "outlook", "apple", "thunderbird"]
CLIENTS: tuple[Client, ...] = ("gmail", "outlook", "apple", "thunderbird")
WIRE = SMTP.clone(max_line_length=998)  # clients fold long References between ids, never encode them
RefStyle = Literal["client", "full", "in-reply-to", "truncated", "none"]
Expect = Literal["new", "join", "none"]

# corpus shapes of delivery reports and out-of-office replies (tests/mail/MANIFEST.toml)
DSN_SHAPES = ("postfix-dsn-user-unknown.eml", "exim-dsn-mailbox-full.eml", "exim-bounce-plain-legacy.eml",
              "sendmail-dsn-user-unknown.eml", "qmail-bounce-plain.eml", "exchange2013-ndr-unzustellbar-german.eml",
              "office365-ndr-recipient-not-found.eml", "gmail-dsn-address-not-found.eml",
              "postfix-dsn-delayed-headers-only.eml")
OOO_SHAPES = ("exchange-ooo-automatic-reply.eml", "exchange-ooo-automatische-antwort.eml",
              "exchange-ooo-reponse-automatique-french.eml", "gmail-vacation-responder.eml",
              "zimbra-out-of-office.eml", "dovecot-sieve-vacation.eml")


# ----------------------------------------------------------------------------------------
# People and the mails they see


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    client: Client = "gmail"
    language: str = "en"  # en | de | fr | sv: the client's prefixes and quote lines

    @property
    def address(self) -> str:
        return formataddr((self.name, self.email), charset="utf-8")

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class Seen:
    """A mail as its recipient's client shows it."""

    raw: bytes
    message_id: str
    subject: str
    sender: tuple[str, str]  # (name, address)
    to: tuple[tuple[str, str], ...]
    cc: tuple[tuple[str, str], ...]
    date: datetime
    in_reply_to: str
    references: tuple[str, ...]
    text: str
    thread_index: str = ""
    kind: str = ""  # for a mail Postdesk sent: its kind ("acknowledgement", "resolution", ...)

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(address.lower() for _, address in (*self.to, *self.cc) if address))


def read(raw: bytes) -> Seen:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    try:
        date = parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        date = START
    return Seen(
        raw=raw, message_id=_ids(message["Message-ID"])[0] if message["Message-ID"] else "",
        subject=" ".join(str(message["Subject"] or "").split()),
        sender=tuple(getaddresses([str(message["From"] or "")])[0]),  # type: ignore[arg-type]
        to=tuple(getaddresses([str(v) for v in message.get_all("To", [])])),
        cc=tuple(getaddresses([str(v) for v in message.get_all("Cc", [])])),
        date=date, in_reply_to=(_ids(message["In-Reply-To"]) or ("",))[0],
        references=_ids(message["References"]), text=str(text).replace("\r\n", "\n"),
        thread_index=str(message["Thread-Index"] or ""),
    )


def _ids(value: object) -> tuple[str, ...]:
    return tuple(re.findall(r"<([^<>\s]+)>", str(value or "")))


TOKEN = re.compile(r"[\[(（［]?\s*Support\s*[#＃]\s*(\d+)\s*[\])）］]?", re.IGNORECASE)


def untokened(subject: str) -> str:
    """The subject without ticket tokens (and the prefixes before them)."""
    return " ".join(TOKEN.sub(" ", subject).split())


def ticket_of(subject: str) -> int | None:
    found = TOKEN.search(subject)
    return int(found.group(1)) if found else None


# ----------------------------------------------------------------------------------------
# How each client writes


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_-"
_REPLY_PREFIX = {("outlook", "en"): "RE:", ("outlook", "de"): "AW:", ("outlook", "sv"): "SV:",
                 ("outlook", "fr"): "RE :", ("thunderbird", "de"): "AW:"}
_FORWARD_PREFIX = {("outlook", "en"): "FW:", ("outlook", "de"): "WG:", ("outlook", "sv"): "VB:",
                   ("outlook", "fr"): "TR :", ("thunderbird", "de"): "WG:"}
_OUTLOOK_HEAD = {
    "en": ("From", "Sent", "To", "Cc", "Subject", "%A, %B %d, %Y %I:%M %p"),
    "de": ("Von", "Gesendet", "An", "Cc", "Betreff", "%A, %d. %B %Y %H:%M"),
    "fr": ("De\u00a0", "Envoyé\u00a0", "À\u00a0", "Cc\u00a0", "Objet\u00a0", "%A %d %B %Y %H:%M"),
    "sv": ("Från", "Skickat", "Till", "Kopia", "Ämne", "den %d %B %Y %H:%M"),
}


def new_message_id(person: Person, rng: random.Random) -> str:
    if person.client == "gmail":
        return "CA" + "".join(rng.choice(_B64) for _ in range(46)) + "@mail.gmail.com"
    if person.client == "outlook":
        box = _outlook_box(person)
        return f"{box}{rng.getrandbits(128):032X}@{box}.eurprd04.prod.outlook.com"
    unique = uuid.UUID(int=rng.getrandbits(128), version=4)
    return f"{str(unique).upper()}@{person.domain}" if person.client == "apple" else f"{unique}@{person.domain}"


def _outlook_box(person: Person) -> str:
    """The Exchange Online mailbox server in Outlook's Message-IDs ("AM9PR04MB8452"), one per person."""
    code = sum(person.email.encode())
    return f"AM{code % 9 + 1}PR0{len(person.email) % 9}MB{code % 9000 + 1000}"


def _thread_index(parent: str, rng: random.Random) -> str:
    """Outlook's Thread-Index: 22 bytes for a new conversation, + 5 bytes per reply."""
    if parent:
        try:
            return base64.b64encode(base64.b64decode(parent) + rng.randbytes(5)).decode()
        except ValueError:
            pass
    return base64.b64encode(rng.randbytes(22)).decode()


def prefixed(prefix: str, subject: str) -> str:
    return subject if subject.lower().startswith(prefix.lower()) else f"{prefix} {subject}"


def reply_prefix(person: Person) -> str:
    return _REPLY_PREFIX.get((person.client, person.language), "Re:")


def forward_prefix(person: Person) -> str:
    return _FORWARD_PREFIX.get((person.client, person.language), "Fwd:")


def thread_headers(parent: Seen, style: RefStyle, client: Client) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) as the client writes them; Outlook keeps In-Reply-To and a
    References cut to the first and the last id."""
    if style == "client":
        style = "truncated" if client == "outlook" else "full"
    if style == "none":
        return None, None
    parent_id = f"<{parent.message_id}>"
    if style == "in-reply-to":
        return parent_id, None
    chain = [*parent.references, parent.message_id]
    if style == "truncated":
        chain = chain[:1] + chain[-1:] if len(chain) > 1 else chain
    return parent_id, " ".join(f"<{m}>" for m in dict.fromkeys(chain))


def attribution(person: Person, parent: Seen) -> str:
    """The line a client writes above the quote."""
    name, address = parent.sender
    at, german = parent.date, person.language == "de"
    if person.client == "gmail":
        return (f"Am {at:%d.%m.%Y} um {at:%H:%M} Uhr schrieb {name} <{address}>:" if german else
                f"On {at:%a, %b} {at.day}, {at:%Y} at {at.hour % 12 or 12}:{at:%M}\u202f{at:%p} {name} <{address}>"
                " wrote:")
    if person.client == "apple":
        return (f"Am {at:%d.%m.%Y} um {at:%H:%M} schrieb {name} <{address}>:" if german else
                f"On {at:%d %b %Y}, at {at:%H:%M}, {name} <{address}> wrote:")
    if german:
        return f"Am {at:%d.%m.%y} um {at:%H:%M} schrieb {name}:"
    return f"On {at:%d.%m.%y} {at:%H:%M}, {name} wrote:"


def outlook_header_block(person: Person, parent: Seen) -> str:
    labels = _OUTLOOK_HEAD.get(person.language, _OUTLOOK_HEAD["en"])
    sender = f"{parent.sender[0]} <{parent.sender[1]}>"
    lines = [f"{labels[0]}: {sender}", f"{labels[1]}: {parent.date.strftime(labels[5])}",
             f"{labels[2]}: " + "; ".join(f"{n} <{a}>" if n else a for n, a in parent.to)]
    if parent.cc:
        lines.append(f"{labels[3]}: " + "; ".join(f"{n} <{a}>" if n else a for n, a in parent.cc))
    lines.append(f"{labels[4]}: {parent.subject}")
    return "\n".join(lines)


def _quoted(text: str, limit: int = 30) -> list[str]:
    lines = text.strip("\n").splitlines()[:limit]
    return [f"> {line}" if line.strip() else ">" for line in lines]


def reply_body(person: Person, parent: Seen, text: str, signature: str = "") -> tuple[str, str]:
    """The plain text and the HTML of a reply, the client's way: Gmail, Apple Mail and
    Thunderbird quote with "> " under an attribution line; Outlook puts its From/Sent/To/
    Subject block above the unquoted original."""
    own = text.strip("\n") + (f"\n\n{signature}" if signature else "")
    original = "\n".join(parent.text.strip("\n").splitlines()[:30])
    if person.client == "outlook":
        plain = f"{own}\n\n________________________________\n{outlook_header_block(person, parent)}\n\n{original}\n"
        html = (f"<div class=\"WordSection1\">{_html(own)}<div style=\"border:none;border-top:solid #E1E1E1 1.0pt;"
                f"padding:3.0pt 0cm 0cm 0cm\"><p class=\"MsoNormal\">{_html(outlook_header_block(person, parent))}"
                f"</p></div>{_html(original)}</div>")
        return plain, html
    head = attribution(person, parent)
    if person.client == "apple":
        plain = own + "\n\n" + "\n".join([f"> {head}", ">", *_quoted(parent.text)]) + "\n"
        html = (f"<div>{_html(own)}<div><br><blockquote type=\"cite\"><div>{escape(head)}</div>"
                f"<div>{_html(original)}</div></blockquote></div></div>")
        return plain, html
    if person.client == "thunderbird" and person.language == "de":  # bottom-posting, as many Germans do
        return "\n".join([head, *_quoted(parent.text), "", own]) + "\n", ""
    plain = own + "\n\n" + head + "\n\n" + "\n".join(_quoted(parent.text)) + "\n"
    html = (f"<div dir=\"ltr\">{_html(own)}</div><br><div class=\"gmail_quote gmail_quote_container\">"
            f"<div dir=\"ltr\" class=\"gmail_attr\">{escape(head)}<br></div><blockquote class=\"gmail_quote\" "
            f"style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">"
            f"{_html(original)}</blockquote></div>")
    return plain, html


def forward_body(person: Person, parent: Seen, text: str) -> str:
    original = "\n".join(parent.text.strip("\n").splitlines()[:30])
    sender = f"{parent.sender[0]} <{parent.sender[1]}>"
    to = ", ".join(f"{n} <{a}>" if n else a for n, a in parent.to)
    if person.client == "outlook":
        return f"{text}\n\n________________________________\n{outlook_header_block(person, parent)}\n\n{original}\n"
    if person.client == "apple":
        block = ["Begin forwarded message:", "", f"From: {sender}", f"Subject: {parent.subject}",
                 f"Date: {parent.date:%d %B %Y at %H:%M:%S}", f"To: {to}", "", *original.splitlines()]
        return text + "\n\n" + "\n".join(f"> {line}" if line else ">" for line in block) + "\n"
    if person.client == "thunderbird":
        return (f"{text}\n\n-------- Forwarded Message --------\nSubject: \t{parent.subject}\n"
                f"Date: \t{format_datetime(parent.date)}\nFrom: \t{sender}\nTo: \t{to}\n\n{original}\n")
    return (f"{text}\n\n---------- Forwarded message ---------\nFrom: {sender}\n"
            f"Date: {parent.date:%a, %b %d, %Y at %I:%M %p}\nSubject: {parent.subject}\nTo: {to}\n\n{original}\n")


def _html(text: str) -> str:
    return "<br>".join(escape(line) for line in text.splitlines())


@dataclass(frozen=True, slots=True)
class Written:
    message_id: str
    raw: bytes


def write(person: Person, *, to: Sequence[str], subject: str, text: str, at: datetime, rng: random.Random,
          cc: Sequence[str] = (), in_reply_to: str | None = None, references: str | None = None,
          html: str = "", thread_index: str = "", thread_topic: str = "") -> Written:
    """One mail with the headers and MIME layout of the person's client."""
    message_id = new_message_id(person, rng)
    mail = EmailMessage(policy=WIRE)
    headers: list[tuple[str, str | None]] = [("From", person.address), ("To", ", ".join(to)),
                                             ("Cc", ", ".join(cc) or None), ("Subject", subject),
                                             ("Date", format_datetime(at)), ("Message-ID", f"<{message_id}>"),
                                             ("In-Reply-To", in_reply_to), ("References", references)]
    headers += _client_headers(person, subject, thread_index, thread_topic)
    for name, value in headers:
        if value is not None:
            mail[name] = value
    _content(mail, person, text, html)
    if mail.is_multipart():
        mail.set_boundary(_boundary(person, rng))
    return Written(message_id, mail.as_bytes())


def _boundary(person: Person, rng: random.Random) -> str:
    token = f"{rng.getrandbits(96):024x}"
    if person.client == "gmail":
        return token[:28]
    if person.client == "apple":
        return f"Apple-Mail={str(uuid.UUID(int=rng.getrandbits(128))).upper()}"
    return f"_000_{token}_"


def _client_headers(person: Person, subject: str, thread_index: str, topic: str) -> list[tuple[str, str | None]]:
    if person.client == "outlook":
        language = {"de": "de-DE", "fr": "fr-FR", "sv": "sv-SE"}.get(person.language, "en-US")
        return [("Thread-Topic", topic or re.sub(r"^((re|aw|sv|fw|wg|tr|vb)\s?:\s*)+", "", subject, flags=re.I)),
                ("Thread-Index", thread_index), ("Accept-Language", ", ".join(dict.fromkeys((language, "en-US")))),
                ("Content-Language", language), ("X-MS-Has-Attach", ""), ("X-MS-TNEF-Correlator", ""),
                ("X-OriginatorOrg", person.domain)]
    if person.client == "apple":
        return [("Mime-Version", "1.0 (Mac OS X Mail 16.0 \\(3826.200.121\\))"),
                ("X-Mailer", "Apple Mail (2.3826.200.121)")]
    if person.client == "thunderbird":
        return [("User-Agent", "Mozilla Thunderbird"),
                ("Content-Language", "de-DE" if person.language == "de" else "en-US")]
    return []


def _content(mail: EmailMessage, person: Person, text: str, html: str) -> None:
    if person.client == "thunderbird":
        mail.set_content(text, params={"format": "flowed"})
        return
    charset = "utf-8"
    if person.client == "outlook":
        try:
            text.encode("iso-8859-1")
            charset = "iso-8859-1"
        except UnicodeEncodeError:
            pass
    mail.set_content(text, charset=charset, cte="quoted-printable")
    mail.add_alternative(f"<html><body>{html or _html(text)}</body></html>", subtype="html",
                         charset=charset, cte="quoted-printable")


def new_mail(person: Person, *, to: str, subject: str, text: str, at: datetime, rng: random.Random,
             cc: Sequence[str] = ()) -> Written:
    index = _thread_index("", rng) if person.client == "outlook" else ""
    body = text.strip("\n") + "\n"
    return write(person, to=[to], cc=cc, subject=subject, text=body, at=at, rng=rng, thread_index=index)


def reply(person: Person, parent: Seen, text: str, *, at: datetime, rng: random.Random, refs: RefStyle = "client",
          to: Sequence[str] | None = None, cc: Sequence[str] = (), subject: str | None = None,
          signature: str = "") -> Written:
    """The person's client answering `parent`: its prefix, its threading headers, its quote."""
    in_reply_to, references = thread_headers(parent, refs, person.client)
    plain, html = reply_body(person, parent, text, signature)
    recipients = list(to) if to is not None else [formataddr(parent.sender)]
    index = _thread_index(parent.thread_index, rng) if person.client == "outlook" else ""
    topic = re.sub(r"^((re|aw|sv|fw|wg|tr|vb)\s?:\s*)+", "", parent.subject, flags=re.I)
    return write(person, to=recipients, cc=cc, subject=subject or prefixed(reply_prefix(person), parent.subject),
                 text=plain, html=html, at=at, rng=rng, in_reply_to=in_reply_to, references=references,
                 thread_index=index, thread_topic=topic)


def forward(person: Person, parent: Seen, to: Person, text: str, *, at: datetime, rng: random.Random) -> Written:
    """Gmail and Thunderbird keep In-Reply-To/References to the forwarded mail; Outlook and
    Apple Mail start afresh (Outlook continues its Thread-Index)."""
    keeps = person.client in ("gmail", "thunderbird")
    in_reply_to, references = thread_headers(parent, "full", person.client) if keeps else (None, None)
    if person.client == "thunderbird":
        in_reply_to = None
    index = _thread_index(parent.thread_index, rng) if person.client == "outlook" else ""
    return write(person, to=[to.address], subject=prefixed(forward_prefix(person), parent.subject),
                 text=forward_body(person, parent, text), at=at, rng=rng, in_reply_to=in_reply_to,
                 references=references, thread_index=index)


MANGLED = ("[Support#{n}]", "(Support #{n})", "Support #{n}", "[Support # {n}]", "[support #{n}]",
           "Support#{n}", "［Support ＃{n}］", "[Support #{n}")


def mangle(subject: str, how: int) -> str:
    """The subject with its first ticket token written the way some clients and people mangle it."""
    return TOKEN.sub(lambda m: MANGLED[how % len(MANGLED)].format(n=m.group(1)), subject, count=1)


# ----------------------------------------------------------------------------------------
# Corpus mails re-aimed at what Postdesk really sent


@cache
def manifest() -> Mapping[str, Mapping[str, object]]:
    return tomllib.loads((CORPUS / "MANIFEST.toml").read_text(encoding="utf-8"))


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def set_headers(raw: bytes, changes: Mapping[str, str | None]) -> bytes:
    """The mail with these header fields replaced (None: removed), everything else byte for byte."""
    split = re.search(rb"\r?\n\r?\n", raw)
    assert split is not None, "a mail without a body separator"
    head, body = raw[:split.start()], raw[split.start():]
    eol = b"\r\n" if b"\r\n" in head else b"\n"
    fields: list[list[bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    wanted = {name.lower(): (name, value) for name, value in changes.items()}
    out: list[bytes] = []
    done: set[str] = set()
    for lines in fields:
        name = lines[0].split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        if name not in wanted:
            out.extend(lines)
            continue
        if name not in done and wanted[name][1] is not None:
            out.append(_field(wanted[name][0], wanted[name][1], eol))  # type: ignore[arg-type]
        done.add(name)
    out += [_field(name, value, eol) for key, (name, value) in wanted.items() if key not in done and value is not None]
    return eol.join(out) + body


def _field(name: str, value: str, eol: bytes) -> bytes:
    if not value.isascii():
        value = Header(value, "utf-8", header_name=name).encode(linesep=eol.decode())
    return f"{name}: {value}".encode("ascii")


def _renumber(raw: bytes, old: int, new: int) -> bytes:
    return re.sub(rb"(#\s?|\+)%d(?!\d)" % old, lambda m: m.group(1) + str(new).encode(), raw)


def _readdress(raw: bytes, support: str) -> bytes:
    """The corpus's support@example.com (and support+N@) as this run's support address."""
    local, _, domain = support.partition("@")
    return re.sub(rb"support(\+\d+)?@example\.com", lambda m: f"{local}".encode() + (m.group(1) or b"")
                  + f"@{domain}".encode(), raw)


def _fresh_id(old: str, rng: random.Random) -> str:
    local, _, domain = old.rpartition("@")
    return f"{local}.{rng.getrandbits(32):08x}@{domain}"


def aimed(name: str, *, sender: Person, support: str, parent: Seen | None, number: int | None, at: datetime,
          rng: random.Random, thread_headers_kept: bool = True) -> bytes:
    """A corpus mail (a client's reply) re-aimed: from `sender`, answering `parent`, naming
    ticket `number`; without In-Reply-To/References when they were lost."""
    entry = manifest()[name]
    raw = _readdress(corpus(name), support)
    old_parent = str(entry.get("in_reply_to", ""))
    if old_parent and parent is not None:
        raw = raw.replace(old_parent.encode(), parent.message_id.encode())
    if entry.get("ticket_token") and number is not None:
        raw = _renumber(raw, int(entry["ticket_token"]), number)  # type: ignore[call-overload]
    changes: dict[str, str | None] = {
        "From": sender.address, "Return-Path": f"<{sender.email}>", "Date": format_datetime(at),
        "Message-ID": f"<{_fresh_id(str(entry.get('message_id', 'x@corpus.example')), rng)}>"}
    if not thread_headers_kept:
        changes.update({"In-Reply-To": None, "References": None, "Thread-Index": None})
    return set_headers(raw, changes)


def out_of_office(shape: str, person: Person, parent: Seen, *, at: datetime, rng: random.Random) -> bytes:
    """The corpus's out-of-office reply `shape`, sent by `person`'s server in answer to `parent`."""
    entry = manifest()[shape]
    raw = corpus(shape)
    raw = raw.replace(str(entry["in_reply_to"]).encode(), parent.message_id.encode())
    old_subject = str(entry["subject"])
    old_token = TOKEN.search(old_subject)
    subject = old_subject[:old_token.start()] + parent.subject if old_token else old_subject
    support = parent.sender[1]
    raw = _readdress(raw, support)
    return set_headers(raw, {
        "From": person.address, "To": formataddr(parent.sender, charset="utf-8"), "Subject": subject,
        "Thread-Topic": parent.subject if b"\nThread-Topic:" in raw else None,
        "Return-Path": "<>" if b"Return-Path: <>" in raw else f"<{person.email}>",
        "Date": format_datetime(at), "Message-ID": f"<{_fresh_id(str(entry['message_id']), rng)}>"})


def bounce(shape: str, sent: Seen, recipient: str, *, at: datetime, rng: random.Random) -> bytes:
    """The corpus's delivery report `shape`, written by the recipient's server about `sent`:
    the same bytes, quoting `sent`'s Message-ID, ticket token and recipient."""
    from daemon.core.parse import parse

    entry = manifest()[shape]
    raw = corpus(shape)
    report = parse(raw, received_at=at).delivery_report
    assert report is not None and report.failed_recipients, shape
    original = str(entry["bounce_of"])
    raw = raw.replace(original.encode(), sent.message_id.encode())
    number, old = ticket_of(sent.subject), int(original.split(".")[1])
    # a mail about no ticket had no token in its subject
    raw = _renumber(raw, old, number) if number is not None else re.sub(rb"\[Support #%d\] ?" % old, b"", raw)
    failed = report.failed_recipients[0]
    raw = re.sub(re.escape(failed).encode(), recipient.encode(), raw, flags=re.IGNORECASE)
    raw = _readdress(raw, sent.sender[1])
    raw = set_headers(raw, {"Date": format_datetime(at), "Message-ID": f"<{_fresh_id(_own_id(raw), rng)}>"})
    check = parse(raw, received_at=at).delivery_report
    assert check is not None and check.original_message_id == sent.message_id, f"{shape} was not re-aimed"
    return raw


def _own_id(raw: bytes) -> str:
    found = re.search(rb"^Message-I[dD]:\s*<([^>]+)>", raw, re.MULTILINE)
    return found.group(1).decode() if found else "dsn@mx.example"


# ----------------------------------------------------------------------------------------
# The simulation


@dataclass(frozen=True, slots=True)
class Labelled:
    """A mail for Postdesk and the truth about it."""

    raw: bytes
    at: datetime
    sender: str
    thread: str  # the conversation it belongs to ("" for noise)
    expect: Expect  # new: opens its conversation's ticket; join: goes into it; none: no ticket
    shape: str  # what it is, for the report ("outlook reply, lost headers, mangled token", ...)
    customer: str  # whose conversation it is ("" for noise)


@dataclass
class Conversation:
    key: str
    customer: Person
    subject: str
    text: str
    start: datetime
    cc: tuple[Person, ...] = ()
    parent: str = ""  # for a stranger's conversation: the one whose ticket token they used
    first: Seen | None = None
    turns: int = 0
    agent_turns: int = 0
    closed: bool = False  # the customer has decided to thank: no more reactions
    thanked: bool = False  # ... and the thanks has gone out: later mail meets a closed ticket
    after: str = ""  # the conversation a mail after the closure started
    pending: int = 0  # mails the customer's side or an agent has decided to write, not yet sent


@dataclass
class Score:
    mails: int = 0
    right: int = 0
    cross: int = 0  # mails of one customer filed in another customer's ticket
    misfiled: list[str] = field(default_factory=list)
    ticket_of: dict[str, int] = field(default_factory=dict)  # conversation → its ticket
    owner: dict[int, tuple[str, str]] = field(default_factory=dict)  # ticket → (conversation, customer)
    shapes: Counter[str] = field(default_factory=Counter)  # mails by what they are
    wrong: Counter[str] = field(default_factory=Counter)  # misfiled mails by what they are
    expected: Counter[str] = field(default_factory=Counter)  # new | join | none

    @property
    def accuracy(self) -> float:
        return self.right / self.mails if self.mails else 1.0

    def record(self, mail: Labelled, ticket: int | None, verdict: str) -> None:
        self.mails += 1
        self.shapes[mail.shape] += 1
        self.expected[mail.expect] += 1
        expected = self.ticket_of.get(mail.thread)
        if mail.expect == "new":
            right = ticket is not None and ticket not in self.owner and verdict == "stored"
            if right and ticket is not None:
                self.ticket_of[mail.thread] = ticket
                self.owner[ticket] = (mail.thread, mail.customer)
        elif mail.expect == "join":
            right = ticket is not None and ticket == expected
        else:
            right = ticket is None
        landed = self.owner.get(ticket) if ticket is not None else None
        if landed is not None and mail.customer and landed[1] != mail.customer:
            self.cross += 1
        if right:
            self.right += 1
            return
        self.wrong[mail.shape] += 1
        want = {"new": "a new ticket", "none": "no ticket"}.get(mail.expect, f"#{expected}")
        got = f"#{ticket}" if ticket is not None else "no ticket"
        whose = f" (the ticket of {landed[1]})" if landed and landed[1] != mail.customer else ""
        self.misfiled.append(f"{mail.at:%m-%d %H:%M} {mail.shape} from {mail.sender} in {mail.thread or '-'}: "
                             f"expected {want}, got {got}{whose} [{verdict}]")

    def summary(self) -> str:
        return (f"mails {self.mails}, tickets {len(self.owner)}, accuracy {self.accuracy:.2%} "
                f"({self.mails - self.right} misfiled), mails in another customer's ticket {self.cross}")


FIRST = ("Olena", "Taras", "Anna", "John", "Maria", "Li", "Pierre", "Sofia", "Hans", "Petra", "Markus", "Jane",
         "Karl", "Monika", "Lena", "Jonas", "Sophie", "Erik", "Ingrid", "Marta", "Kevin", "Nadia", "Ahmed", "Yuki")
LAST = ("Petrenko", "Kovalenko", "Schmidt", "Miller", "Rossi", "Wei", "Dubois", "Müller", "Lang", "Brandt",
        "Cooper", "Huber", "Schulz", "Schneider", "Wagner", "Laurent", "Nilsson", "Berg", "Novak", "Lee", "Haddad")
DOMAINS = ("kunde.example", "customer.example", "firma.example", "client.example", "klient.example",
           "handwerk.example", "agency.example", "school.example")
PROBLEMS = (
    ("Printer on floor {n} prints nothing", "The printer in room {n}.14 takes the jobs but prints nothing.",
     "Drucker im {n}. OG druckt nicht", "Der Drucker in Raum {n}.14 nimmt Aufträge an, druckt aber nichts."),
    ("VPN keeps disconnecting", "The VPN drops every {n} minutes since the update.",
     "VPN-Verbindung bricht ab", "Die VPN-Verbindung bricht seit dem Update alle {n} Minuten ab."),
    ("Cannot log in after the password change", "Since I changed my password I cannot log in (error {n}).",
     "Anmeldung nach Passwortänderung nicht möglich", "Seit der Passwortänderung kann ich mich nicht anmelden."),
    ("Shared drive not mounting", "The shared drive S: does not mount on {n} laptops.",
     "Netzlaufwerk wird nicht verbunden", "Das Laufwerk S: wird auf {n} Laptops nicht verbunden."),
    ("Outlook asks for the password again and again", "Outlook asks for my password every {n} minutes.",
     "Outlook fragt ständig nach dem Passwort", "Outlook fragt alle {n} Minuten nach dem Passwort."),
    ("Phone without connection", "The desk phone in room {n} shows 'No registration'.",
     "Telefon ohne Verbindung", "Das Telefon in Raum {n} zeigt 'Keine Registrierung'."),
    ("ERP: database locked", "The ERP says 'Database locked by another user (code {n})'.",
     "ERP: Datenbank gesperrt", "Das ERP meldet 'Datenbank gesperrt (Code {n})'."),
    ("Mailbox almost full", "My mailbox is at {n}% and I cannot delete anything.",
     "Postfach fast voll", "Mein Postfach ist zu {n}% voll."),
    ("New laptop for a new colleague", "A new colleague starts on Monday in room {n}; we need a laptop.",
     "Neuer Laptop für neue Kollegin", "Eine neue Kollegin beginnt am Montag in Raum {n}."),
    ("Scanner sends no mails", "The scanner on floor {n} no longer sends the scans by mail.",
     "Scanner verschickt keine Mails", "Der Scanner im {n}. OG verschickt keine Scans mehr."),
)
MORE = {"en": ("It happened again this morning, twice.", "Here is the error message: code {n}.",
               "My colleague in room {n} has the same problem.", "Restarting did not help."),
        "de": ("Heute früh ist es wieder zweimal passiert.", "Die Fehlermeldung lautet: Code {n}.",
               "Mein Kollege in Raum {n} hat das gleiche Problem.", "Ein Neustart hat nicht geholfen.")}
THANKS = {"en": ("Thanks, that fixed it!", "Thank you, it works now.", "Many thanks, all good."),
          "de": ("Vielen Dank, funktioniert jetzt.", "Danke, es funktioniert!"),
          "fr": ("Merci beaucoup, ça marche.",), "sv": ("Tack så mycket, det fungerar!",)}
STILL = {"en": "Unfortunately it is still not working: the same error as before.",
         "de": "Leider funktioniert es immer noch nicht, derselbe Fehler wie vorher."}
AGENT_TEXT = ("Please restart the device and tell us whether the problem is still there.",
              "We have changed the setting on our side; please try again.",
              "Could you send us a screenshot of the error message?")


class Simulation:
    """Customers, colleagues, their servers and the agents, reacting to what Postdesk sends."""

    def __init__(self, threads: int = 1000, seed: int = 1, support: str = "help@example.com",
                 agents: Sequence[Person] = (), start: datetime = START, days: float | None = None) -> None:
        self.rng = random.Random(seed)
        self.support = support
        self.agents = {a.email: a for a in (agents or (Person("Alice", "alice@example.com", "thunderbird"),
                                                       Person("Bob", "bob@example.com", "gmail")))}
        self.people: dict[str, Person] = {}
        self.conversations: dict[str, Conversation] = {}
        self.by_customer: dict[str, list[str]] = {}
        self.away: set[str] = set()  # out-of-office responders on
        self.dead: set[str] = set()  # mailboxes that bounce
        self.last_ooo: dict[str, datetime] = {}
        self.taken_by_agent: set[str] = set()
        self.score = Score()
        self._queue: list[tuple[datetime, int, Callable[[datetime], Labelled | None]]] = []
        self._order = 0
        self._plan(threads, start, days if days is not None else max(1.0, threads / 200))

    # -- the clock ------------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[datetime], Labelled | None]) -> None:
        self._order += 1
        heapq.heappush(self._queue, (when, self._order, action))

    def next(self) -> Labelled | None:
        """The next mail that reaches Postdesk, in time order; None when everyone is done."""
        while self._queue:
            when, _, action = heapq.heappop(self._queue)
            mail = action(when)
            if mail is not None:
                return mail
        return None

    def record(self, mail: Labelled, ticket: int | None, verdict: str) -> None:
        self.score.record(mail, ticket, verdict)

    # -- who writes -----------------------------------------------------------------------

    def person(self, domain: str | None = None) -> Person:
        rng = self.rng
        client = rng.choices(CLIENTS, weights=(35, 35, 15, 15))[0]
        language = rng.choices(("en", "de", "fr", "sv"), weights=(55, 30, 8, 7))[0]
        if client != "outlook" and language in ("fr", "sv"):
            language = "en"
        first, last = rng.choice(FIRST), rng.choice(LAST)
        index = len(self.people) + 1
        host = domain or ("gmail.com" if client == "gmail" and rng.random() < 0.5 else rng.choice(DOMAINS))
        local = f"{first}.{last}{index}".lower().replace("ü", "ue")
        found = Person(f"{first} {last}", f"{local}@{host}", client, language)
        self.people[found.email] = found
        return found

    def _plan(self, threads: int, start: datetime, days: float) -> None:
        rng = self.rng
        for index in range(threads):
            customers = list(self.by_customer)
            again = bool(customers) and rng.random() < 0.12
            customer = self.people[rng.choice(customers)] if again else self.person()
            similar = again and rng.random() < 0.5
            when = start + timedelta(days=rng.uniform(0, days))
            if similar:  # a second ticket with a similar subject, soon after the first
                previous = self.conversations[self.by_customer[customer.email][-1]]
                when = previous.start + timedelta(minutes=rng.uniform(5, 90))
            self._open(f"T{index + 1:04d}", customer, when, similar)
        for _ in range(max(1, threads // 100)):
            self.at(start + timedelta(days=rng.uniform(0, days)), self._backscatter)
            self.at(start + timedelta(days=rng.uniform(0, days)), self._stray_auto_reply)

    def _open(self, key: str, customer: Person, when: datetime, similar: bool) -> None:
        rng = self.rng
        n = rng.randint(2, 40)
        problem = rng.choice(PROBLEMS)
        if similar:
            previous = self.conversations[self.by_customer[customer.email][-1]]
            subject, text = previous.subject, previous.text.replace("room", "the room next to room")
            if rng.random() < 0.5:
                subject = re.sub(r"\d+", str(n), subject) if re.search(r"\d", subject) else subject + " (2)"
        elif customer.language == "de":
            subject, text = problem[2].format(n=n), problem[3].format(n=n)
        else:
            subject, text = problem[0].format(n=n), problem[1].format(n=n)
        cc = (self.person(customer.domain),) if rng.random() < 0.12 and "gmail" not in customer.domain else ()
        conversation = Conversation(key, customer, subject, text, when, cc)
        self._register(conversation)
        if rng.random() < 0.06:
            self.away.add(customer.email)
        elif rng.random() < 0.04:
            self.dead.add(customer.email)
        self.at(when, lambda at: self._first_mail(conversation, at))

    def _register(self, conversation: Conversation) -> None:
        self.conversations[conversation.key] = conversation
        self.by_customer.setdefault(conversation.customer.email, []).append(conversation.key)

    def _label(self, conversation: Conversation, raw: bytes, at: datetime, sender: str, expect: Expect,
               shape: str) -> Labelled:
        return Labelled(raw, at, sender, conversation.key, expect, shape, conversation.customer.email)

    def _first_mail(self, conversation: Conversation, at: datetime) -> Labelled:
        customer = conversation.customer
        written = new_mail(customer, to=self.support, subject=conversation.subject, text=conversation.text,
                           at=at, rng=self.rng, cc=[p.address for p in conversation.cc])
        conversation.first = read(written.raw)
        for colleague in conversation.cc:
            if self.rng.random() < 0.5:  # a colleague in copy answers everyone at once
                conversation.pending += 1
                self.at(at + timedelta(minutes=self.rng.uniform(10, 240)),
                        partial(self._reply_all, conversation, colleague))
        return self._label(conversation, written.raw, at, customer.email, "new", f"{customer.client} new mail")

    def _reply_all(self, conversation: Conversation, colleague: Person, at: datetime) -> Labelled | None:
        assert conversation.first is not None
        conversation.pending -= 1
        if conversation.thanked:
            return None
        text = self.rng.choice(MORE.get(colleague.language, MORE["en"])).format(n=self.rng.randint(2, 40))
        written = reply(colleague, conversation.first, text, at=at, rng=self.rng,
                        to=[conversation.customer.address], cc=[self.support])
        return self._label(conversation, written.raw, at, colleague.email, "join",
                           f"{colleague.client} reply-all of a colleague in copy")

    # -- what Postdesk sends, and who reacts --------------------------------------------

    def deliver(self, seen: Seen, at: datetime) -> None:
        """A mail Postdesk sent reaches its recipients."""
        number = ticket_of(seen.subject)
        owner = self.score.owner.get(number) if number is not None else None
        conversation = self.conversations.get(owner[0]) if owner else None
        for address in seen.recipients:
            if address in self.agents:
                self._agent_reacts(self.agents[address], seen, conversation, at)
            elif conversation is not None and address in self.people:
                self._person_reacts(self.people[address], seen, conversation, at)

    def _person_reacts(self, person: Person, seen: Seen, conversation: Conversation, at: datetime) -> None:
        rng = self.rng
        if person.email in self.dead:
            shape = rng.choice(DSN_SHAPES)
            self.at(at + timedelta(minutes=rng.uniform(0.5, 5)), lambda when: self._label(
                conversation, bounce(shape, seen, person.email, at=when, rng=rng), when, "mailer-daemon", "join",
                f"bounce ({shape.removesuffix('.eml')})"))
            return
        if person.email in self.away and at - self.last_ooo.get(person.email, START - timedelta(days=9)) \
                > timedelta(days=4):
            self.last_ooo[person.email] = at
            shape = rng.choice(OOO_SHAPES)
            self.at(at + timedelta(seconds=rng.uniform(5, 90)), lambda when: self._label(
                conversation, out_of_office(shape, person, seen, at=when, rng=rng), when, person.email, "join",
                f"out-of-office ({shape.removesuffix('.eml')})"))
        kind = seen.kind
        if conversation.closed or conversation.turns >= 5:
            return
        if person.email != conversation.customer.email:
            if kind in ("agent_reply", "info_request", "resolution") and rng.random() < 0.25:
                self._later(person, seen, conversation, at, self._more_text(person), cc_reply=True)
            return
        if kind == "acknowledgement":
            if not conversation.parent and rng.random() < 0.07:
                self.at(at + timedelta(minutes=rng.uniform(5, 300)),
                        lambda when: self._forward(conversation, seen, when))
            if rng.random() < 0.45:
                self._later(person, seen, conversation, at, self._more_text(person))
        elif kind in ("agent_reply", "info_request") and rng.random() < 0.75:
            self._later(person, seen, conversation, at, self._more_text(person))
        elif kind == "resolution":
            chance = rng.random()
            if chance < 0.6 and not conversation.pending:  # a thanks while nothing else is on its way
                conversation.closed = True
                self._later(person, seen, conversation, at, rng.choice(THANKS[person.language]), thanks=True)
                if rng.random() < 0.15:  # days later the problem is back: a reply to the resolution
                    self.at(at + timedelta(days=rng.uniform(3, 10)), lambda when: self._customer_reply(
                        person, seen, conversation, when, STILL.get(person.language, STILL["en"]), counted=False))
            elif chance < 0.85:
                self._later(person, seen, conversation, at, STILL.get(person.language, STILL["en"]))

    def _more_text(self, person: Person) -> str:
        return self.rng.choice(MORE.get(person.language, MORE["en"])).format(n=self.rng.randint(2, 40))

    def _later(self, person: Person, seen: Seen, conversation: Conversation, at: datetime, text: str,
               cc_reply: bool = False, thanks: bool = False) -> None:
        conversation.turns += 1
        conversation.pending += 1
        delay = timedelta(minutes=self.rng.uniform(10, 2 * 24 * 60))
        self.at(at + delay, lambda when: self._customer_reply(person, seen, conversation, when, text, cc_reply,
                                                              thanks))

    def _customer_reply(self, person: Person, seen: Seen, conversation: Conversation, at: datetime, text: str,
                        cc_reply: bool = False, thanks: bool = False, counted: bool = True) -> Labelled:
        rng = self.rng
        conversation.pending -= counted
        number = ticket_of(seen.subject)
        others = [self.score.ticket_of[k] for k in self.by_customer.get(person.email, [])
                  if k != conversation.key and k in self.score.ticket_of]
        other = ""
        if others and not thanks and rng.random() < 0.4:  # names another of their tickets, in the body only
            text += f"\n\nThis may be related to my other ticket [Support #{rng.choice(others)}]."
            other = ", another ticket's token in the body"
        style = "client" if thanks else rng.choices(
            ("client", "lost headers, subject token", "lost headers, mangled token", "lost headers, plus address",
             "edited subject"), weights=(66, 9, 11, 5, 9))[0]
        cc = [conversation.customer.address] if cc_reply else []
        subject, to = None, [self.support]
        refs: RefStyle = "none" if style.startswith("lost headers") else "client"
        if style == "lost headers, mangled token":
            subject = mangle(prefixed(reply_prefix(person), seen.subject), rng.randrange(len(MANGLED)))
        elif style == "lost headers, plus address" and number is not None:
            local, _, domain = self.support.partition("@")
            to, subject = [f"{local}+{number}@{domain}"], prefixed(reply_prefix(person), untokened(seen.subject))
        elif style == "edited subject":
            subject = prefixed(reply_prefix(person), untokened(seen.subject) + " - update")
        written = reply(person, seen, text, at=at, rng=rng, refs=refs, to=to, cc=cc, subject=subject,
                        signature=person.name)
        who = "colleague in copy" if cc_reply else ("thanks" if thanks else style)
        shape = f"{person.client} reply, {who}{other}"
        if conversation.thanked:  # the ticket was closed meanwhile: closed_followup = "new"
            return self._after_closure(conversation, written.raw, at, person, shape)
        conversation.thanked = thanks
        return self._label(conversation, written.raw, at, person.email, "join", shape)

    def _after_closure(self, conversation: Conversation, raw: bytes, at: datetime, person: Person,
                       shape: str) -> Labelled:
        """A reply after the customer's thanks closed the ticket (days later the problem is back):
        a new ticket linked to the closed one (the default policy), so a conversation of its own."""
        if not conversation.after:
            later = Conversation(f"{conversation.key}-after", conversation.customer, conversation.subject, "", at,
                                 conversation.cc, parent=conversation.key)
            self._register(later)
            conversation.after = later.key
            return self._label(later, raw, at, person.email, "new", f"{shape}, after the ticket was closed")
        return self._label(self.conversations[conversation.after], raw, at, person.email, "join",
                           f"{shape}, after the ticket was closed")

    def _forward(self, conversation: Conversation, seen: Seen, at: datetime) -> None:
        """The customer forwards Postdesk's mail to a colleague, who then writes to support
        about it: someone who is not on the ticket, carrying its token."""
        rng = self.rng
        colleague = self.person(conversation.customer.domain)
        sent = forward(conversation.customer, seen, colleague, "FYI, see below.", at=at, rng=rng)
        received = read(sent.raw)
        key = f"{conversation.key}-fwd"
        stranger = Conversation(key, colleague, received.subject, "", at, parent=conversation.key)
        self._register(stranger)
        text = self.rng.choice(("I have the same problem on my computer, can you help me too?",
                                "Could you also check my account? Same symptoms here."))
        self.at(at + timedelta(minutes=rng.uniform(30, 24 * 60)), lambda when: self._label(
            stranger, reply(colleague, received, text, at=when, rng=rng, to=[self.support]).raw, when,
            colleague.email, "new", f"{colleague.client} reply to a forward, by a colleague not on the ticket"))

    def _agent_reacts(self, agent: Person, seen: Seen, conversation: Conversation | None, at: datetime) -> None:
        rng = self.rng
        kind = seen.kind
        if conversation is None or conversation.closed or conversation.agent_turns >= 3:
            return
        if kind == "agent_new_ticket" and conversation.key not in self.taken_by_agent and rng.random() < 0.65:
            self.taken_by_agent.add(conversation.key)
            command = rng.choices(("", "#wait\n\n", "#resolve\n\n"), weights=(55, 25, 20))[0]
        elif kind == "agent_update" and rng.random() < 0.55:
            command = rng.choice(("", "#resolve\n\n"))
        else:
            return
        conversation.agent_turns += 1
        conversation.pending += 1
        text = command + rng.choice(AGENT_TEXT)
        self.at(at + timedelta(minutes=rng.uniform(5, 6 * 60)),
                lambda when: self._agent_answer(agent, seen, conversation, when, text, command))

    def _agent_answer(self, agent: Person, seen: Seen, conversation: Conversation, at: datetime, text: str,
                      command: str) -> Labelled | None:
        conversation.pending -= 1
        if conversation.thanked:  # closed by the customer's thanks meanwhile: nothing more to say
            return None
        written = reply(agent, seen, text, at=at, rng=self.rng, refs="full", to=[self.support])
        return self._label(conversation, written.raw, at, agent.email, "join",
                           f"agent answer {command.strip() or 'reply'}")

    # -- noise ----------------------------------------------------------------------------

    def _backscatter(self, at: datetime) -> Labelled:
        """A bounce of a mail Postdesk never sent (spam forged with the support address)."""
        rng = self.rng
        victim = f"user{rng.randint(1, 999)}@{rng.choice(DOMAINS)}"
        forged = Seen(b"", f"{rng.getrandbits(64):016x}@{self.support.partition('@')[2]}", "Your invoice",
                      ("", self.support), (("", victim),), (), at, "", (), "")
        shape = rng.choice(DSN_SHAPES)
        raw = bounce(shape, forged, victim, at=at, rng=rng)
        return Labelled(raw, at, "mailer-daemon", "", "none", f"backscatter ({shape.removesuffix('.eml')})", "")

    def _stray_auto_reply(self, at: datetime) -> Labelled:
        """An out-of-office answer to a mail that is on no ticket."""
        person = self.person()
        parent = Seen(b"", f"{self.rng.getrandbits(64):016x}@elsewhere.example", "Newsletter November",
                      ("Newsletter", self.support), (("", person.email),), (), at, "", (), "")
        shape = self.rng.choice(("gmail-vacation-responder.eml", "zimbra-out-of-office.eml"))
        raw = out_of_office(shape, person, parent, at=at, rng=self.rng)
        return Labelled(raw, at, person.email, "", "none", "out-of-office to a mail on no ticket", "")


# ----------------------------------------------------------------------------------------
# Playing it through Postdesk


class Outbox:
    """Postdesk's sender draining into the Maildir outbox (one event loop for a whole run),
    and the mails it wrote there since the last look."""

    def __init__(self, app: App) -> None:
        from daemon.sender import Sender

        self.app = app
        self.now = START
        self.folder = Path(app.config.outbound.maildir)
        self.seen_folder = self.folder.parent / (self.folder.name + "-delivered")
        self.seen_folder.mkdir(parents=True, exist_ok=True)
        self.runner = asyncio.Runner()
        self.sender = Sender(app, lambda: self.now)

    def send(self, at: datetime) -> list[Seen]:
        """Send what is due at `at`; the mails sent (moved aside once read), each with its kind
        from the outbox table: what a reader learns from the text, whatever the subject says."""
        from sqlalchemy import select

        from daemon.store.models import Outbox as OutboxRow

        self.now = at
        self.runner.run(self.sender.drain())
        found = []
        for entry in sorted(os.scandir(self.folder / "new"), key=lambda e: e.name):
            found.append(read(Path(entry.path).read_bytes()))
            os.replace(entry.path, self.seen_folder / entry.name)
        with self.app.db.read() as session:
            rows = session.execute(select(OutboxRow.message_id, OutboxRow.kind).where(
                OutboxRow.message_id.in_([mail.message_id for mail in found]))).all()
        kinds = {message_id: kind for message_id, kind in rows}
        return [replace(mail, kind=kinds.get(mail.message_id, "")) for mail in found]

    def close(self) -> None:
        self.runner.run(self.sender.close())
        self.runner.close()


def play(app: App, simulation: Simulation, mailbox: str, on_mail: Callable[[Labelled], None] | None = None) -> Score:
    """Every mail of the simulation through `take_in`; what Postdesk sends goes back to it."""
    from daemon.intake import take_in

    outbox = Outbox(app)
    try:
        while (mail := simulation.next()) is not None:
            result = take_in(app, mail.raw, mailbox, mail.at)
            simulation.record(mail, result.ticket_number, result.verdict.value)
            if on_mail is not None:
                on_mail(mail)
            for sent in outbox.send(mail.at):
                simulation.deliver(sent, mail.at)
    finally:
        outbox.close()
    return simulation.score
