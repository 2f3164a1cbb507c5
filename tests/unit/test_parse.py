"""parse(): raw bytes → InboundMail, one table per concern, with small inline mails."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

import daemon.core.parse as parse_module
from daemon.core.decoding import GENERATED_ID_DOMAIN, decode_bytes
from daemon.core.htmltext import html_to_text
from daemon.core.parse import parse
from daemon.core.values import InboundMail

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def mail(headers: str | bytes = b"", body: str | bytes = b"hello\r\n", *, defaults: bool = True) -> bytes:
    """A mail: the given header lines (\\n-separated), sensible defaults, then the body."""
    head = headers.encode("utf-8") if isinstance(headers, str) else headers
    if defaults:
        present = head.lower()
        for line in (b"From: Olena <olena@customer.example>", b"To: help@example.com",
                     b"Subject: test", b"Message-ID: <m1@customer.example>",
                     b"Date: Mon, 23 Nov 2026 09:15:00 +0100"):  # fmt: skip
            if line.split(b":")[0].lower() + b":" not in present:
                head += (b"\n" if head else b"") + line
    data = body.encode("utf-8") if isinstance(body, str) else body
    return head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n\r\n" + data


def parsed(raw: bytes, **options: Any) -> InboundMail:
    return parse(raw, received_at=NOW, **options)


def multipart(subtype: str, *parts: bytes, headers: str = "") -> bytes:
    body = b"".join(b"--BOUNDARY\r\n" + part + b"\r\n" for part in parts) + b"--BOUNDARY--\r\n"
    return mail(f'{headers}\nMIME-Version: 1.0\nContent-Type: multipart/{subtype}; boundary="BOUNDARY"'.strip(), body)


def part(headers: str, body: bytes | str) -> bytes:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return headers.replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n" + data


# --- subjects: RFC 2047, raw 8-bit, broken charsets ----------------------------------------

SUBJECTS = [
    ("plain", b"Subject: Printer broken", "Printer broken"),
    ("folded", b"Subject: Printer\r\n broken\r\n\tagain", "Printer broken again"),
    ("encoded word", b"Subject: =?utf-8?q?caf=C3=A9?=", "café"),
    ("adjacent words join", b"Subject: =?utf-8?q?Hello?= =?utf-8?q?_World?=", "Hello World"),
    ("folded words join", b"Subject: =?utf-8?B?0J/RgNC4?=\r\n =?utf-8?B?0LLQtdGC?=", "Привет"),
    ("text between words kept", b"Subject: Re: =?utf-8?q?caf=C3=A9?= now", "Re: café now"),
    ("mixed charsets", b"Subject: =?koi8-r?B?8NLJ18XU?= =?iso-8859-1?q?caf=E9?=", "Приветcafé"),
    ("character split across words", b"Subject: =?utf-8?B?0J/R?= =?utf-8?B?gNC4?=", "При"),
    ("lower-case b and q", b"Subject: =?UTF-8?b?0J/RgNC4?= =?utf-8?Q?x?=", "Приx"),
    ("language in charset", b"Subject: =?utf-8*en?q?Hi?=", "Hi"),
    ("missing base64 padding", b"Subject: =?utf-8?B?SGVsbG8?=", "Hello"),
    ("unknown charset, utf-8 bytes", b"Subject: =?x-unknown?q?caf=C3=A9?=", "café"),
    ("utf8mb4 label", b"Subject: =?utf8mb4?q?caf=C3=A9?=", "café"),
    ("gb2312 label, gbk text", b"Subject: =?gb2312?B?" + base64.b64encode("朱镕基".encode("gbk")) + b"?=", "朱镕基"),
    ("ks_c_5601-1987", b"Subject: =?ks_c_5601-1987?B?" + base64.b64encode("안녕하세요".encode("cp949")) + b"?=",
     "안녕하세요"),
    ("iso-2022-jp", b"Subject: =?ISO-2022-JP?B?" + base64.b64encode("請求書".encode("iso2022_jp")) + b"?=", "請求書"),
    ("bogus charset, cp1251 bytes", b"Subject: =?foo-bar?B?" + base64.b64encode("Привет".encode("cp1251")) + b"?=",
     "Привет"),
    ("raw utf-8 (RFC 6532)", "Subject: Принтер не печатает".encode(), "Принтер не печатает"),
    ("raw cp1251", "Subject: Принтер не печатает".encode("cp1251"), "Принтер не печатает"),
    ("raw koi8-r", "Subject: Принтер не печатает".encode("koi8-r"), "Принтер не печатает"),
    ("raw cp1252", "Subject: Café crème".encode("cp1252"), "Café crème"),
    ("NUL removed", b"Subject: a\x00b", "ab"),
    ("broken encoded word left as is", b"Subject: =?utf-8?x?abc?=", "=?utf-8?x?abc?="),
    ("raw 8-bit inside a Q word", b"Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xf6sche?=",
     "Die Hasen und die Frösche"),
    ("raw utf-8 beside a word", "Subject: Frösche =?iso-8859-1?Q?und_Fr=F6sche?=".encode(), "Frösche und Frösche"),
]  # fmt: skip


@pytest.mark.parametrize(("header", "expected"), [case[1:] for case in SUBJECTS], ids=[c[0] for c in SUBJECTS])
def test_subject_decoding(header: bytes, expected: str) -> None:
    assert parsed(mail(header)).subject == expected


def test_raw_legacy_header_uses_the_body_charset_as_hint() -> None:
    raw = mail("Subject: Ошибка".encode("koi8-r") + b"\nContent-Type: text/plain; charset=koi8-r",
               "тело".encode("koi8-r"))  # fmt: skip
    result = parsed(raw)
    assert (result.subject, result.body_text) == ("Ошибка", "тело")
    assert any("8-bit header" in defect for defect in result.defects)


def test_very_long_and_duplicated_headers() -> None:
    long_value = "word " * 40_000
    raw = mail(f"X-Long: {long_value}\nX-Dup: one\nX-Dup: two\nReceived: a\nReceived: b")
    result = parsed(raw)
    assert result.header_values("x-dup") == ("one", "two")
    assert result.header_values("received") == ("a", "b")
    assert len(result.header("x-long") or "") == len(long_value.strip())
    huge = parsed(mail("X-Huge: " + "y" * 600_000))
    assert len(huge.header("x-huge") or "") == parse_module.MAX_HEADER_CHARS
    assert any("x-huge" in defect for defect in huge.defects)


def test_headers_are_all_there_lower_case_and_decoded() -> None:
    result = parsed(mail("X-Mailer: =?utf-8?q?M=C3=BCller?= Mail\nSubject: s"))
    names = [name for name, _ in result.headers]
    assert names[:2] == ["x-mailer", "subject"] and "from" in names and "message-id" in names
    assert result.header("X-Mailer") == "Müller Mail"


# --- addresses ----------------------------------------------------------------------------

ADDRESSES = [
    ("plain", b"From: Olena Petrenko <Olena@Customer.Example>", "olena@customer.example", "Olena Petrenko"),
    ("bare", b"From: olena@customer.example", "olena@customer.example", ""),
    ("encoded name", b"From: =?utf-8?B?0JjQstCw0L0=?= <ivan@example.ru>", "ivan@example.ru", "Иван"),
    ("encoded name with comma", b"From: =?utf-8?q?Doe=2C_John?= <j@example.com>", "j@example.com", "Doe, John"),
    ("quoted name with comma", b'From: "Hoffmann, Ralf" <r@kunde.example>', "r@kunde.example", "Hoffmann, Ralf"),
    ("raw utf-8 name", "From: Jürgen Krause <j@gmx.de>".encode(), "j@gmx.de", "Jürgen Krause"),
    ("raw cp1251 name", "From: Иван <i@example.ru>".encode("cp1251"), "i@example.ru", "Иван"),
    ("no brackets", b"From: John Smith john@example.com", "john@example.com", "John Smith"),
    ("comment", b"From: a@example.com (Anna)", "a@example.com", "Anna"),
    ("name equal to address dropped", b'From: "a@example.com" <a@example.com>', "a@example.com", ""),
    ("name and address in one encoded word (PHP mailers)",
     b"From: =?utf-8?b?" + base64.b64encode("Иван <ivan@example.ru>".encode()) + b"?=", "ivan@example.ru", "Иван"),
    ("encoded word in the domain", b"From: jan@=?utf-8?q?b=C3=BCcher?=.example", "jan@bücher.example", ""),
]  # fmt: skip


@pytest.mark.parametrize(("header", "email", "name"), [c[1:] for c in ADDRESSES], ids=[c[0] for c in ADDRESSES])
def test_sender(header: bytes, email: str, name: str) -> None:
    sender = parsed(mail(header)).sender
    assert (sender.email, sender.name) == (email, name)


def test_recipients_and_sender_fallback() -> None:
    raw = mail("To: a@x.example, \"B, Bee\" <B@x.example>\nTo: c@x.example\nCc: undisclosed-recipients:;\n"
               "Reply-To: help <r@x.example>")  # fmt: skip
    result = parsed(raw)
    assert [a.email for a in result.to] == ["a@x.example", "b@x.example", "c@x.example"]
    assert result.cc == () and result.reply_to[0].email == "r@x.example"
    no_from = parsed(mail("From: \nSender: s@x.example"))
    assert no_from.sender.email == "s@x.example" and any("sender" in d for d in no_from.defects)
    nobody = parsed(mail(b"To: a@b.example", defaults=False))
    assert nobody.sender.email == "" and nobody.defects


# --- message ids, threading headers, dates ---------------------------------------------------

IDS = [
    ("one", "<a@x>", ("a@x",)),
    ("several", "<a@x> <b@y>\r\n\t<c@z>", ("a@x", "b@y", "c@z")),
    ("junk between", "<a@x> (John's message of Mon) <b@y>", ("a@x", "b@y")),
    ("without brackets", "a@x b@y", ("a@x", "b@y")),
    ("mixed", '"Re: hi" <a@x>, bare@y', ("a@x", "bare@y")),
    ("folded inside an id", "<abc\r\n def@x>", ("abcdef@x",)),
    ("duplicates dropped", "<a@x> <a@x>", ("a@x",)),
    ("garbage", "no ids here", ()),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in IDS], ids=[c[0] for c in IDS])
def test_in_reply_to_and_references(value: str, expected: tuple[str, ...]) -> None:
    result = parsed(mail(f"In-Reply-To: {value}\nReferences: {value}"))
    assert result.in_reply_to == expected and result.references == expected


def test_message_id_kept_or_generated_deterministically() -> None:
    assert parsed(mail("Message-ID: <CA+x$y@mail.gmail.com>")).message_id == "CA+x$y@mail.gmail.com"
    assert parsed(mail("Message-ID: bare@example.com")).message_id == "bare@example.com"
    raw = mail(b"From: a@b.example\nSubject: no id", defaults=False)
    first, second = parsed(raw), parse(raw, received_at=NOW + timedelta(days=3))
    assert first.message_id == second.message_id
    assert first.message_id == hashlib.sha256(raw).hexdigest()[:32] + "@" + GENERATED_ID_DOMAIN
    assert first.message_id_generated and any("Message-ID missing" in d for d in first.defects)
    assert parsed(raw + b"x").message_id != first.message_id
    broken = parsed(mail("Message-ID: <>"))
    assert broken.message_id_generated and broken.message_id.endswith(GENERATED_ID_DOMAIN)


DATES = [
    ("rfc 5322", "Mon, 23 Nov 2026 09:15:00 +0100", datetime(2026, 11, 23, 8, 15, tzinfo=UTC), False),
    ("comment zone", "Mon, 23 Nov 2026 09:15:00 +0000 (UTC)", datetime(2026, 11, 23, 9, 15, tzinfo=UTC), False),
    ("no zone", "23 Nov 2026 09:15:00", datetime(2026, 11, 23, 9, 15, tzinfo=UTC), False),
    ("iso 8601", "2026-11-23T09:15:00+02:00", datetime(2026, 11, 23, 7, 15, tzinfo=UTC), False),
    ("garbage", "yesterday at noon", NOW, True),
    ("empty", "", NOW, True),
]


@pytest.mark.parametrize(("value", "expected", "generated"), [c[1:] for c in DATES], ids=[c[0] for c in DATES])
def test_date(value: str, expected: datetime, generated: bool) -> None:
    result = parsed(mail(f"Date: {value}"))
    assert (result.date, result.date_generated) == (expected, generated)
    assert result.date.tzinfo is not None and result.date.utcoffset() == timedelta(0)


def test_missing_date_uses_received_at_in_utc() -> None:
    received = datetime(2026, 11, 23, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    result = parse(mail(b"From: a@b.example", defaults=False), received_at=received)
    assert result.date == datetime(2026, 11, 23, 12, 0, tzinfo=UTC) and result.date_generated


# --- small header facts -------------------------------------------------------------------

FACTS = [
    ("language", "Content-Language: de-DE, en", "language", "de"),
    ("language upper", "Content-Language: UK", "language", "uk"),
    ("no language", "X-Other: 1", "language", ""),
    ("return path", "Return-Path: <Bounce@X.example>", "return_path", "bounce@x.example"),
    ("null sender", "Return-Path: <>", "return_path", ""),
    ("no return path", "X-Other: 1", "return_path", None),
    ("content type", "Content-Type: TEXT/HTML; charset=utf-8", "content_type", "text/html"),
    ("default content type", "X-Other: 1", "content_type", "text/plain"),
]


@pytest.mark.parametrize(("header", "attribute", "expected"), [c[1:] for c in FACTS], ids=[c[0] for c in FACTS])
def test_header_facts(header: str, attribute: str, expected: object) -> None:
    assert getattr(parsed(mail(header, "<p>x</p>")), attribute) == expected


def test_raw_hash_and_size() -> None:
    raw = mail()
    result = parsed(raw)
    assert (result.raw_sha256, result.raw_size) == (hashlib.sha256(raw).hexdigest(), len(raw))


# --- body charsets ----------------------------------------------------------------------

CHARSETS = [
    ("utf-8", "Grüße, Привет", "utf-8"),
    ("utf8mb4", "emoji 😀", "utf-8"),
    ('"UTF8"', "Grüße", "utf-8"),
    ("x-unknown", "Grüße", "utf-8"),
    ("gb2312", "朱镕基说", "gb18030"),
    ("ks_c_5601-1987", "안녕하세요", "cp949"),
    ("iso-8859-8-i", "שלום", "iso8859_8"),
    ("windows-874", "สวัสดี", "cp874"),
    ("x-mac-cyrillic", "Привет", "mac_cyrillic"),
    ("x-mac-roman", "Café", "mac_roman"),
    ("unicode-1-1-utf-7", "Grüße", "utf-7"),
    ("shift_jis", "①番の請求書", "cp932"),
    ("iso-2022-jp", "請求書を送ります", "iso2022_jp"),
    ("koi8-r", "Привет", "koi8_r"),
    ("windows-1251", "Привет", "cp1251"),
    ("iso-8859-1", "Price: 5 €", "cp1252"),
    ("cp-850", "Größe", "cp850"),
    ("", "Привет, как дела?", "koi8_r"),
    ("us-ascii", "Grüße", "utf-8"),
    ("utf-8", "Größe", "cp1252"),
    ("no-such-charset", "Привет, мир", "cp1251"),
]


@pytest.mark.parametrize(("label", "text", "codec"), CHARSETS, ids=[f"{c[0] or 'none'}-{c[2]}" for c in CHARSETS])
def test_body_charsets(label: str, text: str, codec: str) -> None:
    charset = f"; charset={label}" if label else ""
    raw = mail(f"Content-Type: text/plain{charset}\nContent-Transfer-Encoding: 8bit", text.encode(codec))
    assert parsed(raw).body_text == text


def test_decode_bytes_never_raises_and_reports() -> None:
    assert decode_bytes(b"caf\xe9", "utf-8") == ("café", "text is not valid utf-8; read as cp1252")
    assert decode_bytes("Ж".encode("utf-16"), "utf-16")[0] == "Ж"
    assert decode_bytes(b"\xff\xfe\x00", "base64")[0]
    assert decode_bytes(b"+AGEAYgBj-", "utf-7")[0] == "abc"
    for label in ("undefined", "idna", "rot13", "unicode_escape", "x" * 500, "\udcff"):
        decode_bytes(b"\\ud800 \xff\x80", label)


# --- text and HTML parts ------------------------------------------------------------------


def test_plain_part_preferred_over_html() -> None:
    raw = multipart("alternative", part("Content-Type: text/plain", "plain words"),
                    part("Content-Type: text/html", "<p>html words</p>"))  # fmt: skip
    assert parsed(raw).body_text == "plain words"


def test_html_only_becomes_readable_text() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Hello&nbsp;Olena,</p><p>please see <a href='https://example.com/kb/42'>the article</a>"
        " and mail <a href='mailto:help@example.com'>help@example.com</a>.</p>"
        "<ul><li>first</li><li>second</li></ul><ol><li>one</li><li>two</li></ol>"
        "line one<br>line two &amp; more<div>block</div><blockquote>old text</blockquote>after</body></html>"
    )
    text = parsed(mail("Content-Type: text/html; charset=utf-8", html)).body_text
    assert text == (
        "Hello Olena,\n\nplease see the article <https://example.com/kb/42> and mail help@example.com.\n\n"
        "- first\n- second\n\n1. one\n2. two\n\nline one\nline two & more\nblock\n\n> old text\n\nafter"
    )


HTML_CASES = [
    ("gmail divs", "<div>Hi</div><div><br></div><div>Text</div>", "Hi\n\nText"),
    ("nested lists", "<ul><li>a<ul><li>b</li></ul></li></ul>", "- a\n  - b"),
    ("table", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
    ("pre", "<pre>  keep\n    spaces</pre>", "  keep\n    spaces"),
    ("hr", "a<hr>b", "a\n" + "_" * 32 + "\nb"),
    ("link equal to text", '<a href="https://x.example/">https://x.example/</a>', "https://x.example/"),
    ("javascript link dropped", '<a href="javascript:x()">click</a>', "click"),
    ("unclosed head", "<head><style>x</style><body>visible", "visible"),
    ("entities", "&lt;tag&gt; &eacute; &#x41; &#65;", "<tag> é A A"),
    ("broken markup", "<p <b>x</p><!-- c --><![CDATA[y]]>z", "x\n\nz"),
    ("empty", "", ""),
]


@pytest.mark.parametrize(("html", "expected"), [c[1:] for c in HTML_CASES], ids=[c[0] for c in HTML_CASES])
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_several_plain_parts_are_joined_and_flowed_text_unwrapped() -> None:
    raw = multipart("mixed", part("Content-Type: text/plain; format=flowed", "one long \r\nline\r\n> quoted \r\n> too"),
                    part("Content-Type: text/plain", "second part"))  # fmt: skip
    assert parsed(raw).body_text == "one long line\n> quoted too\n\nsecond part"


def test_new_text_quote_and_signature_are_split() -> None:
    body = "Still broken.\r\n\r\nOn Mon, Nov 23, 2026 at 9:15 AM Support <support@example.com> wrote:\r\n> old\r\n"
    result = parsed(mail("", body + "-- \r\nOlena\r\n"))
    assert (result.new_text, result.quoted_text, result.signature) == (
        "Still broken.",
        "On Mon, Nov 23, 2026 at 9:15 AM Support <support@example.com> wrote:\n> old",
        "Olena",
    )


def test_reply_languages_are_passed_on() -> None:
    body = "Danke.\r\n\r\nAm 23.11.2026 um 09:15 schrieb Support:\r\nalter Text\r\n"
    assert parsed(mail("", body), reply_languages=("de",)).new_text == "Danke."
    assert "alter Text" in parsed(mail("", body), reply_languages=("fr",)).new_text


# --- attachments ----------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def attachment_part(headers: str, data: bytes = PNG) -> bytes:
    return part(headers + "\nContent-Transfer-Encoding: base64", base64.encodebytes(data))


FILENAMES = [
    ("plain", 'Content-Disposition: attachment; filename="report.pdf"', "report.pdf"),
    ("rfc 2231", "Content-Disposition: attachment; filename*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf", "отчёт.pdf"),
    ("rfc 2231 continuations", "Content-Disposition: attachment;\n filename*0*=utf-8''Zahlungs%C3%BCber;\n"
     " filename*1*=sicht.xlsx", "Zahlungsübersicht.xlsx"),
    ("rfc 2231 odd charset", "Content-Disposition: attachment; filename*=utf8mb4''caf%C3%A9.txt", "café.txt"),
    ("encoded word", 'Content-Disposition: attachment; filename="=?utf-8?B?0L7RgtGH0ZHRgi5wZGY=?="', "отчёт.pdf"),
    ("name parameter only", 'Content-Type: application/pdf; name="scan.pdf"', "scan.pdf"),
    ("path stripped", 'Content-Disposition: attachment; filename="C:\\Users\\me\\x.doc"', "x.doc"),
    ("no name", "Content-Disposition: attachment", "attachment-2.png"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), [c[1:] for c in FILENAMES], ids=[c[0] for c in FILENAMES])
def test_attachment_filename(headers: str, expected: str) -> None:
    content_type = "" if "Content-Type" in headers else "Content-Type: image/png\n"
    raw = multipart("mixed", part("Content-Type: text/plain", "see attached"), attachment_part(content_type + headers))
    (attachment,) = parsed(raw).attachments
    assert attachment.filename == expected


def test_attachment_content_size_hash_and_limit() -> None:
    png = attachment_part('Content-Type: image/png\nContent-Disposition: attachment; filename="a.png"')
    raw = multipart("mixed", part("Content-Type: text/plain", "see attached"), png)
    kept = parsed(raw).attachments[0]
    assert (kept.content, kept.size, kept.sha256) == (PNG, len(PNG), hashlib.sha256(PNG).hexdigest())
    assert (kept.content_type, kept.inline, kept.omitted_reason) == ("image/png", False, "")
    omitted = parsed(raw, max_attachment_bytes=100).attachments[0]
    assert omitted.content is None and (omitted.size, omitted.sha256) == (kept.size, kept.sha256)
    assert "over the limit" in omitted.omitted_reason


def test_inline_image_with_content_id() -> None:
    raw = multipart(
        "related",
        part("Content-Type: text/html", '<p>logo <img src="cid:logo@x"></p>'),
        attachment_part('Content-Type: image/png; name="logo.png"\nContent-ID: <logo@x>\nContent-Disposition: inline'),
    )
    result = parsed(raw)
    (image,) = result.attachments
    assert (image.inline, image.content_id, image.filename) == (True, "logo@x", "logo.png")
    assert result.body_text == "logo"


def test_inline_disposition_without_content_id_is_an_attachment() -> None:
    photo = attachment_part('Content-Type: image/jpeg\nContent-Disposition: inline; filename="IMG.jpg"')
    raw = multipart("mixed", part("Content-Type: text/plain", "photo"), photo)
    assert [(a.filename, a.inline) for a in parsed(raw).attachments] == [("IMG.jpg", False)]


def test_text_attachment_is_not_body() -> None:
    log = part('Content-Type: text/plain; name="log.txt"\nContent-Disposition: attachment', "log line")
    raw = multipart("mixed", part("Content-Type: text/plain", "body"), log)
    result = parsed(raw)
    assert result.body_text == "body" and result.attachments[0].content == b"log line"


def test_message_rfc822_attachment_is_kept_as_eml() -> None:
    inner = b"From: x@y.example\r\nSubject: Original question\r\nMessage-ID: <in@y>\r\n\r\ninner body\r\n"
    raw = multipart("mixed", part("Content-Type: text/plain", "forwarding"),
                    part("Content-Type: message/rfc822", inner))  # fmt: skip
    result = parsed(raw)
    (eml,) = result.attachments
    assert (eml.filename, eml.content_type) == ("Original question.eml", "message/rfc822")
    assert eml.content is not None and b"inner body" in eml.content and b"Subject: Original question" in eml.content
    assert result.body_text == "forwarding"


def tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal TNEF stream (winmail.dat) holding `files`."""

    def attribute(level: int, ident: int, data: bytes) -> bytes:
        header = struct.pack("<BHHI", level, ident & 0xFFFF, ident >> 16, len(data))
        return header + data + struct.pack("<H", sum(data) & 0xFFFF)

    blob = struct.pack("<IH", 0x223E9F78, 1) + attribute(1, 0x00089006, struct.pack("<I", 0x10000))
    blob += attribute(1, 0x00069007, struct.pack("<II", 1252, 0))
    for name, data in files:
        blob += attribute(2, 0x00069002, bytes(14)) + attribute(2, 0x00018010, name.encode() + b"\0")
        blob += attribute(2, 0x0006800F, data)
    return blob


