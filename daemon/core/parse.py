"""Raw mail bytes → `InboundMail`, for any bytes whatever.

`parse` never raises. mail-parser reads the MIME structure; when it fails, the stdlib
`email` package (compat32) does, and when that fails too a plain split of header and body.
Whatever had to be repaired on the way is listed in `InboundMail.defects`.

The sections below: charsets (bytes → text, never raising), header values (RFC 2047,
raw 8-bit), identifiers and dates, the MIME walk (bodies and attachments), and `parse`.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.parser
import email.utils
import hashlib
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from functools import lru_cache
from typing import Final

import mailparser

from daemon.core.dsn import read_delivery_report
from daemon.core.htmltext import html_to_text
from daemon.core.reply import split_reply
from daemon.core.values import Address, Attachment, InboundMail

GENERATED_ID_DOMAIN: Final = "generated.postdesk.invalid"
MAX_NESTING: Final = 256  # multipart levels walked; deeper parts are skipped
MAX_PARTS: Final = 1000  # MIME parts walked in one mail
MAX_DEFECTS: Final = 40
MAX_HEADER_CHARS: Final = 256 * 1024
MAX_HTML_CHARS: Final = 2 * 1024 * 1024

# ---------------------------------------------------------------------------
# Charsets: a label from the mail → Python codecs to try; bytes → text, never raising
# ---------------------------------------------------------------------------

_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "utf8mb4": ("utf-8",),
    "utf8mb3": ("utf-8",),
    "unicode-1-1-utf-8": ("utf-8",),
    "unicode-1-1-utf-7": ("utf-7",),
    "ucs-2": ("utf-16",),
    "iso-10646-ucs-2": ("utf-16",),
    "unicode": ("utf-16",),
    "iso-8859-1": ("cp1252", "latin-1"),
    "iso8859-1": ("cp1252", "latin-1"),
    "iso_8859-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "latin-1": ("cp1252", "latin-1"),
    "l1": ("cp1252", "latin-1"),
    "gb2312": ("gb18030",),
    "gb_2312-80": ("gb18030",),
    "csgb2312": ("gb18030",),
    "chinese": ("gb18030",),
    "euc-cn": ("gb18030",),
    "x-euc-cn": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "cp936": ("gb18030",),
    "big5": ("cp950", "big5hkscs"),
    "x-x-big5": ("cp950", "big5hkscs"),
    "cn-big5": ("cp950", "big5hkscs"),
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "ksc5601": ("cp949",),
    "euc-kr": ("cp949",),
    "x-windows-949": ("cp949",),
    "windows-949": ("cp949",),
    "korean": ("cp949",),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "ms_kanji": ("cp932",),
    "windows-31j": ("cp932",),
    "csshiftjis": ("cp932",),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    "x-euc-jp": ("euc_jp", "euc_jis_2004"),
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2"),
    "csiso2022jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2"),
    "iso-8859-8-i": ("iso8859_8",),
    "iso-8859-8-e": ("iso8859_8",),
    "iso-8859-6-i": ("iso8859_6",),
    "iso-8859-6-e": ("iso8859_6",),
    "windows-874": ("cp874",),
    "iso-8859-11": ("cp874", "iso8859_11"),
    "tis-620": ("cp874", "tis_620"),
    "x-mac-roman": ("mac_roman",),
    "x-mac-cyrillic": ("mac_cyrillic",),
    "x-mac-ukrainian": ("mac_cyrillic",),
    "x-mac-ce": ("mac_latin2",),
    "x-mac-centraleurroman": ("mac_latin2",),
    "x-mac-greek": ("mac_greek",),
    "x-mac-turkish": ("mac_turkish",),
    "x-mac-icelandic": ("mac_iceland",),
    "x-mac-croatian": ("mac_croatian",),
    "x-mac-romanian": ("mac_romanian",),
    "x-mac-arabic": ("mac_arabic",),
    "x-mac-hebrew": ("cp1255",),
    "x-mac-japanese": ("cp932",),
    "x-mac-chinesesimp": ("gb18030",),
    "x-mac-chinesetrad": ("cp950",),
    "x-mac-korean": ("cp949",),
    "koi8-r": ("koi8_r",),
    "koi8-u": ("koi8_u", "koi8_r"),
}
# Labels that say nothing useful: the text is read as if no charset were declared.
_UNKNOWN_LABELS: Final = frozenset(
    {
        "", "x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default", "none",
        "binary", "8bit", "7bit", "charset", "us-ascii", "ascii", "ansi_x3.4-1968",
        "iso-646-us", "us", "ansi", "text", "plain", "auto", "x-ascii",
    }
)  # fmt: skip
# Labels read fine through an alias but which no standard knows: worth a defect note.
_NONSTANDARD_LABELS: Final = frozenset({"utf8mb4", "utf8mb3"})
# Codecs that exist in Python but are no charsets of mail text.
_UNSAFE_CODECS: Final = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "mbcs", "oem"}
)
_CODEPAGE_LABEL: Final = re.compile(r"(?:x-)?(?:cp|ibm|windows|ms)[-_ ]?(\d{3,5})")
_HIGH_BYTES: Final = bytes(range(0x80, 0x100))
_LOWER_HALF_OF_HIGH_LETTERS: Final = bytes(range(0xC0, 0xE0))
_UPPER_HALF_OF_HIGH_LETTERS: Final = bytes(range(0xE0, 0x100))
_ASCII_LETTERS: Final = string.ascii_letters.encode()
_ISO2022_ESCAPES: Final = (b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b$(D", b"\x1b(I")


def _clean_label(label: str) -> str:
    name = label.strip().strip("\"';").strip().lower()
    name = name.removeprefix("charset=").removeprefix("3d")
    return name.split()[0] if name.split() else ""


def _text_codec(name: str) -> str | None:
    """Python's codec name for a label, if it is a text codec fit for mail."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not info._is_text_encoding or info.name in _UNSAFE_CODECS:
        return None
    return info.name


