"""Raw mail bytes → `InboundMail`, for any bytes whatever.

`parse` never raises. The stdlib `email` package (compat32, the reader mail-parser itself
wraps) reads the MIME structure once (well-formed mail through `mimetree`, which builds the
same tree faster); the walk below decodes only what Postdesk keeps.
mail-parser's RFC 5322 date reader (obsolete forms included) reads Date. When the MIME
reader fails (nesting too deep), a plain split of header and body is taken instead.
Whatever had to be repaired on the way is listed in `InboundMail.defects`.

mail-parser's own `parse_from_bytes` is not called: it reads every body and attachment
into its own structures (decoding and re-encoding each), which this walk then did again;
that doubled read was 1.5 ms of a 2.1 ms parse (bench/parse.py).

Header and charset decoding live in `decoding.py`; here: reading the MIME structure, the
walk over bodies and attachments, and `parse`.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.parser
import email.utils
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import Message
from typing import Final

from mailparser.dates import parse_mail_date

from daemon.core.decoding import (
    _EMAIL_LIKE,
    MAX_HEADER_CHARS,
    _decode_b,
    as_utc,
    clean_text,
    codecs_for_charset,
    decode_bytes,
    decode_header_value,
    extract_language,
    extract_message_id,
    extract_message_ids,
    extract_return_path,
    generated_message_id,
    parse_addresses,
    parse_date,
    unfold,
)
from daemon.core.dsn import read_delivery_report
from daemon.core.htmltext import html_to_text
from daemon.core.mimetree import attached_mail, read_tree, stored_payload
from daemon.core.reply import split_reply
from daemon.core.values import Address, Attachment, InboundMail

MAX_NESTING: Final = 256  # multipart levels walked; deeper parts are skipped
MAX_PARTS: Final = 1000  # MIME parts walked in one mail
MAX_DEFECTS: Final = 40
MAX_HTML_CHARS: Final = 2 * 1024 * 1024

# ---------------------------------------------------------------------------
# Reading the MIME structure: stdlib compat32, else headers only
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ReadMessage:
    message: Message
    defects: tuple[str, ...]


def read_message(raw: bytes) -> _ReadMessage:
    """The parsed MIME tree; the fallback says in `defects` why it was needed. Well-formed
    mail is read by `mimetree.read_tree` (the same tree, several times faster), the rest by
    the stdlib."""
    try:
        tree = read_tree(raw)
    except Exception:  # read_tree answers only what it is sure of; on any surprise the stdlib reads the mail
        tree = None
    if tree is not None:
        return _ReadMessage(tree, ())
    try:
        message = email.message_from_bytes(raw)
    except Exception as error:  # RecursionError on absurd nesting, or a stdlib bug
        why = f"stdlib email failed ({type(error).__name__}); headers and raw body only"
        return _ReadMessage(email.parser.BytesParser().parsebytes(raw, headersonly=True), (why,))
    if any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in message.defects):
        repaired = repair_header_block(raw)
        if repaired is not None:
            return _ReadMessage(email.message_from_bytes(repaired.raw), repaired.defects)
    return _ReadMessage(message, ())


@dataclass(frozen=True, slots=True)
class _Repaired:
    raw: bytes
    defects: tuple[str, ...]


_HEADER_LINE: Final = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_SPACED_NAME: Final = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]+:")  # RFC 5322 obs-optional: "Name  :"
_BLANK_LINE: Final = re.compile(rb"\r?\n[ \t]*\r?\n")


def repair_header_block(raw: bytes) -> _Repaired | None:
    """The stdlib reader ends the header at the first line that is not a header field, and
    reads all the rest, From and Subject included, as the body. Some mail does have such a
    line among its fields: a relay's stray text ("quite Delivered-To: ..."), or the obsolete
    "Name  :" with spaces before the colon (RFC 5322 4.5). When every line after it up to
    the first blank line is a field or a continuation, the header really goes on: the
    spaced names are closed up and the stray lines left out, the stored raw mail unchanged.
    None when that is not so (a mail whose body simply follows its header without a blank
    line is read as it was)."""
    end = _BLANK_LINE.search(raw)
    if end is None:
        return None
    lines = raw[: end.start()].splitlines(keepends=True)
    kept: list[bytes] = []
    dropped: list[bytes] = []
    closed = 0
    for number, line in enumerate(lines):
        if line[:1] in (b" ", b"\t") and kept:
            kept.append(line)
        elif _SPACED_NAME.match(line):
            kept.append(_SPACED_NAME.sub(rb"\1:", line, count=1))
            closed += 1
        elif _HEADER_LINE.match(line) or (number == 0 and line.startswith(b"From ")):  # or an mbox From_ line
            kept.append(line)
        else:
            dropped.append(line)
    header_lines = sum(1 for line in kept if _HEADER_LINE.match(line))
    if header_lines < 2 or len(dropped) * 4 > len(lines):  # not a header block gone astray
        return None
    defects = [f"{closed} header field name(s) with spaces before the colon read as fields"] if closed else []
    defects += [f"a line in the header that is not a field was left out: {_shown(line)}" for line in dropped[:3]]
    return _Repaired(b"".join(kept) + raw[end.start():], tuple(defects))


def _shown(line: bytes) -> str:
    return repr(line.rstrip(b"\r\n")[:80].decode("utf-8", "replace"))


def library_date(value: str | None) -> datetime | None:
    """mail-parser's reading of a Date value (RFC 5322, obsolete forms too), or None."""
    if not value:
        return None
    try:
        found = parse_mail_date(unfold(value))
    except Exception:  # it promises a result object; a bug there must not cost the mail
        return None
    return found.value if isinstance(found.value, datetime) else None