def test_tnef_files_become_attachments() -> None:
    winmail = tnef([("vpnagent.log", b"tunnel down (reason 0x1f)\r\n"), ("scan.pdf", b"%PDF-1.4 fake pdf")])
    raw = multipart("mixed", part("Content-Type: text/plain", "log attached"),
                    attachment_part('Content-Type: application/ms-tnef; name="winmail.dat"', winmail))  # fmt: skip
    found = [(a.filename, a.content_type, a.content) for a in parsed(raw).attachments]
    assert found == [("vpnagent.log", "application/octet-stream", b"tunnel down (reason 0x1f)\r\n"),
                     ("scan.pdf", "application/pdf", b"%PDF-1.4 fake pdf")]  # fmt: skip


def test_unreadable_tnef_is_kept_as_winmail_dat() -> None:
    junk = attachment_part('Content-Type: application/ms-tnef; name="winmail.dat"', b"not tnef at all")
    raw = multipart("mixed", part("Content-Type: text/plain", "x"), junk)
    result = parsed(raw)
    assert [a.filename for a in result.attachments] == ["winmail.dat"]
    assert any("winmail.dat" in defect for defect in result.defects)


# --- bounces ------------------------------------------------------------------------------

ORIGINAL = b"From: help@example.com\r\nTo: gone@customer.example\r\nMessage-ID: <orig-1@example.com>\r\n"
ORIGINAL += b"Subject: Re: ticket\r\n\r\nhello\r\n"
STATUS = (b"Reporting-MTA: dns; mx.customer.example\r\n\r\nFinal-Recipient: rfc822; Gone@customer.example\r\n"
          b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <gone@customer.example>:\r\n"
          b" Recipient address rejected: User unknown\r\n")  # fmt: skip
