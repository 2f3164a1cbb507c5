"""Split a reply into the author's new text, the quoted history and the signature.

Table-driven: `ATTRIBUTIONS` holds, per language, how mail clients introduce a quote
("On <date>, <name> wrote:", "Am … schrieb …:", Gmail's Russian "<date> г. в 10:00, Имя
<addr>:"…); `HEADER_NAMES` the words of Outlook's "From: / Sent: / To: / Subject:" block.
One pass over the lines, with cheap tests first, so a 1 MB body is split in milliseconds:

- `>` lines are quoted history, and so is an attribution right above them; text below
  or between them is the author's (bottom-posting, interleaved answers);
- an Outlook separator or header block, a forwarded message, or an attribution not followed by `>` lines,
  starts history that runs to the end (top-posting);
- a signature is cut after "-- " (when short), or a last line such as "Sent from my iPhone".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final


@dataclass(frozen=True, slots=True)
class ReplyParts:
    new_text: str
    quoted_text: str
    signature: str


@dataclass(frozen=True, slots=True)
class Attribution:
    """How one language's mail clients introduce quoted history (regex alternatives)."""

    prefixes: str  # words that open "On <date>, <name> wrote:"; "" when the form has none
    verbs: str  # "wrote" and its kin, with the word boundaries the script needs
    datelines: tuple[str, ...] = ()  # whole attributions that have no verb


ATTRIBUTIONS: Final[dict[str, Attribution]] = {
    "en": Attribution(r"On", r"\bwrote"),
    "de": Attribution(r"Am", r"\bschrieb"),
    "fr": Attribution(r"Le", r"\ba\s+écrit|\bécrivait"),
    "es": Attribution(r"El", r"\bescribió"),
    "it": Attribution(r"Il", r"\bha\s+scritto"),
    "pt": Attribution(r"Em|No dia|Às", r"\bescreveu"),
    "nl": Attribution(r"Op", r"\bschreef"),
    "pl": Attribution(r"W dniu|Dnia", r"\bnapisał(?:\(a\)|a)?|\bpisze"),
    "sv": Attribution(r"Den|På", r"\bskrev"),  # Danish and Norwegian too ("tir. 18. apr. 2017 kl. 13:09 skrev")
    "fi": Attribution("", r"\bkirjoitti"),
    "ru": Attribution(
        "",
        r"\b(?:написал(?:\(а\)|а)?|пишет|писали|писал(?:\(а\)|а)?)",
        (r"(?:[а-яё]{2,3}\.?,?\s*)?\d{1,2}\s+[а-яё]{3,9}\.?\s+\d{4}\s*г\..{0,300}",),
    ),
    "uk": Attribution(
        "",
        r"\b(?:написав(?:\(ла\))?|написала|пише)",
        (r"(?:[а-яіїєґ]{2,3}\.?,?\s*)?\d{1,2}\s+[а-яіїєґ]{3,9}\.?\s+\d{4}\s*р\..{0,300}",),
    ),
    "ja": Attribution("", r"のメッセージ|のメール|は書きました", (r"\d{4}年\d{1,2}月\d{1,2}日.{0,300}",)),
    "zh": Attribution(r"在", r"写道|寫道|來信", (r".{0,200}于\s*\d{4}年\d{1,2}月\d{1,2}日.{0,200}(?:写道|寫道)",)),
}

