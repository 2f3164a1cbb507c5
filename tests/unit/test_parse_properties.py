"""Property tests: random MIME trees, broken headers and junk bytes never make `parse` raise.

Deterministic (derandomize, no example database) so CI sees the same examples every run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import quopri
from dataclasses import fields
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.core.parse import parse
from daemon.core.reply import split_reply
from daemon.core.values import Address, Attachment, DeliveryReport, InboundMail

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHARSETS = ["utf-8", "utf8mb4", "iso-8859-1", "windows-1251", "koi8-r", "gb2312", "shift_jis", "iso-2022-jp",
            "ks_c_5601-1987", "utf-16", "utf-7", "x-unknown", "bogus", "", "us-ascii", "iso-8859-8-i", "base64",
            "unicode-1-1-utf-7", "x-mac-cyrillic", "windows-874", "idna", "undefined"]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", "garbage", ""]
TYPES = ["text/plain", "text/html", "image/png", "application/pdf", "application/ms-tnef", "message/rfc822",
         "message/delivery-status", "text/rfc822-headers", "application/octet-stream", "text", "bogus/"]  # fmt: skip
HEADER_NAMES = ["Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "In-Reply-To", "References",
                "Content-Language", "Return-Path", "Sender", "X-Junk", "Content-Type"]  # fmt: skip

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
junk = st.binary(max_size=120)


@st.composite
def encoded_words(draw: st.DrawFn) -> bytes:
    charset = draw(st.sampled_from(CHARSETS))
    text = draw(texts)
    try:
        data = text.encode(charset or "ascii")
    except (LookupError, UnicodeError):
        data = draw(junk)
    if draw(st.booleans()):
        payload = base64.b64encode(data)[: draw(st.integers(0, 200))]
        return b"=?" + charset.encode() + b"?B?" + payload + b"?="
    return b"=?" + charset.encode() + b"?Q?" + binascii.b2a_qp(data, header=True).replace(b"?", b"=3F") + b"?="


header_values = st.one_of(
    texts.map(lambda text: text.encode("utf-8")),
    junk.map(lambda data: data.replace(b"\r", b"").replace(b"\n", b" ")),
    st.lists(encoded_words(), max_size=4).map(b" ".join),
    st.sampled_from([b"<a@b> junk <c@d>", b"<>", b"Mon, 99 Foo 2026 25:61:00 +9999", b"undisclosed-recipients:;",
                     b'"Doe, J" <J@X>', b"=?utf-8?B?", b"de-DE, en", b"multipart/mixed", b"text/plain; charset=\"\""]),
)  # fmt: skip
header_lines = st.builds(lambda name, value: name + b": " + value, st.sampled_from(HEADER_NAMES).map(str.encode),
                         header_values)  # fmt: skip


def encode_body(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data)
    if encoding == "quoted-printable":
        return quopri.encodestring(data)
    return data


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    content_type = draw(st.sampled_from(TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    encoding = draw(st.sampled_from(ENCODINGS))
    text = draw(texts)
    try:
        data = text.encode(charset) if charset and draw(st.booleans()) else draw(junk)
    except (LookupError, UnicodeError):
        data = draw(junk)
    extra = draw(st.sampled_from([b"", b"Content-Disposition: attachment; filename*=utf-8''%D0%B0.txt\r\n",
                                  b"Content-Disposition: inline\r\nContent-ID: <x@y>\r\n",
                                  b'Content-Disposition: attachment; filename="=?utf-8?B?0LA=?="\r\n',
                                  b"Content-Type: text/plain; format=flowed; delsp=yes\r\n"]))  # fmt: skip
    head = f"Content-Type: {content_type}; charset={charset}\r\nContent-Transfer-Encoding: {encoding}\r\n".encode()
    return head + extra + b"\r\n" + encode_body(data, encoding)


def render_multipart(subtype: str, boundary: str, children: list[bytes]) -> bytes:
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
    return head + body + b"--" + boundary.encode() + b"--\r\n"


mime_trees = st.recursive(
    leaves(),
    lambda children: st.builds(
        render_multipart,
        st.sampled_from(["mixed", "alternative", "related", "report; report-type=delivery-status", "signed"]),
        st.sampled_from(["b1", "b2", "=_x", "same", ""]),
        st.lists(children, min_size=0, max_size=4),
    ),
    max_leaves=8,
)


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    headers = b"\r\n".join(draw(st.lists(header_lines, max_size=8)))
    raw = headers + b"\r\nMIME-Version: 1.0\r\n" + draw(mime_trees)
    cut = draw(st.one_of(st.none(), st.integers(0, len(raw))))
    raw = raw if cut is None else raw[:cut]
    if draw(st.booleans()):
        position = draw(st.integers(0, len(raw)))
        raw = raw[:position] + draw(junk) + raw[position:]
    return raw


def assert_clean(text: str) -> None:
    assert isinstance(text, str) and "\x00" not in text
    text.encode("utf-8")


def assert_well_typed(mail: InboundMail, raw: bytes) -> None:
    assert isinstance(mail, InboundMail)
    assert not any(defect.startswith("parser error") for defect in mail.defects), mail.defects
    assert mail.raw_size == len(raw) and mail.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert mail.message_id and isinstance(mail.message_id, str)
    assert mail.date.tzinfo is not None and mail.date.utcoffset() == timedelta(0)
    for name in ("subject", "body_text", "new_text", "quoted_text", "signature", "language", "content_type"):
        assert_clean(getattr(mail, name))
    for address in (mail.sender, *mail.to, *mail.cc, *mail.reply_to):
        assert isinstance(address, Address)
        assert_clean(address.email)
        assert_clean(address.name)
    for key, value in mail.headers:
        assert_clean(key)
        assert_clean(value)
    for identifier in (*mail.in_reply_to, *mail.references, *mail.defects):
        assert_clean(identifier)
    for attachment in mail.attachments:
        assert_attachment(attachment)
    assert mail.return_path is None or isinstance(mail.return_path, str)
    assert mail.delivery_report is None or isinstance(mail.delivery_report, DeliveryReport)
    assert {field.name for field in fields(mail)} >= {"defects", "attachments"}


def assert_attachment(attachment: Attachment) -> None:
    assert isinstance(attachment, Attachment) and attachment.size >= 0 and len(attachment.sha256) == 64
    assert_clean(attachment.filename)
    assert_clean(attachment.content_type)
    if attachment.content is not None:
        assert len(attachment.content) == attachment.size
        assert hashlib.sha256(attachment.content).hexdigest() == attachment.sha256
    else:
        assert attachment.omitted_reason


@SETTINGS
@given(mails(), st.integers(0, 2000))
def test_random_mime_trees_never_raise(raw: bytes, limit: int) -> None:
    assert_well_typed(parse(raw, received_at=NOW, max_attachment_bytes=limit), raw)


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert_well_typed(parse(raw, received_at=NOW), raw)


@SETTINGS
@given(st.lists(header_lines, max_size=12), st.binary(max_size=300))
def test_random_headers_never_raise(lines: list[bytes], body: bytes) -> None:
    raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
    assert_well_typed(parse(raw, received_at=NOW), raw)


@SETTINGS
@given(st.text(max_size=400))
def test_split_reply_keeps_every_line_somewhere(text: str) -> None:
    parts = split_reply(text)
    lines = [line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    kept = "\n".join((parts.new_text, parts.quoted_text, parts.signature))
    for line in lines:
        if line and line not in ("--",):
            assert line in kept