DSN_HEADERS = "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender"


def dsn(original_type: str, original: bytes) -> bytes:
    return multipart(
        "report; report-type=delivery-status",
        part("Content-Type: text/plain", "I'm sorry to have to inform you that your message could not be delivered."),
        part("Content-Type: message/delivery-status", STATUS),
        part(f"Content-Type: {original_type}", original),
        headers=DSN_HEADERS,
    )


@pytest.mark.parametrize("original_type", ["message/rfc822", "text/rfc822-headers"])
def test_rfc3464_delivery_status(original_type: str) -> None:
    report = parsed(dsn(original_type, ORIGINAL)).delivery_report
    assert report is not None
    assert (report.original_message_id, report.failed_recipients) == ("orig-1@example.com", ("gone@customer.example",))
    assert (report.action, report.status) == ("failed", "5.1.1")
    assert report.diagnostic == "550 5.1.1 <gone@customer.example>: Recipient address rejected: User unknown"


NONSTANDARD = [
    ("exim", "From: Mail Delivery System <Mailer-Daemon@mx.example.com>\nSubject: Mail delivery failed: returning "
     "message to sender", "This message was created automatically by mail delivery software.\n\nA message that you "
     "sent could not be delivered to one or more of its recipients.\n\n  gone@customer.example\n    SMTP error from "
     "remote mail server after RCPT TO:<gone@customer.example>:\n    550 5.1.1 User unknown\n\n------ This is a copy "
     "of the message, including all the headers. ------\n\nMessage-ID: <orig-2@example.com>\nSubject: Re: x\n"),
    ("qmail", "From: MAILER-DAEMON@mail.customer.example\nSubject: failure notice", "Hi. This is the qmail-send "
     "program.\n\n<gone@customer.example>:\n550 5.1.1 no mailbox here\n\n--- Below this line is a copy of the "
     "message.\n\nReturn-Path: <help@example.com>\nMessage-ID: <orig-2@example.com>\n"),
    ("exchange", "From: postmaster@customer.example\nSubject: Undeliverable: Re: x",
     "Delivery has failed to these recipients or groups:\n\ngone@customer.example\nThe email address doesn't "
     "exist.\n\nDiagnostic information for administrators:\nRemote Server returned '550 5.1.10 RESOLVER.ADR."
     "RecipientNotFound'\n\nOriginal message headers:\n\nMessage-ID: <orig-2@example.com>\n"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "body"), [c[1:] for c in NONSTANDARD], ids=[c[0] for c in NONSTANDARD])