# Outlook's quoted-header block: the first line names the sender, then at least two of
# date/recipient/subject follow. Lower-case, without the colon.
_FROM_NAMES: Final = frozenset(
    {"from", "von", "de", "da", "van", "från", "fra", "od", "от", "від", "lähettäjä", "feladó",
     "送信者", "差出人", "发件人", "寄件者", "보낸 사람", "afzender", "expéditeur", "remitente", "mittente"}
)  # fmt: skip
HEADER_NAMES: Final[dict[str, frozenset[str]]] = {
    "sent": frozenset(
        {"sent", "date", "gesendet", "datum", "envoyé", "date d'envoi", "enviado", "enviada", "fecha",
         "inviato", "data", "verzonden", "skickat", "sendt", "wysłano", "wysłany", "отправлено", "дата",
         "надіслано", "odesláno", "lähetetty", "dato", "message du", "送信日時", "日付", "发送时间", "時間",
         "日期", "傳送時間", "寄件日期", "發送時間"}
    ),
    "to": frozenset(
        {"to", "an", "à", "a", "para", "aan", "till", "til", "do", "кому", "komu", "vastaanottaja",
         "宛先", "收件人", "收件者", "받는 사람", "destinataire", "destinatario"}
    ),
    "subject": frozenset(
        {"subject", "betreff", "objet", "asunto", "oggetto", "assunto", "onderwerp", "ämne", "emne",
         "temat", "тема", "předmět", "aihe", "件名", "主题", "主旨", "제목", "sujet"}
    ),
    "cc": frozenset({"cc", "kopie", "copie", "copia", "kopia", "копия", "копія", "抄送", "副本"}),
}  # fmt: skip
_HEADER_LINE: Final = re.compile(r"\s*\*{0,2}([^\W\d_][^:：*\n]{0,30}?)\s*\*{0,2}\s*[:：]")
_ORIGINAL_MESSAGE: Final = re.compile(
    r"(?:\s|&nbsp;)*-{2,}(?:\s|&nbsp;)*(?:original message|ursprüngliche nachricht|original-nachricht|message d'origine"
    r"|mensaje original|messaggio originale|mensagem original|oorspronkelijk bericht|origineel bericht"
    r"|ursprungligt meddelande|oprindelig meddelelse|oprindelig besked|opprinnelig melding|wiadomość oryginalna"
    r"|oryginalna wiadomość|исходное сообщение|оригинальное сообщение|оригінальне повідомлення"
    r"|вихідне повідомлення|元のメッセージ|原始邮件|原始郵件|alkuperäinen viesti|původní zpráva)(?:\s|&nbsp;)*-{2,}"
    r"(?:\s|&nbsp;)*",
    re.IGNORECASE,
)
_FORWARD_MARKER: Final = re.compile(
    r"^\W{0,20}(?:forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato"
    r"|mensagem encaminhada|doorgestuurd bericht|vidarebefordrat meddelande|przekazana wiadomość"
    r"|пересылаемое сообщение|переслане повідомлення|転送されたメッセージ|转发的邮件|begin forwarded message"
    r"|anfang der weitergeleiteten nachricht|début du message réexpédié|forwarded message)\b.{0,40}$",
    re.IGNORECASE,
)
_UNDERSCORES: Final = re.compile(r"\s*_{8,}\s*")
_MOBILE_SIGNATURE: Final = re.compile(
    r"(?:sent from my .{1,40}|sent from (?:outlook|mail|yahoo mail|samsung|gmail|proton ?mail|aol)\b.{0,60}"
    r"|sent from (?:typeapp|blue ?mail|aqua ?mail|edison mail|nine|canary|spark|windows mail|xfinity connect"
    r"|zoho mail|icloud|mailbird|em ?client|the (?:all-new )?aol app|huawei|xiaomi)\b.{0,60}"
    r"|sent (?:with|via|using) .{1,40}|get outlook for (?:ios|android).{0,60}|von meinem .{1,40} gesendet"
    r"|gesendet (?:von|mit|vom) .{1,60}|envoyé (?:de|depuis) (?:mon|ma|l'application|outlook).{0,40}"
    r"|envoyé à partir de .{1,60}"
    r"|enviado desde (?:mi|el|la|outlook).{0,40}|inviato da .{1,40}|enviado (?:do|de|a partir do) .{1,40}"
    r"|verzonden (?:vanaf|met|vanuit) .{1,40}|wysłane (?:z|ze) .{1,40}|skickat från .{1,40}"
    r"|отправлено (?:с|из|со) .{1,40}|надіслано (?:з|із) .{1,40}|.{1,20}から送信|发自我的.{1,20}"
    r"|從我的.{1,20}傳送|发自.{1,20}(?:客户端|邮箱))",
    re.IGNORECASE,
)
_LIST_FOOTER: Final = re.compile(r"mailing list|unsubscribe|listinfo|abmelden|désabonner|darse de baja", re.IGNORECASE)
_CLOCK_OR_YEAR: Final = re.compile(r"\d{1,2}:\d{2}|(?<!\d)(?:19|20)\d{2}(?!\d)")
_EMAIL: Final = re.compile(r"[^\s<>]+@[^\s<>]+")
_SENTENCE_END: Final = (".", "!", "?", "。", "！", "？", ":", ";", ")")
MAX_ATTRIBUTION_LINE: Final = 300
MAX_SIGNATURE_LINES: Final = 12
COLONS: Final = (":", "：")


@dataclass(frozen=True, slots=True)
class _Patterns:
    prefixed: re.Pattern[str]  # "On … wrote:" in any chosen language
    prefixed_bare: re.Pattern[str]  # the same without its colon
    datelines: re.Pattern[str]
    verb_ending: re.Pattern[str]