# ---------------------------------------------------------------------------
# The MIME walk: body text parts, attachments, report parts
# ---------------------------------------------------------------------------

_REPORT_TYPES: Final = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "text/rfc822-headers",
     "message/feedback-report"}
)  # fmt: skip
_MESSAGE_TYPES: Final = frozenset({"message/rfc822", "message/global"})
_TNEF_TYPES: Final = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_EXTENSIONS: Final[dict[str, str]] = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/tiff": ".tif", "image/svg+xml": ".svg", "application/pdf": ".pdf",
    "application/zip": ".zip", "text/plain": ".txt", "text/html": ".html", "text/csv": ".csv",
    "text/calendar": ".ics", "application/pgp-signature": ".asc", "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s", "message/rfc822": ".eml", "message/global": ".eml",
    "application/msword": ".doc", "application/vnd.ms-excel": ".xls", "application/json": ".json",
    "application/xml": ".xml", "text/xml": ".xml", "audio/mpeg": ".mp3", "video/mp4": ".mp4",
}  # fmt: skip
_TYPES_BY_EXTENSION: Final = {extension: kind for kind, extension in _EXTENSIONS.items()} | {
    ".jpeg": "image/jpeg", ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".txt": "text/plain",
    ".eml": "message/rfc822", ".rtf": "application/rtf",
}  # fmt: skip
_UNSAFE_FILENAME_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTENT_TYPE: Final = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,128}")
_DEFECT_WORDS: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(slots=True)
class _Walk:
    """What the walk found; filled while walking, read once by `parse`."""

    charset_hint: str | None = None
    raw_texts: list[str] = field(default_factory=list)  # text parts as sent, for line checks
    plain: list[str] = field(default_factory=list)
    html: list[_Leaf] = field(default_factory=list)  # decoded only when there is no plain text
    attachments: list[Attachment] = field(default_factory=list)
    tnef_bodies: list[str] = field(default_factory=list)
    attached_mails: list[Message] = field(default_factory=list)  # message/rfc822 parts, as read
    defects: list[str] = field(default_factory=list)