def test_nonstandard_bounces(headers: str, body: str) -> None:
    report = parsed(mail(headers + "\nReturn-Path: <>", body.replace("\n", "\r\n"))).delivery_report
    assert report is not None and report.original_message_id == "orig-2@example.com"
    assert report.failed_recipients == ("gone@customer.example",) and report.action == "failed"
    assert report.status.startswith("5.1.1")


NOT_BOUNCES = [
    ("out of office", "Subject: Automatic reply: Re: x\nAuto-Submitted: auto-replied\nReturn-Path: <>",
     "I am out of the office until Monday."),
    ("customer complaint", "Subject: Mail delivery failed when I write to you", "Your address bounces, why?"),
    ("plain mail", "Subject: hello", "hi"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "body"), [c[1:] for c in NOT_BOUNCES], ids=[c[0] for c in NOT_BOUNCES])
def test_not_bounces(headers: str, body: str) -> None:
    assert parsed(mail(headers, body)).delivery_report is None


# --- fallbacks and hostile input --------------------------------------------------------------


def test_own_date_reader_when_mail_parsers_fails_on_a_date(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(value: str) -> object:
        raise ValueError("mail-parser bug")

    monkeypatch.setattr(parse_module, "parse_mail_date", broken)
    result = parsed(mail("Subject: still read\nDate: Mon, 23 Nov 2026 09:00:00 +0200", "body"))
    assert (result.subject, result.body_text, result.date_generated) == ("still read", "body", False)
    assert result.date == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_obsolete_date_forms_are_read_by_mail_parser() -> None:
    result = parsed(mail("Subject: old client\nDate: 23 Nov 26 09:00 EST", "body"))
    assert (result.date, result.date_generated) == (datetime(2026, 11, 23, 14, 0, tzinfo=UTC), False)


def test_headers_only_when_mime_nesting_defeats_the_stdlib_reader() -> None:
    depth = 1200
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(depth))
    closing = b"".join(b"\r\n--b%d--" % n for n in reversed(range(depth)))
    raw = mail(b"From: a@b.example\nSubject: deep", b"", defaults=False)[:-4]
    raw += b"\r\n" + opening + b"Content-Type: text/plain\r\n\r\nthe real text" + closing
    result = parsed(raw)
    assert (result.subject, result.sender.email) == ("deep", "a@b.example")
    assert "the real text" in result.body_text
    assert any("headers and raw body only" in defect for defect in result.defects)