@lru_cache(maxsize=32)
def _patterns(languages: tuple[str, ...]) -> _Patterns:
    chosen = [ATTRIBUTIONS[name] for name in (languages or tuple(ATTRIBUTIONS)) if name in ATTRIBUTIONS]
    if languages and "en" not in languages:
        chosen.append(ATTRIBUTIONS["en"])
    verbs = "|".join(f"(?:{item.verbs})" for item in chosen)
    prefixed = "|".join(
        rf"(?:{item.prefixes})\b.{{0,400}}(?:{item.verbs})[^:：]{{0,200}}" for item in chosen if item.prefixes
    )
    datelines = "|".join(line for item in chosen for line in item.datelines) or "(?!)"
    colon = r"\s*[:：]"
    return _Patterns(
        prefixed=re.compile(rf"(?:{prefixed}){colon}", re.IGNORECASE),
        prefixed_bare=re.compile(rf"(?:{prefixed})", re.IGNORECASE),
        datelines=re.compile(rf"(?:{datelines}){colon}", re.IGNORECASE),
        verb_ending=re.compile(rf".{{0,400}}(?:{verbs}).{{0,200}}{colon}", re.IGNORECASE),
    )


_INITIALS_QUOTE: Final = re.compile(r"\s{0,3}[^\W\d_]{1,4}>(?:\s|$)")


def _is_quoted(line: str) -> bool:
    """A ">" line, or The Bat!/FidoNet style with the author's initials ("СП> text")."""
    start = line.lstrip(" ")[:1]
    if start == ">":
        return True
    return start != "" and ">" in line[:9] and _INITIALS_QUOTE.match(line) is not None


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_text(line: str) -> bool:
    return not _is_blank(line) and not _is_quoted(line)


def _ends_with_colon(line: str) -> bool:
    return line.rstrip().endswith(COLONS) and len(line) <= MAX_ATTRIBUTION_LINE


def _next_content(lines: list[str], index: int, reach: int = 3) -> int | None:
    """Index of the first non-blank line after `index`, within `reach` lines."""
    for position in range(index + 1, min(index + 1 + reach, len(lines))):
        if not _is_blank(lines[position]):
            return position
    return None


def _block_start(lines: list[str], end: int) -> int:
    """First line of the paragraph that ends at `end`, looking back at most two lines."""
    start = end
    while start > 0 and end - start < 2 and _is_text(lines[start - 1]):
        start -= 1
    return start


def _joined(lines: list[str], start: int, end: int) -> str:
    return " ".join(line.strip() for line in lines[start : end + 1])


def _strong_start(lines: list[str], end: int, patterns: _Patterns) -> int | None:
    """Shortest paragraph tail that is an attribution by its own form."""
    for start in range(end, _block_start(lines, end) - 1, -1):
        candidate = _joined(lines, start, end)
        if patterns.prefixed.fullmatch(candidate) or patterns.datelines.fullmatch(candidate):
            return start
    return None


def _weak_start(lines: list[str], end: int) -> int:
    """Where a "<name> wrote:" line begins when it wrapped: extend over unfinished lines."""
    start, first = end, _block_start(lines, end)
    while start > first and _wraps_into_next(lines[start - 1]):
        start -= 1
    return start


_OPENING: Final = (",", "<", "(", '"', "'", "«", "[")


def _wraps_into_next(line: str) -> bool:
    """A line an attribution may have wrapped from: unfinished, and no short line of its own.
    Android's mail app writes its attribution right below the answer, with no blank line
    between ("Hello" / "02.04.2012 14:20 пользователь "Bob" <" / "bob@x> написал:"): the
    answer's last line is not part of it, even though it ends without a full stop."""
    text = line.strip()
    if text.endswith(_SENTENCE_END):
        return False
    return (len(text) >= 40 or text.endswith(_OPENING) or _EMAIL.search(text) is not None
            or _CLOCK_OR_YEAR.search(text) is not None)


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    quote_follows: bool


def find_attribution(lines: list[str], end: int, patterns: _Patterns) -> _Found | None:
    """An attribution ending at line `end` (which ends with a colon), or None."""
    following = _next_content(lines, end)
    quote_follows = following is not None and _is_quoted(lines[following])
    strong = _strong_start(lines, end, patterns)
    if strong is not None:
        return _Found(strong, quote_follows)
    start = _weak_start(lines, end)
    candidate = _joined(lines, start, end)
    if patterns.verb_ending.fullmatch(candidate):
        if quote_follows or _CLOCK_OR_YEAR.search(candidate):
            return _Found(start, quote_follows)
    elif _names_its_author(candidate, quote_follows):
        return _Found(start, quote_follows)
    return None