def _describe_defect(defect: object) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    return "MIME: " + _DEFECT_WORDS.sub(" ", name).lower()


@dataclass(frozen=True, slots=True)
class _Leaf:
    """A non-multipart part and its content type, read once."""

    part: Message
    content_type: str

    @property
    def maintype(self) -> str:
        return self.content_type.split("/", 1)[0]


def clean_content_type(value: str, default: str = "application/octet-stream") -> str:
    """A content type as a plain "type/subtype" token, or `default` when it is not one."""
    value = _UNSAFE_FILENAME_CHARACTERS.sub("", value).strip().lower()
    return value if _CONTENT_TYPE.fullmatch(value) else default


def _iter_leaves(message: Message, found: _Walk) -> Iterator[_Leaf]:
    """Non-multipart parts in document order, without recursion and within limits."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    count = 0
    while stack:
        part, depth = stack.pop()
        count += 1
        if count > MAX_PARTS:
            found.defects.append(f"more than {MAX_PARTS} MIME parts; the rest ignored")
            return
        found.defects.extend(_describe_defect(defect) for defect in part.defects)
        content_type = clean_content_type(part.get_content_type())
        children = stored_payload(part) if content_type.startswith("multipart/") else None
        if not isinstance(children, list):
            yield _Leaf(part, content_type)
        elif depth >= MAX_NESTING:
            found.defects.append(f"MIME nesting deeper than {MAX_NESTING} levels; inner parts ignored")
        else:
            stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))


def _raw_filename(part: Message) -> tuple[str, str] | None:
    """(charset, value) of the part's filename as sent; charset only for RFC 2231 values."""
    for param, header in (("filename", "content-disposition"), ("name", "content-type")):
        value = part.get_param(param, header=header)
        if isinstance(value, tuple):
            charset, _language, text = value
            return charset or "", str(text)
        if isinstance(value, str) and value.strip():
            return "", email.utils.unquote(value)
    return None


def _decode_filename(raw: tuple[str, str], hint: str | None) -> tuple[str, list[str]]:
    charset, value = raw
    if charset:
        text, defect = decode_bytes(value.encode("latin-1", "replace"), charset, hint)
        return text, [f"filename: {defect}"] if defect else []
    return decode_header_value(value, hint)


def _safe_filename(name: str) -> str:
    name = _UNSAFE_FILENAME_CHARACTERS.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "" if name in (".", "..") else name[:255]


def _part_bytes(part: Message) -> bytes:
    """The part's content with its transfer encoding undone (raw octets when it is unknown)."""
    try:
        decoded = part.get_payload(decode=True)
    except Exception:
        decoded = None
    if isinstance(decoded, bytes):
        return decoded
    payload = stored_payload(part)
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _unflow(text: str, delete_space: bool) -> str:
    """Join RFC 3676 format=flowed soft line breaks (same quote depth only)."""
    output: list[str] = []
    pending: list[str] = []
    pending_depth = -1
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:].removeprefix(" ")
        if pending and depth != pending_depth:
            output.append(">" * pending_depth + (" " if pending_depth else "") + "".join(pending))
            pending = []
        pending_depth = depth
        soft = content.endswith(" ") and content != "-- "
        pending.append(content[:-1] if soft and delete_space else content)
        if not soft:
            output.append(">" * depth + (" " if depth else "") + "".join(pending))
            pending = []
    if pending:
        output.append(">" * pending_depth + (" " if pending_depth else "") + "".join(pending))
    return "\n".join(output)


def _normalize_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


_SALVAGE_CHARSET: Final = re.compile(r"charset\s*=\s*\"?([^\s\";]+)", re.IGNORECASE)


