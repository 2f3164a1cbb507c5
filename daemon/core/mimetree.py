"""Reading a well-formed mail's MIME structure in a few scans instead of line by line.

The stdlib's feed parser (compat32, what `email.message_from_bytes` runs) reads a mail a
line at a time in Python: a mail with a 100 KB attachment is two thousand turns of its
loop, most of intake's parsing time. `read_tree` builds the very same `Message` tree (the
same header list, payload strings, preambles and epilogues) with regular expressions
and `str.find` over the whole text, for the mail that real clients send: header fields,
a blank line, bodies, multiparts with their start and close boundaries.

Anything else returns None and the caller runs the stdlib reader, which has the rules for
damaged and unusual mail: a header block that does not end in a blank line, an mbox
"From " line, bare CR line breaks, a multipart without a boundary or without its close
boundary, two boundary lines in a row, message/* parts (attached mails and delivery
reports), multipart/digest, or nesting deeper than MAX_DEPTH. A test compares both readers
on every mail of the corpus and on generated trees: where this one answers, the trees are
equal.
"""

from __future__ import annotations

import re
from email.message import Message
from itertools import pairwise
from typing import Final

MAX_DEPTH: Final = 12  # real mail nests 3-5 deep; each level scans its part once more, so deeper goes to the stdlib
_FIELD: Final = re.compile(r"([!-9;-~]+):([^\n]*\n(?:[ \t][^\n]*\n)*)")  # a field and its continuation lines
_BLANK_LINE: Final = re.compile(r"\r?\n")
_BARE_CR: Final = re.compile(r"\r(?!\n)")
_MULTIPART_ENCODINGS: Final = ("7bit", "8bit", "binary")


def read_tree(raw: bytes) -> Message | None:
    """The tree `email.message_from_bytes(raw)` would give, or None where only it can say."""
    text = raw.decode("ascii", "surrogateescape")  # as the stdlib's bytes parser reads it
    if _BARE_CR.search(text):  # the stdlib breaks lines at a lone CR as well
        return None
    return _entity(text, 0, len(text), 0)


def _entity(text: str, start: int, end: int, depth: int) -> Message | None:
    """The entity in text[start:end]: its header fields, then a blank line, then its body.
    Inside a multipart (depth > 0), the line break before the next boundary line belongs to
    that line (RFC 2046), not to the body or the epilogue (an empty epilogue there is None)."""
    if depth > MAX_DEPTH:
        return None
    message = Message()
    position = start
    field = _FIELD.match(text, position, end)
    while field is not None:
        message.set_raw(field.group(1), field.group(2).lstrip(" \t").rstrip("\r\n"))
        position = field.end()
        field = _FIELD.match(text, position, end)
    blank = _BLANK_LINE.match(text, position, end)
    if blank is None:
        return None
    maintype = message.get_content_maintype()
    if maintype == "message":
        return None
    if maintype == "multipart":
        return _multipart(message, text, blank.end(), end, depth)
    body = text[blank.end():end]
    message.set_payload(_without_last_line_break(body) if depth else body)
    return message


def _multipart(message: Message, text: str, body: int, end: int, depth: int) -> Message | None:
    boundary = message.get_boundary()
    if boundary is None or message.get_content_subtype() == "digest":
        return None
    if str(message.get("content-transfer-encoding", "8bit")).lower() not in _MULTIPART_ENCODINGS:
        return None
    lines = boundary_lines(text, "--" + boundary, body, end)
    if len(lines) < 2 or lines[0][2] or not lines[-1][2] or any(closing for _, _, closing in lines[:-1]):
        return None  # no start boundary, no close boundary, or something after the close
    if lines[0][0] > body:
        message.preamble = _without_last_line_break(text[body:lines[0][0]])
    for (_, part_start, _), (part_end, _, _) in pairwise(lines):
        if part_start == part_end:
            return None  # two boundary lines in a row: the stdlib reads them as one
        part = _entity(text, part_start, part_end, depth + 1)
        if part is None:
            return None
        message.attach(part)
    epilogue = text[lines[-1][1]:end]
    message.epilogue = (None if epilogue == "" else _without_last_line_break(epilogue)) if depth else epilogue
    return message


def boundary_lines(text: str, delimiter: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Each line of text[start:end] that is the delimiter, or the delimiter and "--" (the
    close), followed by nothing but spaces and tabs: (where it starts, where the next line
    starts, whether it is the close)."""
    found: list[tuple[int, int, bool]] = []
    at = text.find(delimiter, start, end)
    while at >= 0:
        if at == start or text[at - 1] == "\n":
            line = _boundary_line(text, at + len(delimiter), end)
            if line is not None:
                found.append((at, *line))
        at = text.find(delimiter, at + 1, end)
    return found


def _boundary_line(text: str, after: int, end: int) -> tuple[int, bool] | None:
    """Where the line ends if only "--" and blanks follow the delimiter, and whether "--" did."""
    closing = text.startswith("--", after, end)
    at = after + 2 if closing else after
    while at < end and text[at] in " \t":
        at += 1
    if at == end:
        return end, closing
    if text[at] == "\n":
        return at + 1, closing
    if text.startswith("\r\n", at, end):
        return at + 2, closing
    return None


def _without_last_line_break(value: str) -> str:
    if value.endswith("\r\n"):
        return value[:-2]
    return value[:-1] if value.endswith("\n") else value


def attached_mail(part: Message) -> Message | None:
    """The mail inside a message/* part (an attached or forwarded mail), as read; None if there is none."""
    inner = stored_payload(part)
    return inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], Message) else None


def stored_payload(part: Message) -> str | list[Message] | None:
    """A part's payload as read: its child parts, or its body undecoded. `get_payload()`
    would decode a body holding 8-bit bytes with the part's charset, and some codecs raise
    on that (charset=idna: "Unsupported error handling replace")."""
    payload = vars(part).get("_payload")
    return payload if isinstance(payload, str | list) else None