def test_minimal_split_when_everything_else_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: bytes, options: object) -> InboundMail:
        raise RuntimeError("bug in our own code")

    monkeypatch.setattr(parse_module, "_parse_mail", broken)
    result = parsed(b"From: Olena <olena@x.example>\r\nSubject: help\r\n\r\ntext\r\n")
    assert (result.subject, result.sender.email, result.body_text) == ("help", "olena@x.example", "text\n")
    assert result.defects[0] == "parser error (RuntimeError)"


def test_a_stray_line_among_the_header_fields_is_left_out_not_the_end_of_the_header() -> None:
    # a relay wrote text that is no field between two of them (seen from a CommuniGate relay)
    raw = (b"Received: from relay.example by mx.example; Wed, 23 Feb 2005 17:51:49 -0500\r\n"
           b"quite Delivered-To: help@example.com\r\n"
           b"From: \"Olena P\" <olena@customer.example>\r\nTo: help@example.com\r\n"
           b"Subject: Printer offline\r\nMessage-ID: <stray@customer.example>\r\n\r\nIt stopped again.\r\n")
    result = parsed(raw)
    assert (result.sender.email, result.subject, result.message_id) == (
        "olena@customer.example", "Printer offline", "stray@customer.example")
    assert result.body_text == "It stopped again.\n"
    assert "a line in the header that is not a field was left out: 'quite Delivered-To: help@example.com'" \
        in result.defects