def salvage_text(raw_body: str, hint: str | None) -> str:
    """The first text/plain section of MIME text that could not be parsed as MIME."""
    lowered = raw_body.lower()
    start = lowered.find("content-type: text/plain")
    header_end = raw_body.find("\n\n", start) if start >= 0 else -1
    if header_end < 0:
        return raw_body
    section_headers = lowered[start:header_end]
    end = raw_body.find("\n--", header_end)
    content = raw_body[header_end + 2 : end if end >= 0 else None].encode("utf-8", "surrogateescape")
    if "quoted-printable" in section_headers:
        content = binascii.a2b_qp(content)
    elif "base64" in section_headers:
        content = _decode_b(content.decode("ascii", "replace"))
    charset = _SALVAGE_CHARSET.search(section_headers)
    return decode_bytes(content, charset.group(1) if charset else None, hint)[0]


def _param(part: Message, name: str) -> str:
    value = part.get_param(name, "")
    return (value[2] if isinstance(value, tuple) else str(value)).strip().lower()


def _body_text(leaf: _Leaf, hint: str | None, found: _Walk) -> str:
    part = leaf.part
    sent = stored_payload(part)
    if isinstance(sent, str):
        found.raw_texts.append(sent)
    text, defect = decode_bytes(_part_bytes(part), part.get_content_charset(), hint)
    if defect:
        found.defects.append(defect)
    text = _normalize_newlines(text)
    if leaf.maintype == "multipart":
        return salvage_text(text, hint)
    if "flowed" in str(part.get("content-type", "")).lower() and _param(part, "format") == "flowed":
        text = _unflow(text, _param(part, "delsp") == "yes")
    return text


def make_attachment(
    filename: str,
    content_type: str,
    content: bytes,
    limit: int,
    *,
    inline: bool = False,
    content_id: str = "",
) -> Attachment:
    """An `Attachment`; over `limit` bytes the content is dropped, size and hash kept."""
    size = len(content)
    digest = hashlib.sha256(content).hexdigest()
    if size <= limit:
        return Attachment(filename, content_type, size, digest, content, inline, content_id)
    reason = f"{size} bytes, over the limit of {limit} bytes"
    return Attachment(filename, content_type, size, digest, None, inline, content_id, reason)


def _embedded_message_bytes(part: Message) -> bytes:
    inner = attached_mail(part)
    if inner is None:
        return _part_bytes(part)
    try:
        return inner.as_bytes()
    except Exception:
        return inner.as_string().encode("utf-8", "surrogateescape")


def _embedded_subject(part: Message, hint: str | None) -> str:
    inner = attached_mail(part)
    raw = inner.get("subject") if inner is not None else None
    return decode_header_value(str(raw), hint)[0] if raw else ""


def _attachment_filename(leaf: _Leaf, index: int, hint: str | None, found: _Walk) -> str:
    raw = _raw_filename(leaf.part)
    name = ""
    if raw is not None:
        decoded, defects = _decode_filename(raw, hint)
        found.defects.extend(defects)
        name = _safe_filename(decoded)
    content_type = leaf.content_type
    if not name and content_type in _MESSAGE_TYPES:
        name = _safe_filename(_embedded_subject(leaf.part, hint))[:100]
        return f"{name or 'message'}.eml"
    return name or f"attachment-{index}{_EXTENSIONS.get(content_type, '.bin')}"


def _content_id(part: Message) -> str:
    raw = part.get("content-id")
    return extract_message_id(str(raw)) if raw else ""


def _attachment(leaf: _Leaf, index: int, limit: int, hint: str | None, found: _Walk) -> Attachment:
    part, content_type = leaf.part, leaf.content_type
    embedded = content_type in _MESSAGE_TYPES
    content = _embedded_message_bytes(part) if embedded else _part_bytes(part)
    inner = attached_mail(part) if embedded else None
    if inner is not None:
        found.attached_mails.append(inner)
    content_id = _content_id(part)
    disposition = part.get_content_disposition()
    inline = bool(content_id) and disposition != "attachment" and not embedded
    filename = _attachment_filename(leaf, index, hint, found)
    return make_attachment(filename, content_type, content, limit, inline=inline, content_id=content_id)


