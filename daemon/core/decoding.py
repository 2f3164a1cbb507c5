"""Header and charset decoding for the parser: bytes → text in any charset (never raising),
RFC 2047 encoded-words and raw 8-bit headers, addresses, Message-IDs, dates."""

from __future__ import annotations

import binascii
import codecs
import email
import email.utils
import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final

from daemon.core.values import Address

GENERATED_ID_DOMAIN: Final = "generated.postdesk.invalid"
MAX_HEADER_CHARS: Final = 256 * 1024

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
            if not piece.isascii():  # raw 8-bit octets between the words (see decode_header_value)
                piece, defect = _decode_raw_8bit(piece, hint)
                if defect:
                    defects.append(defect)
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
    if "=?" in value:
        # the words first: raw 8-bit octets inside one ("=?iso-8859-1?Q?Fr\xf6sche?=", as some
        # clients write) are its declared charset's, not the header's; those between words
        # are decoded as below, piece by piece
        value, word_defects = decode_encoded_words(value, hint)
        return clean_text(value).strip(), word_defects
    value, defect = _decode_raw_8bit(value, hint) if not value.isascii() else (value, "")
    return clean_text(value).strip(), [defect] if defect else []


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
    if "=?" in address:  # an encoded word inside the address ("jan@=?utf-8?q?b=C3=BCcher?=.example")
        address = decode_encoded_words(address, hint)[0]
    if not address.isascii():
        address = address.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    decoded_name, _ = decode_header_value(name, hint)
    decoded_name = decoded_name.strip().strip("\"'").strip()
    address = clean_text(address).strip("<> ").lower()
    return Address(email=address, name="" if decoded_name.lower() == address else decoded_name)


def parse_addresses(raw: str, hint: str | None = None) -> tuple[Address, ...]:
    """All mailboxes in an address header; display names decoded after the split."""
    value = unfold(raw)
    found = _mailboxes(value, hint)
    if not found and "=?" in value:
        # the whole "Name <address>" in one encoded word, as some PHP mailers write it: the
        # address only shows once the word is decoded
        decoded = decode_encoded_words(value, hint)[0]
        if "@" in decoded:
            found = _mailboxes(decoded, hint)
    return tuple(found)


def _mailboxes(value: str, hint: str | None) -> list[Address]:
    found: list[Address] = []
    for name, address in email.utils.getaddresses([value]):
        parsed = _address(name, address, hint)
        if parsed is not None and parsed not in found:
            found.append(parsed)
    if not found and "@" in value:
        match = _EMAIL_LIKE.search(value)
        fallback = _address("", match.group(0), hint) if match else None
        found.extend([fallback] if fallback else [])
    return found


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
