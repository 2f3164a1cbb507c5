"""Writing outgoing mail: headers, bodies and multiparts as bytes, by hand.

Postdesk's mails have a fixed, simple shape (text, maybe HTML, maybe attachments), so a
small writer beats the stdlib generator by an order of magnitude and keeps full control:
- non-ASCII header text becomes RFC 2047 encoded-words ("B"), each at most 75 characters,
  split only between characters; the space between words is inside the encoded text, so
  no decoder can lose it (the stdlib folder can: "до системи" -> "досистеми");
- ASCII header text is folded at spaces to stay under 78 characters a line;
- text bodies are 7bit when they can be, else quoted-printable (binascii, CRLF lines);
- boundaries are derived from the Message-ID, so the same mail is the same bytes.
Header values never contain CR or LF: callers pass single-line text, and any control
character left is replaced by a space here (no header can be injected).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from urllib.parse import quote

from daemon.core.values import Address, Attachment

MAX_LINE = 78
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ATEXT_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ .]*$")


def clean(value: str) -> str:
    """One line of header text: control characters (CR, LF, NUL, TAB...) become spaces."""
    return _CONTROL.sub(" ", value).strip()


def encoded_words(text: str, room: int = 75) -> list[str]:
    """`=?utf-8?b?...?=` words of at most `room` characters, split between characters."""
    words: list[str] = []
    chunk = ""
    for char in text:
        candidate = chunk + char
        if len(candidate.encode("utf-8")) > (room - 12) // 4 * 3:  # 12 = len("=?utf-8?b??=")
            words.append(_b_word(chunk))
            chunk = char
        else:
            chunk = candidate
    if chunk or not words:
        words.append(_b_word(chunk))
    return words


def _b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def unstructured(name: str, value: str) -> str:
    """A complete header line (with CRLF) for free text such as Subject."""
    value = clean(value)
    if value.isascii():
        return fold(name, value.split(" "))
    return fold(name, encoded_words(value))


def fold(name: str, words: Sequence[str]) -> str:
    """`Name: w1 w2 ...`, wrapped before a word that would pass MAX_LINE characters."""
    lines: list[str] = []
    line = f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > MAX_LINE and line.strip() not in (f"{name}:", ""):
            lines.append(line)
            line = ""
        line = f"{line} {word}"
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def address(value: Address) -> str:
    """`"Name" <a@b>` with the name quoted or encoded as needed."""
    name, email = clean(value.name), mailbox(value.email)
    if not name:
        return email
    if not name.isascii():
        return " ".join(encoded_words(name)) + f" <{email}>"
    if _ATEXT_PHRASE.match(name) and "." not in name:
        return f"{name} <{email}>"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{email}>'


def mailbox(email: str) -> str:
    """An address as it is written in a header and an SMTP envelope: ASCII where it can be.
    An internationalised domain becomes its ASCII form (IDNA: mächine.example ->
    xn--mchine-fua.example), which every server takes; a local part in another script
    (RFC 6531/6532: jdöe@...) stays UTF-8, and the mail then needs a server offering
    SMTPUTF8 (see `needs_smtputf8`)."""
    email = clean(email)
    if email.isascii():
        return email
    local, at, domain = email.rpartition("@")
    if not at or domain.isascii():
        return email
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid IDN label: left as written, sent with SMTPUTF8
        return email
    return f"{local}@{domain}"


def needs_smtputf8(envelope_from: str, recipients: Sequence[str], raw: bytes) -> bool:
    """A mail whose envelope or header carries UTF-8 addresses (RFC 6531/6532)."""
    if not (envelope_from.isascii() and all(r.isascii() for r in recipients)):
        return True
    end = raw.find(b"\r\n\r\n")
    return not raw[: end if end >= 0 else len(raw)].isascii()  # the header only, not a copy of the body


def address_list(name: str, values: Sequence[Address]) -> str:
    items = [address(v) for v in values]
    return fold(name, [f"{item}," for item in items[:-1]] + items[-1:]) if items else ""


def text_part(text: str, subtype: str) -> tuple[str, bytes]:
    """(the part's Content-* header lines, its encoded body)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii() and all(len(line) <= 76 for line in text.split("\n")):
        body = text.replace("\n", "\r\n").encode("ascii")
        encoding = "7bit"
    else:
        body = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
        encoding = "quoted-printable"
    head = (f"Content-Type: text/{subtype}; charset=\"utf-8\"\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n")
    return head, body


def attachment_part(attachment: Attachment) -> tuple[str, bytes]:
    content_type = attachment.content_type if re.fullmatch(r"[\w.+-]+/[\w.+-]+", attachment.content_type) \
        else "application/octet-stream"
    head = f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n" \
           f"Content-Disposition: attachment{filename_parameter(attachment.filename)}\r\n"
    data = attachment.content or b""
    lines = [binascii.b2a_base64(data[i:i + 57], newline=False) for i in range(0, len(data), 57)]
    return head, b"\r\n".join(lines) + b"\r\n"


def filename_parameter(filename: str) -> str:
    name = clean(filename)
    if not name:
        return ""
    if name.isascii():
        return '; filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "; filename*=utf-8''" + quote(name, safe="")  # RFC 2231


def boundary(seed: str, depth: int) -> str:
    return f"=_pd{depth}_" + hashlib.sha256(f"{seed}|{depth}".encode()).hexdigest()[:24]


def multipart(subtype: str, parts: Sequence[tuple[str, bytes]], seed: str, depth: int) -> tuple[str, bytes]:
    mark = boundary(seed, depth)
    delimiter = b"--" + mark.encode("ascii")
    # the CRLF before a delimiter belongs to the delimiter (RFC 2046), not to the part
    body = b"".join(delimiter + b"\r\n" + head.encode("ascii") + b"\r\n" + payload + b"\r\n"
                    for head, payload in parts)
    body += delimiter + b"--\r\n"
    return f'Content-Type: multipart/{subtype}; boundary="{mark}"\r\n', body


def body(text: str, html: str | None, attachments: Sequence[Attachment], seed: str) -> tuple[str, bytes]:
    """The mail's body: text, or text + HTML alternatives, then the attachments, if any."""
    part = text_part(text, "plain")
    if html is not None:
        part = multipart("alternative", [part, text_part(html, "html")], seed, 1)
    kept = [a for a in attachments if a.content is not None]
    if kept:
        part = multipart("mixed", [part, *(attachment_part(a) for a in kept)], seed, 0)
    return part