def _is_body_part(leaf: _Leaf) -> bool:
    if leaf.maintype == "multipart":  # a multipart without usable boundary
        return True
    if leaf.content_type not in ("text/plain", "text/html"):
        return False
    return leaf.part.get_content_disposition() != "attachment" and _raw_filename(leaf.part) is None


def _is_tnef(leaf: _Leaf) -> bool:
    if leaf.content_type in _TNEF_TYPES:
        return True
    raw = _raw_filename(leaf.part)
    return raw is not None and raw[1].strip().lower() == "winmail.dat"


def _charset_hint(leaves: list[_Leaf]) -> str | None:
    """A legacy charset declared somewhere in the mail, to read undeclared 8-bit text."""
    for leaf in leaves:
        charset = leaf.part.get_content_charset() if leaf.maintype == "text" else None
        codecs_found = codecs_for_charset(charset) if charset else ()
        if codecs_found and codecs_found[0] not in ("utf-8", "ascii"):
            return charset
    return None


def _visit_leaf(leaf: _Leaf, index: int, limit: int, hint: str | None, found: _Walk) -> None:
    if leaf.content_type in _REPORT_TYPES:
        return
    if _is_body_part(leaf):
        if leaf.content_type == "text/html":
            found.html.append(leaf)
        else:
            found.plain.append(_body_text(leaf, hint, found))
    elif _is_tnef(leaf):
        _visit_tnef(leaf, index, limit, hint, found)
    else:
        found.attachments.append(_attachment(leaf, index, limit, hint, found))


def walk_message(message: Message, limit: int) -> _Walk:
    """Bodies and attachments; `charset_hint` is for 8-bit text that declares no charset."""
    found = _Walk()
    leaves = list(_iter_leaves(message, found))
    found.charset_hint = hint = _charset_hint(leaves)
    for index, leaf in enumerate(leaves, start=1):
        _visit_leaf(leaf, index, limit, hint, found)
    return found


# ---------------------------------------------------------------------------
# TNEF (winmail.dat): the files inside become attachments, when tnefparse can read them
# ---------------------------------------------------------------------------


def _tnef_text(value: object) -> str:
    if isinstance(value, bytes):
        return decode_bytes(value.rstrip(b"\x00"), None)[0]
    return clean_text(str(value)).rstrip("\x00") if value else ""


def _tnef_files(data: bytes) -> tuple[list[tuple[str, bytes]], str]:
    """(filename, bytes) of each file inside a TNEF blob, and its plain body; raises on junk."""
    from tnefparse import TNEF

    tnef = TNEF(data, do_checksum=False)
    files: list[tuple[str, bytes]] = []
    for item in tnef.attachments:
        content = item.data
        if isinstance(content, bytes):
            files.append((_tnef_text(item.long_filename()), content))
    return files, _tnef_text(tnef.body)


def _guess_type(filename: str) -> str:
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _TYPES_BY_EXTENSION.get(extension, "application/octet-stream")


def _visit_tnef(leaf: _Leaf, index: int, limit: int, hint: str | None, found: _Walk) -> None:
    data = _part_bytes(leaf.part)
    try:
        files, body = _tnef_files(data)
    except Exception as error:
        found.defects.append(f"winmail.dat could not be opened ({type(error).__name__}); kept as is")
        files, body = [], ""
    if not files and not body:
        found.attachments.append(_attachment(leaf, index, limit, hint, found))
        return
    for number, (name, content) in enumerate(files, start=1):
        filename = _safe_filename(name) or f"attachment-{index}-{number}.bin"
        found.attachments.append(make_attachment(filename, _guess_type(filename), content, limit))
    if body.strip():
        found.tnef_bodies.append(_normalize_newlines(body))