def _names_its_author(candidate: str, quote_follows: bool) -> bool:
    """An attribution in no language the table knows: an address, and a date first, or a time
    with a quote below it or with the address last before the colon."""
    if _EMAIL.search(candidate) is None:
        return False
    if _DATE_FIRST.match(candidate):
        return True
    return bool((quote_follows or _ADDRESS_LAST.search(candidate)) and _CLOCK_OR_YEAR.search(candidate))


# '... 2021, "John - Acme" <john@mail.acme.com>:' - a time, then the author's address just before the colon
_ADDRESS_LAST: Final = re.compile(r"<[^\s<>]+@[^\s<>]+>\s*[:：]\s*$")


# "30.09.2017, 18.30, "Name" <a@b>:" - a date first, then the author: any language's client
_DATE_FIRST: Final = re.compile(r"\s*(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2})\b")


def _opens_with_attribution(line: str, patterns: _Patterns) -> bool:
    """ "On <date>, <name> wrote: Hello…" run into the quoted text, as Yahoo's text part has it."""
    if len(line) > 2000:
        return False
    match = patterns.prefixed.match(line.strip())
    return match is not None and _CLOCK_OR_YEAR.search(match.group(0)) is not None


def _header_category(line: str) -> str | None:
    if len(line) > 1000:
        return None
    match = _HEADER_LINE.match(line)
    if match is None:
        return None
    name = match.group(1).strip().lower()
    first_word = name.split(" ", 1)[0]
    if name in _FROM_NAMES or first_word in _FROM_NAMES:
        return "from"
    for category, names in HEADER_NAMES.items():
        if name in names or first_word in names:
            return category
    return None


def _is_header_block(lines: list[str], index: int) -> bool:
    """From/Sent/To/Subject lines (any order, starting with From or Sent) at `index`."""
    first = _header_category(lines[index])
    if first not in ("from", "sent"):
        return False
    seen = {first}
    position = index + 1
    if position < len(lines) and lines[position].lstrip().startswith("<") and _EMAIL.search(lines[position]):
        position += 1  # "From: Human Resources" / "<hr@example.com>": the address wrapped to a line of its own
    while position < len(lines) and position <= index + 8:
        if not _is_blank(lines[position]):
            category = _header_category(lines[position])
            if category is None or category in seen:
                break
            seen.add(category)
        position += 1
    return "from" in seen and len(seen) >= 3 and bool(seen & {"sent", "subject"})


def _starts_history(lines: list[str], index: int) -> bool:
    """An Outlook separator or header block, or a forwarded message, begins at `index`."""
    line = lines[index]
    if len(line) > 200 or not any(mark in line for mark in (":", "-", "_", "：")):
        return False
    if _ORIGINAL_MESSAGE.fullmatch(line) or _FORWARD_MARKER.search(line):
        return True
    if _UNDERSCORES.fullmatch(line):
        following = _next_content(lines, index)
        return following is not None and _is_header_block(lines, following)
    return _is_header_block(lines, index)


def _mark_quotes(lines: list[str], patterns: _Patterns) -> list[bool]:
    """Which lines are quoted history."""
    quoted = [False] * len(lines)
    for index, line in enumerate(lines):
        if _is_quoted(line) or (index and quoted[index - 1] and _wrapped_quote_line(lines[index - 1], line)):
            quoted[index] = True
            continue
        if _is_blank(line):
            continue
        if _ends_with_mobile_signature(lines, index):
            following = _next_content(lines, index, reach=len(lines))
            if following is not None:
                quoted[following:] = [True] * (len(lines) - following)
            break
        found = (find_attribution(lines, index, patterns) if _ends_with_colon(line)
                 else _colonless(lines, index, patterns))
        if found is None and _opens_with_attribution(line, patterns):
            found = _Found(index, quote_follows=False)
        if found is not None and found.quote_follows:
            quoted[found.start : index + 1] = [True] * (index + 1 - found.start)
        elif found is not None or _starts_history(lines, index):
            start = _with_separator_above(lines, found.start if found is not None else index)
            quoted[start:] = [True] * (len(lines) - start)
            break
    return quoted


_SEPARATOR: Final = re.compile(r"\s*[=\-_*~#]{3,}\s*")


def _with_separator_above(lines: list[str], start: int) -> int:
    """History starting at `start`, with a line such as "====" just above it (blank lines apart)."""
    above = start - 1
    while above >= 0 and _is_blank(lines[above]):
        above -= 1
    return above if above >= 0 and _SEPARATOR.fullmatch(lines[above]) else start