@lru_cache(maxsize=512)
def codecs_for_charset(label: str) -> tuple[str, ...]:
    """The Python codecs to try, best first, for a charset label; () when unknown or useless."""
    name = _clean_label(label)
    if name in _UNKNOWN_LABELS:
        return ()
    if name in _ALIASES:
        return _ALIASES[name]
    codepage = _CODEPAGE_LABEL.fullmatch(name)
    candidates = [name, name.removeprefix("x-"), name.replace("x-mac-", "mac_")]
    if codepage:
        candidates.insert(0, f"cp{codepage.group(1)}")
    for candidate in candidates:
        codec = _text_codec(candidate)
        if codec is not None:
            return _ALIASES.get(codec, (codec,))
    return ()


@lru_cache(maxsize=128)
def _is_ascii_compatible(codec: str) -> bool:
    sample = string.printable
    try:
        return sample.encode(codec) == sample.encode("ascii")
    except (LookupError, UnicodeError):
        return False


_LATIN_NEXT_TO_HIGH: Final = re.compile(rb"[A-Za-z][\x80-\xff]|[\x80-\xff][A-Za-z]")


def guess_legacy_codec(data: bytes) -> str:
    """A cheap guess for 8-bit text that is not UTF-8: Cyrillic (cp1251/koi8-r) or cp1252.

    Cyrillic words are all high bytes; Western words mix ASCII letters with an accented
    one ("Gr\xf6\xdfe"). Cyrillic text is mostly lower-case: lower-case letters sit in
    0xE0–0xFF in cp1251 and in 0xC0–0xDF in koi8-r.
    """
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    ascii_letters = len(data) - len(data.translate(None, _ASCII_LETTERS))
    mixed = sum(1 for _ in _LATIN_NEXT_TO_HIGH.finditer(data))
    if mixed * 4 >= high or high < 0.3 * (high + ascii_letters):
        return "cp1252"
    in_c0_df = len(data) - len(data.translate(None, _LOWER_HALF_OF_HIGH_LETTERS))
    in_e0_ff = len(data) - len(data.translate(None, _UPPER_HALF_OF_HIGH_LETTERS))
    return "koi8_r" if in_c0_df > in_e0_ff else "cp1251"


def _decode_strict(data: bytes, codec_names: Iterable[str]) -> tuple[str, str] | None:
    for codec in codec_names:
        try:
            return data.decode(codec), codec
        except (UnicodeError, LookupError):
            continue
    return None


def _undeclared_codecs(data: bytes, hint: tuple[str, ...]) -> list[str]:
    if any(escape in data for escape in _ISO2022_ESCAPES):
        return ["iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2"]
    return ["utf-8", *hint]