# ---------------------------------------------------------------------------
# Headers of the top-level message
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Headers:
    raw: dict[str, list[str]]  # lower-case name → raw values, in order
    decoded: tuple[tuple[str, str], ...]
    defects: tuple[str, ...]

    def first_raw(self, name: str) -> str | None:
        values = self.raw.get(name)
        return values[0] if values else None


def _header_name(name: str) -> str:
    if not name.isascii():
        name = name.encode("ascii", "replace").decode("ascii")
    return clean_text(name).strip().lower()


def read_headers(message: Message, hint: str | None) -> _Headers:
    raw: dict[str, list[str]] = {}
    decoded: list[tuple[str, str]] = []
    defects: list[str] = []
    for name, value in message.raw_items():
        key, text = _header_name(name), str(value)
        raw.setdefault(key, []).append(text)
        if len(text) > MAX_HEADER_CHARS:
            defects.append(f"header {key[:40]} longer than {MAX_HEADER_CHARS} characters; cut")
            text = text[:MAX_HEADER_CHARS]
        value_text, value_defects = decode_header_value(text, hint)
        decoded.append((key, value_text))
        if value_defects:
            defects.extend(f"{key[:40]}: {defect}" for defect in value_defects)
    return _Headers(raw, tuple(decoded), tuple(defects))


_SENDER_FALLBACKS: Final = ("sender", "reply-to")


def _sender(headers: _Headers, hint: str | None) -> tuple[Address, list[str]]:
    raw_from = headers.first_raw("from")
    found = parse_addresses(raw_from, hint) if raw_from else ()
    if found:
        return found[0], []
    if raw_from and raw_from.strip():
        name, _ = decode_header_value(raw_from, hint)
        return Address("", name.strip("\"' ")), ["From has no address"]
    for name in _SENDER_FALLBACKS:
        raw = headers.first_raw(name)
        fallback = parse_addresses(raw, hint) if raw else ()
        if fallback:
            return fallback[0], [f"no usable From; sender taken from {name}"]
    return Address(""), ["no usable From and no other sender header"]


def _addresses(headers: _Headers, name: str, hint: str | None) -> tuple[Address, ...]:
    found: list[Address] = []
    for raw in headers.raw.get(name, []):
        found.extend(address for address in parse_addresses(raw, hint) if address not in found)
    return tuple(found)


def _ids(headers: _Headers, name: str) -> tuple[str, ...]:
    found: list[str] = []
    for raw in headers.raw.get(name, []):
        found.extend(extract_message_ids(raw))
    return tuple(dict.fromkeys(found))


def _message_id(headers: _Headers, raw: bytes) -> tuple[str, bool, list[str]]:
    value = headers.first_raw("message-id")
    found = extract_message_id(value)
    if found:
        return found, False, []
    why = "Message-ID missing" if value is None else "Message-ID unreadable"
    return generated_message_id(raw), True, [f"{why}; generated from the raw bytes"]


def _date(headers: _Headers, received_at: datetime) -> tuple[datetime, list[str]]:
    value = headers.first_raw("date")
    found = library_date(value) or parse_date(value)
    if found is not None:
        return as_utc(found), []
    why = "Date missing" if value is None else f"Date unreadable ({unfold(value)[:60]!r})"
    return received_at, [f"{why}; received time used"]


# ---------------------------------------------------------------------------
# parse
# ---------------------------------------------------------------------------


_SINGLETON_HEADERS: Final = (
    "from", "sender", "reply-to", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
    "content-type", "content-transfer-encoding", "mime-version",
)  # fmt: skip
_OVERLONG_LINE: Final = re.compile(r"^[^\r\n]{999}", re.MULTILINE)
_PARAMETER_CONTINUATION: Final = re.compile(r"[ \t]+[A-Za-z*0-9-]{1,40}\s*=\s*\S")
_BLANK_CONTINUATION: Final = re.compile(r"\n[ \t]+\r?\n")