def _colonless(lines: list[str], index: int, patterns: _Patterns) -> _Found | None:
    """ "On Wed, 14 Nov 2018 08:14:43 -0200 John Doe <john@doe.com> wrote", its colon lost."""
    text = lines[index].strip()
    if "@" not in text or len(text) > MAX_ATTRIBUTION_LINE or not text[:1].isalpha() or _EMAIL.search(text) is None:
        return None
    if patterns.prefixed_bare.fullmatch(text) and _CLOCK_OR_YEAR.search(text):
        return _Found(index, quote_follows=False)
    return None


def _wrapped_quote_line(previous: str, line: str) -> bool:
    """A quoted line that a client wrapped without quoting its rest: "> ... Nullam pharetra d" /
    "ignissim odio?" (long before, lower case after, no blank line between)."""
    return len(previous) >= 60 and line.lstrip()[:1].islower()


def _ends_with_mobile_signature(lines: list[str], index: int) -> bool:
    """"Sent from my iPhone" (or kin) with more text below: what follows is the message answered,
    which some mobile clients put below without quoting it."""
    if index + 1 >= len(lines) or not _is_blank(lines[index + 1]):  # set apart from what follows
        return False
    line = lines[index].strip()  # "Sent from my iPhone does not sync." is a sentence, not a signature
    return len(line) <= 100 and not line.endswith((".", "!", "?")) and _MOBILE_SIGNATURE.fullmatch(line) is not None


def _segments(lines: list[str], quoted: list[bool]) -> tuple[list[list[str]], list[str]]:
    """The author's runs of lines (split where quotes were cut) and the quoted lines."""
    segments: list[list[str]] = [[]]
    history: list[str] = []
    for line, is_history in zip(lines, quoted, strict=True):
        if is_history:
            history.append(line)
            if segments[-1]:
                segments.append([])
        else:
            segments[-1].append(line)
    return [segment for segment in segments if any(not _is_blank(line) for line in segment)], history


def _signature_start(segment: list[str]) -> int | None:
    for index, line in enumerate(segment):
        if line.rstrip("\r") in ("-- ", "--"):
            rest = [item for item in segment[index + 1 :] if not _is_blank(item)]
            return index if len(rest) <= MAX_SIGNATURE_LINES else None
    last = max(index for index, line in enumerate(segment) if not _is_blank(line))
    line = segment[last].strip()
    return last if len(line) <= 100 and _MOBILE_SIGNATURE.fullmatch(line) else None


def _cut_list_footer(segment: list[str]) -> tuple[list[str], list[str]]:
    """A mailing list's footer: a line of underscores, then "… mailing list" or "unsubscribe"."""
    for index in range(max(len(segment) - MAX_SIGNATURE_LINES, 0), len(segment)):
        if _UNDERSCORES.fullmatch(segment[index]):
            following = [line for line in segment[index + 1 : index + 4] if not _is_blank(line)]
            if any(_LIST_FOOTER.search(line) for line in following[:2]):
                return segment[:index], segment[index:]
    return segment, []


def _cut_signature(segment: list[str]) -> tuple[list[str], list[str]]:
    body, footer = _cut_list_footer(segment)
    start = _signature_start(body) if any(not _is_blank(line) for line in body) else None
    if start is None:
        return body, footer
    signature = body[start:]
    if signature[0].rstrip("\r") in ("-- ", "--"):
        signature = signature[1:]
    return body[:start], signature + footer


def _rejoin_wrapped_addresses(lines: list[str]) -> list[str]:
    """Gmail wraps a long attribution inside the address, leaving ">:" alone on the next line,
    where it reads as a quote: "... skrev Test user <test@example.com" / ">:". Joined back."""
    for index in range(1, len(lines)):
        if lines[index].strip() in (">:", ">：") and lines[index - 1].count("<") > lines[index - 1].count(">"):
            lines[index - 1] = lines[index - 1].rstrip() + lines[index].strip()
            lines[index] = ""
    return lines


def _tidy(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip("\n")


def split_reply(text: str, languages: tuple[str, ...] = ()) -> ReplyParts:
    """Split `text`; `languages` narrows the attribution forms looked for (empty: all)."""
    lines = _rejoin_wrapped_addresses(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    quoted = _mark_quotes(lines, _patterns(tuple(languages)))
    segments, history = _segments(lines, quoted)
    kept: list[str] = []
    signatures: list[str] = []
    for segment in segments:
        body, signature = _cut_signature(segment)
        kept.extend([*body, "", ""])
        signatures.extend(signature)
    return ReplyParts(_tidy(kept), _tidy(history), _tidy(signatures))