def clean_text(text: str) -> str:
    """Text safe to store anywhere: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _is_plain_ascii(data: bytes, declared: tuple[str, ...]) -> bool:
    if not data.isascii() or any(escape in data for escape in _ISO2022_ESCAPES):
        return False
    return not declared or _is_ascii_compatible(declared[0])


def _decode_fallback(data: bytes, extra: tuple[str, ...]) -> tuple[str, str]:
    decoded = _decode_strict(data, ["utf-8", *extra])
    if decoded is not None:
        return decoded
    codec = guess_legacy_codec(data)
    return data.decode(codec, "replace"), codec


def _label_defect(charset: str | None, declared: tuple[str, ...], codec: str) -> str:
    """Why 8-bit text decoded as `codec` deserves a note ("" when its label was proper)."""
    label = (charset or "").strip()[:40]
    if declared and _clean_label(label) not in _NONSTANDARD_LABELS:
        return ""
    if not label:
        return f"8-bit text without a charset; read as {codec}"
    return f"8-bit text in unknown or wrong charset {label!r}; read as {codec}"


def decode_bytes(data: bytes, charset: str | None, hint: str | None = None) -> tuple[str, str]:
    """Decode text bytes by their declared charset; never raises.

    Returns the text and a short defect ("" when the bytes were what they said). Order:
    the declared charset (and its supersets), UTF-8, the mail's other charset (`hint`),
    then a Cyrillic/Western guess decoded with replacement characters.
    """
    declared = codecs_for_charset(charset or "")
    if _is_plain_ascii(data, declared):
        return clean_text(data.decode("ascii")), ""
    hinted = codecs_for_charset(hint or "")
    decoded = _decode_strict(data, declared or _undeclared_codecs(data, hinted))
    if decoded is not None:
        return clean_text(decoded[0]), _label_defect(charset, declared, decoded[1])
    text, codec = _decode_fallback(data, hinted if declared else ())
    if declared:
        return clean_text(text), f"text is not valid {(charset or '').strip()[:40]}; read as {codec}"
    return clean_text(text), _label_defect(charset, declared, codec)


# ---------------------------------------------------------------------------
# Header values: unfolding, raw 8-bit bytes (RFC 6532 or legacy), RFC 2047 encoded words
# ---------------------------------------------------------------------------

_FOLD: Final = re.compile(r"[ \t]*(?:\r?\n[ \t]*)+|\r")
_ENCODED_WORD: Final = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?]*)\?=")
_BASE64_JUNK: Final = re.compile(r"[^A-Za-z0-9+/]")


def unfold(value: str) -> str:
    if "\n" in value or "\r" in value:
        value = _FOLD.sub(" ", value)
    return value.strip()


def _decode_b(text: str) -> bytes:
    cleaned = _BASE64_JUNK.sub("", text.split("=", 1)[0])
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    return binascii.a2b_base64(cleaned + "=" * (-len(cleaned) % 4))


def _decode_q(text: str) -> bytes:
    return binascii.a2b_qp(text.encode("utf-8", "surrogateescape"), header=True)


def _decode_raw_8bit(value: str, hint: str | None) -> tuple[str, str]:
    """A header value read by `email` from bytes: its non-ASCII octets are surrogates."""
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        pass
    hinted = codecs_for_charset(hint or "")
    decoded = _decode_strict(data, hinted)
    if decoded is None:
        codec = guess_legacy_codec(data)
        decoded = data.decode(codec, "replace"), codec
    return decoded[0], f"raw 8-bit header is not UTF-8; read as {decoded[1]}"


@dataclass(slots=True)
class _WordRun:
    """Adjacent encoded words in one charset: their bytes are decoded together."""

    charset: str
    data: bytearray = field(default_factory=bytearray)


def _encoded_word_runs(value: str) -> list[str | _WordRun]:
    pieces: list[str | _WordRun] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        previous = pieces[-1] if pieces else None
        if gap and not (gap.isspace() and isinstance(previous, _WordRun)):
            pieces.append(gap)
            previous = None
        charset = match.group(1).split("*", 1)[0]
        encoded = match.group(3)
        try:
            data = _decode_b(encoded) if match.group(2) in "bB" else _decode_q(encoded)
        except (binascii.Error, ValueError):
            data = match.group(0).encode("utf-8", "surrogateescape")
        if not (isinstance(previous, _WordRun) and previous.charset.lower() == charset.lower()):
            previous = _WordRun(charset)
            pieces.append(previous)
        previous.data += data
        position = match.end()
    pieces.append(value[position:])
    return pieces


def decode_encoded_words(value: str, hint: str | None = None) -> tuple[str, list[str]]:
    """Decode RFC 2047 encoded words (adjacent words joined, broken charsets repaired)."""
    if "=?" not in value:
        return value, []
    parts: list[str] = []
    defects: list[str] = []
    for piece in _encoded_word_runs(value):
        if isinstance(piece, str):
            parts.append(piece)
            continue
        text, defect = decode_bytes(bytes(piece.data), piece.charset or "unknown", hint)
        parts.append(text)
        if defect:
            defects.append(f"encoded word: {defect}")
    return "".join(parts), defects


def decode_header_value(raw: str, hint: str | None = None) -> tuple[str, list[str]]:
    """Unfold and decode one header value: raw 8-bit octets, then encoded words."""
    if raw.isascii() and "=?" not in raw and "\n" not in raw and "\x00" not in raw:
        return raw.strip(), []
    value = unfold(raw)
    defects: list[str] = []
    if not value.isascii():
        value, defect = _decode_raw_8bit(value, hint)
        if defect:
            defects.append(defect)
    value, word_defects = decode_encoded_words(value, hint)
    return clean_text(value).strip(), defects + word_defects


# ---------------------------------------------------------------------------
# Addresses, message ids, dates
# ---------------------------------------------------------------------------

_EMAIL_LIKE: Final = re.compile(r"[^\s<>()\[\],;:\"]+@[^\s<>()\[\],;:\"]+")
_BRACKETED_ID: Final = re.compile(r"<([^<>]{1,998})>")
_COMMENT_OR_QUOTED: Final = re.compile(r"\([^()]*\)|\"[^\"]*\"")
_BARE_ID: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\[\]:-]+")
_ID_TRAILING_PUNCTUATION: Final = ".,;:"


def _repair_address(name: str, address: str) -> tuple[str, str]:
    """'John Smith john@example.com' (no brackets) → ('John Smith', 'john@example.com')."""
    if " " not in address.strip():
        return name, address.strip()
    found = _EMAIL_LIKE.search(address)
    if found is None:
        return name, ""
    rest = (address[: found.start()] + address[found.end() :]).strip(" \"'")
    return name or rest, found.group(0)


def _address(name: str, address: str, hint: str | None) -> Address | None:
    name, address = _repair_address(name, address)
    if "@" not in address:
        return None
    if not address.isascii():
        address = address.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    decoded_name, _ = decode_header_value(name, hint)
    decoded_name = decoded_name.strip().strip("\"'").strip()
    address = clean_text(address).strip("<> ").lower()
    return Address(email=address, name="" if decoded_name.lower() == address else decoded_name)


def parse_addresses(raw: str, hint: str | None = None) -> tuple[Address, ...]:
    """All mailboxes in an address header; display names decoded after the split."""
    value = unfold(raw)
    found: list[Address] = []
    for name, address in email.utils.getaddresses([value]):
        parsed = _address(name, address, hint)
        if parsed is not None and parsed not in found:
            found.append(parsed)
    if not found and "@" in value:
        match = _EMAIL_LIKE.search(value)
        fallback = _address("", match.group(0), hint) if match else None
        found.extend([fallback] if fallback else [])
    return tuple(found)


def extract_message_ids(raw: str) -> tuple[str, ...]:
    """Message ids without <> from In-Reply-To/References, tolerant of junk and bare ids."""
    value = unfold(raw)
    found: list[str] = []
    position = 0
    for match in _BRACKETED_ID.finditer(value):
        found.extend(_bare_ids(value[position : match.start()]))
        identifier = "".join(match.group(1).split())
        if identifier:
            found.append(identifier)
        position = match.end()
    found.extend(_bare_ids(value[position:]))
    return tuple(dict.fromkeys(clean_text(item) for item in found if item))


def _bare_ids(text: str) -> list[str]:
    if "@" not in text:
        return []
    text = _COMMENT_OR_QUOTED.sub(" ", text)
    return [match.group(0).strip(_ID_TRAILING_PUNCTUATION) for match in _BARE_ID.finditer(text)]


def extract_message_id(raw: str | None) -> str:
    """The Message-ID without <>, or "" when absent or unusable."""
    if not raw:
        return ""
    value = unfold(raw)
    match = _BRACKETED_ID.search(value)
    if match:
        return clean_text("".join(match.group(1).split()))
    bare = _BARE_ID.fullmatch(value)
    return clean_text(bare.group(0)) if bare else ""


def generated_message_id(raw: bytes) -> str:
    """A Message-ID made from the raw bytes: the same bytes always give the same id."""
    return f"{hashlib.sha256(raw).hexdigest()[:32]}@{GENERATED_ID_DOMAIN}"


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_date(raw: str | None) -> datetime | None:
    """A Date header as aware UTC, or None when it cannot be read (stdlib, then ISO 8601)."""
    if not raw:
        return None
    value = unfold(raw)
    try:
        return as_utc(email.utils.parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    try:
        return as_utc(datetime.fromisoformat(value.replace(" UTC", "+00:00")))
    except ValueError:
        return None


def extract_language(raw: str | None) -> str:
    """Primary tag of the first Content-Language value, lower-case ("de-DE, en" → "de")."""
    if not raw:
        return ""
    first = unfold(raw).split(",", 1)[0].strip()
    primary = first.split("-", 1)[0].strip().lower()
    return primary if primary.isascii() and primary.isalpha() and len(primary) <= 8 else ""


def extract_return_path(raw: str | None) -> str | None:
    if raw is None:
        return None
    value = unfold(raw)
    match = _BRACKETED_ID.search(value)
    if match:
        return clean_text(match.group(1).strip()).lower()
    if "<>" in value or not value:
        return ""
    found = _EMAIL_LIKE.search(value)
    return clean_text(found.group(0)).lower() if found else ""


# ---------------------------------------------------------------------------
# Reading the MIME structure: mail-parser, else stdlib compat32, else headers only
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ReadMessage:
    message: Message
    library_date: datetime | None  # mail-parser's reading of Date, when it ran
    defects: tuple[str, ...]


def _read_with_mailparser(raw: bytes) -> _ReadMessage:
    parsed = mailparser.parse_from_bytes(raw)
    message = parsed.message
    if not isinstance(message, Message):
        raise TypeError("mail-parser returned no message")
    date = parsed.date
    return _ReadMessage(message, date if isinstance(date, datetime) else None, ())


def read_message(raw: bytes) -> _ReadMessage:
    """The parsed MIME tree; each fallback says in `defects` why it was needed."""
    try:
        return _read_with_mailparser(raw)
    except Exception as error:
        first = f"mail-parser failed ({type(error).__name__}); read with stdlib email"
    try:
        message = email.message_from_bytes(raw)
        return _ReadMessage(message, None, (first,))
    except Exception as error:
        second = f"stdlib email failed ({type(error).__name__}); headers and raw body only"
    message = email.parser.BytesParser().parsebytes(raw, headersonly=True)
    return _ReadMessage(message, None, (first, second))


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
        children = part.get_payload() if content_type.startswith("multipart/") else None
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
    payload = part.get_payload()
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
    sent = part.get_payload()
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
    inner = part.get_payload(0) if part.is_multipart() else None
    if not isinstance(inner, Message):
        return _part_bytes(part)
    try:
        return inner.as_bytes()
    except Exception:
        return inner.as_string().encode("utf-8", "surrogateescape")


def _embedded_subject(part: Message, hint: str | None) -> str:
    inner = part.get_payload(0) if part.is_multipart() else None
    raw = inner.get("subject") if isinstance(inner, Message) else None
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


def _date(headers: _Headers, library_date: datetime | None, received_at: datetime) -> tuple[datetime, list[str]]:
    value = headers.first_raw("date")
    found = library_date or parse_date(value)
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
    if raw.startswith(b"From "):
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
    payload = message.get_payload() if not message.is_multipart() else None
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
    date, date_defects = _date(headers, read.library_date, options.received_at)
    subject = next((value for key, value in headers.decoded if key == "subject"), "")
    body_text = _choose_body(found)
    reply = split_reply(body_text, languages=options.reply_languages)
    return_path = extract_return_path(headers.first_raw("return-path"))
    report = read_delivery_report(
        message,
        subject=subject,
        sender_email=sender.email,
        null_sender=return_path == "",
        body_text=body_text,
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