def _line_defects(raw: bytes) -> list[str]:
    """Line-level damage of the raw bytes; counting only, no scan in Python."""
    defects = []
    crlf, lf, cr = raw.count(b"\r\n"), raw.count(b"\n"), raw.count(b"\r")
    if cr > crlf:
        defects.append("bare CR line breaks")
    if 0 < crlf < lf:
        defects.append("mixed CRLF and LF line endings")
    if b"\x00" in raw:
        defects.append("NUL bytes (removed from the text)")
    if raw.startswith(b"From ") and not _SPACED_NAME.match(raw):
        defects.append("mbox 'From ' line before the headers")
    return defects


def _header_defects(headers: _Headers) -> list[str]:
    defects = [f"{len(headers.raw[name])} {name} headers; the first is used"
               for name in _SINGLETON_HEADERS if len(headers.raw.get(name, ())) > 1]  # fmt: skip
    for name, values in headers.raw.items():
        if any(_OVERLONG_LINE.search(value) for value in values):
            defects.append(f"{name[:40]} header line longer than 998 characters")
        if any(_BLANK_CONTINUATION.search(value) for value in values):
            defects.append(f"whitespace-only continuation line in {name[:40]} header")
    return defects


def _structure_defects(message: Message, found: _Walk) -> list[str]:
    defects = []
    payload = stored_payload(message)
    if isinstance(payload, str) and _PARAMETER_CONTINUATION.match(payload):
        defects.append("body starts with a folded header line (blank line inside a header?)")
    if any(_OVERLONG_LINE.search(text) for text in found.raw_texts):
        defects.append("text line longer than 998 characters")
    return defects


def _choose_body(found: _Walk) -> str:
    plain = [text for text in found.plain if text.strip()]
    if plain:
        return "\n\n".join(plain)
    html = [text for text in (_body_text(part, found.charset_hint, found) for part in found.html) if text.strip()]
    if html:
        if sum(len(text) for text in html) > MAX_HTML_CHARS:
            found.defects.append(f"HTML over {MAX_HTML_CHARS} characters; converted in part")
        return "\n\n".join(html_to_text(text[:MAX_HTML_CHARS]) for text in html)
    return "\n\n".join(found.tnef_bodies)


def _attached_mail_text(found: _Walk, limit: int) -> str:
    """A mail with no text of its own but an attached mail (forwarded as an attachment with
    nothing written, or sent as message/rfc822 itself): the attached mail's text, so the
    ticket shows what was sent. It stays an attachment too; attached mails inside it are not
    looked into."""
    return next((text for inner in found.attached_mails if (text := _choose_body(walk_message(inner, limit)))), "")