def test_obsolete_spaces_before_the_colon_of_a_field_name() -> None:  # RFC 5322 4.5.3, RFC 2822 A.6.3
    raw = (b"From  : John Doe <jdoe@machine.example>\r\nTo    : Mary Smith\r\n  <mary@example.net>\r\n"
           b"Subject     : Saying Hello\r\nDate  : Fri, 21 Nov 1997 09:55:06 -0600\r\n"
           b"Message-ID  : <1234@local.machine.example>\r\n\r\nThis is a message just to say hello.\r\n")
    result = parsed(raw)
    assert (result.sender.email, result.to[0].email, result.subject) == (
        "jdoe@machine.example", "mary@example.net", "Saying Hello")
    assert result.date == datetime(1997, 11, 21, 15, 55, 6, tzinfo=UTC)
    assert "5 header field name(s) with spaces before the colon read as fields" in result.defects
    assert not any("mbox" in defect for defect in result.defects)


@pytest.mark.parametrize("raw", [
    b"From: a@b.example\r\nSubject: no blank line\r\nthe body starts here\r\nand goes on\r\n",
    b"From: a@b.example\r\nSubject: x\r\nbody line one\r\nbody line two\r\nNote: looks like a field\r\n\r\nmore",
])
def test_a_body_that_follows_its_header_without_a_blank_line_stays_the_body(raw: bytes) -> None:
    result = parsed(raw)
    assert result.sender.email == "a@b.example"
    assert "body line" in result.body_text or "the body starts here" in result.body_text