def _unique(defects: Iterable[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(clean_text(defect) for defect in defects))
    if len(unique) > MAX_DEFECTS:
        return (*unique[:MAX_DEFECTS], f"{len(unique) - MAX_DEFECTS} more defects not listed")
    return unique


@dataclass(frozen=True, slots=True)
class _Options:
    received_at: datetime
    max_attachment_bytes: int
    reply_languages: tuple[str, ...]


def _parse_mail(raw: bytes, options: _Options) -> InboundMail:
    read = read_message(raw)
    message = read.message
    found = walk_message(message, options.max_attachment_bytes)
    hint = found.charset_hint
    headers = read_headers(message, hint)
    sender, sender_defects = _sender(headers, hint)
    message_id, id_generated, id_defects = _message_id(headers, raw)
    date, date_defects = _date(headers, options.received_at)
    subject = next((value for key, value in headers.decoded if key == "subject"), "")
    own_text = _choose_body(found)
    body_text = own_text or _attached_mail_text(found, options.max_attachment_bytes)
    reply = split_reply(body_text, languages=options.reply_languages)
    return_path = extract_return_path(headers.first_raw("return-path"))
    report = read_delivery_report(
        message,
        subject=subject,
        sender_email=sender.email,
        null_sender=return_path == "",
        body_text=own_text,
    )
    defects = (
        *read.defects, *_line_defects(raw), *found.defects, *_structure_defects(message, found), *headers.defects,
        *_header_defects(headers), *sender_defects, *id_defects, *date_defects,
    )  # fmt: skip
    return InboundMail(
        message_id=message_id,
        subject=subject,
        sender=sender,
        to=_addresses(headers, "to", hint),
        cc=_addresses(headers, "cc", hint),
        reply_to=_addresses(headers, "reply-to", hint),
        date=date,
        in_reply_to=_ids(headers, "in-reply-to"),
        references=_ids(headers, "references"),
        headers=headers.decoded,
        body_text=body_text,
        new_text=reply.new_text,
        quoted_text=reply.quoted_text,
        signature=reply.signature,
        attachments=tuple(found.attachments),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        raw_size=len(raw),
        language=extract_language(headers.first_raw("content-language")),
        return_path=return_path,
        message_id_generated=id_generated,
        date_generated=bool(date_defects),
        content_type=clean_content_type(message.get_content_type(), "text/plain"),
        delivery_report=report,
        defects=_unique(defects),
    )


_MINIMAL_HEADER: Final = re.compile(rb"^([!-9;-~]{1,76}):[ \t]*(.*(?:\r?\n[ \t].*)*)", re.MULTILINE)


def _minimal_mail(raw: bytes, received_at: datetime, why: str) -> InboundMail:
    """The last resort: a plain split of header and body, with no MIME reading at all."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    headers = tuple(
        (match.group(1).decode("ascii").lower(), _minimal_value(match.group(2)))
        for match in _MINIMAL_HEADER.finditer(head[:MAX_HEADER_CHARS])
    )
    values = dict(reversed(headers))
    body_text = clean_text(body.decode("utf-8", "replace"))
    sender = Address(_minimal_email(values.get("from", "")))
    return InboundMail(
        message_id=generated_message_id(raw), subject=values.get("subject", ""), sender=sender,
        to=(), cc=(), reply_to=(), date=received_at, in_reply_to=(), references=(), headers=headers,
        body_text=body_text, new_text=body_text, quoted_text="", signature="", attachments=(),
        raw_sha256=hashlib.sha256(raw).hexdigest(), raw_size=len(raw), message_id_generated=True,
        date_generated=True, defects=(why, "read as plain header and body; MIME structure ignored"),
    )  # fmt: skip


def _minimal_value(value: bytes) -> str:
    return clean_text(unfold(value.decode("utf-8", "replace")))


def _minimal_email(value: str) -> str:
    match = _EMAIL_LIKE.search(value)
    return match.group(0).strip("<>").lower() if match else ""


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, bytearray | memoryview):
        return bytes(raw)
    return str(raw).encode("utf-8", "surrogateescape")


def parse(
    raw: bytes,
    *,
    received_at: datetime,
    max_attachment_bytes: int = 25 * 1024 * 1024,
    reply_languages: tuple[str, ...] = (),
) -> InboundMail:
    """Read one mail. Never raises: whatever is broken is repaired and listed in `defects`.

    `received_at` stands in for a missing or unreadable Date. Attachments over
    `max_attachment_bytes` keep their size and hash but not their content.
    `reply_languages` narrows the quote attributions looked for (empty: all known).
    """
    data = _as_bytes(raw)
    received = as_utc(received_at)
    options = _Options(received, max_attachment_bytes, tuple(reply_languages))
    try:
        return _parse_mail(data, options)
    except Exception as error:
        why = f"parser error ({type(error).__name__})"
    try:
        return _minimal_mail(data, received, why)
    except Exception as error:
        empty = _minimal_mail(b"", received, f"{why}; then ({type(error).__name__})")
        return _with_raw_identity(empty, data)


def _with_raw_identity(mail: InboundMail, raw: bytes) -> InboundMail:
    digest = hashlib.sha256(raw).hexdigest()
    return replace(mail, message_id=generated_message_id(raw), raw_sha256=digest, raw_size=len(raw))