HOSTILE = [
    ("empty", b""),
    ("only NULs", b"\x00" * 100),
    ("binary junk", bytes(range(256)) * 8),
    ("no colon header", b"this is not a header\r\n\r\nbody"),
    ("headers only", b"From: a@b.example\r\nSubject: x"),
    ("8-bit header name", b"F\xffrom: a@b.example\r\n\r\nx"),
    ("truncated multipart", b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain'
     b"\r\n\r\ncut here"),
    ("truncated base64", b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n0J/RgNC4=0J"),
    ("multipart without boundary", b"Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi"),
    ("empty multipart", b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b--\r\n'),
    ("bad transfer encoding", b"Content-Transfer-Encoding: x-garbage\r\n\r\nbody"),
    ("utf-16 odd length", b"Content-Type: text/plain; charset=utf-16\r\n\r\n\xff\xfeA"),
    ("bad rfc2231", b"Content-Type: application/x; name*=bogus'xx'%ZZ%\r\nContent-Disposition: attachment\r\n\r\nx"),
    ("uuencode junk", b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n!!!!\r\nend\r\n"),
    ("lone CR", b"Subject: a\rFrom: b\r\rbody\rmore"),
    ("surrogate-like bytes", b"Subject: \xed\xa0\x80\r\n\r\n\xed\xa0\x80"),
    ("many parts", b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
     + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 3000 + b"--b--"),
]  # fmt: skip


@pytest.mark.parametrize("raw", [c[1] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_never_raises(raw: bytes) -> None:
    result = parsed(raw)
    assert isinstance(result, InboundMail) and result.raw_size == len(raw) and result.message_id
    for text in (result.subject, result.body_text, result.new_text, *[v for _, v in result.headers]):
        assert "\x00" not in text
        text.encode("utf-8")


def test_non_bytes_input_is_accepted() -> None:
    assert parsed(bytearray(mail())).subject == "test"  # type: ignore[arg-type]
    assert parsed(memoryview(mail())).subject == "test"  # type: ignore[arg-type]


def test_a_body_in_a_charset_whose_codec_cannot_replace_is_still_read() -> None:
    """charset=idna: the stdlib's get_payload() decodes 8-bit bodies with the charset and
    'replace', which that codec refuses (UnicodeError); the parser reads the stored body."""
    raw = (b"Subject: odd\r\nContent-Type: text/plain; charset=idna\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
           b"abc \x80\r\n")
    mail = parse(raw, received_at=NOW)
    assert not any(defect.startswith("parser error") for defect in mail.defects), mail.defects
    assert mail.subject == "odd" and "abc" in mail.body_text


FORWARDED = (b"From: Jan <jan@customer.example>\r\nTo: help@example.com\r\nSubject: Fwd: invoice\r\n"
             b"Message-ID: <fwd@customer.example>\r\nMIME-Version: 1.0\r\n")
ATTACHED = (b"From: Billing <billing@vendor.example>\r\nSubject: invoice\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"\r\nYour invoice 4711 is overdue.\r\n")


def forwarded_as_attachment(own_text: bytes) -> bytes:
    return (FORWARDED + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
            + own_text + b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n" + ATTACHED + b"--b--\r\n")


@pytest.mark.parametrize(("raw", "attachment"), [
    (FORWARDED + b"Content-Type: message/rfc822\r\n\r\n" + ATTACHED, "invoice.eml"),
    (forwarded_as_attachment(b""), "invoice.eml"),
], ids=["message/rfc822 at the top", "forwarded as attachment with nothing written"])
def test_a_mail_that_is_only_an_attached_mail_shows_that_mails_text(raw: bytes, attachment: str) -> None:
    mail = parse(raw, received_at=NOW)
    assert mail.new_text == "Your invoice 4711 is overdue."
    assert [a.filename for a in mail.attachments] == [attachment]


def test_a_mail_with_text_of_its_own_keeps_it_beside_an_attached_mail() -> None:
    assert parse(forwarded_as_attachment(b"Is this invoice right?"), received_at=NOW).new_text == \
        "Is this invoice right?"
