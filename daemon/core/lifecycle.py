"""The status machine of a ticket, and what a customer's mail does to it.

    new → open (first agent action) → waiting_customer / waiting_third_party → open
        → resolved → closed;  resolved → open (the customer's reply reopens);  any → cancelled

A closed or cancelled ticket never changes again; a later mail follows the closed-ticket
policy instead (decided in `decide.py`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import datetime

from daemon.core.values import EventDraft, Status, TicketView

_ACTIVE = {Status.NEW, Status.OPEN, Status.WAITING_CUSTOMER, Status.WAITING_THIRD_PARTY}
ALLOWED: dict[Status, frozenset[Status]] = {
    **{s: frozenset(_ACTIVE | {Status.RESOLVED, Status.CLOSED, Status.CANCELLED}) - {s, Status.NEW}
       for s in _ACTIVE},
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED, Status.CANCELLED}),
    Status.CLOSED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def can_change(current: Status, wanted: Status) -> bool:
    return wanted in ALLOWED[current]


def with_status(ticket: TicketView, status: Status, now: datetime) -> TicketView:
    """The ticket in its new status, with the timestamps that go with it (no checks)."""
    if status == ticket.status:
        return ticket
    resolved_at = ticket.resolved_at
    closed_at = ticket.closed_at
    if status is Status.RESOLVED:
        resolved_at = now
    elif status in (Status.CLOSED, Status.CANCELLED):
        closed_at = now
        resolved_at = resolved_at or (now if status is Status.CLOSED else None)
    elif status in _ACTIVE:
        resolved_at = closed_at = None
    return replace(ticket, status=status, status_changed_at=now, resolved_at=resolved_at, closed_at=closed_at)


def status_event(before: TicketView, after: TicketView, actor: str, why: str) -> EventDraft:
    return EventDraft(actor=actor, kind="status", detail=(
        ("from", before.status.value), ("to", after.status.value), ("why", why)))


def reopen_closed_allowed(ticket: TicketView, within_days: float, now: datetime) -> bool:
    if ticket.status is not Status.CLOSED or ticket.closed_at is None:
        return False
    return (now - ticket.closed_at).total_seconds() <= within_days * 86400


# ----------------------------------------------------------------------------------------
# "Thanks, that fixed it": a reply that confirms a resolution closes the ticket.

THANKS_PHRASES: tuple[str, ...] = (
    # English
    "thanks", "thank you", "thank you very much", "many thanks", "thanks a lot", "thx", "ty", "cheers",
    "that fixed it", "it works", "it works now", "works now", "working now", "all good", "problem solved",
    "issue resolved", "resolved", "solved", "you can close", "please close", "ok to close", "perfect",
    "great", "confirmed", "much appreciated",
    # German, French, Spanish, Italian, Dutch, Portuguese, Polish, Swedish
    "danke", "vielen dank", "danke schön", "funktioniert", "es funktioniert", "funktioniert jetzt", "erledigt",
    "merci", "merci beaucoup", "ça marche", "ça fonctionne", "résolu", "gracias", "muchas gracias", "funciona",
    "resuelto", "grazie", "grazie mille", "funziona", "risolto", "bedankt", "dank je", "het werkt", "opgelost",
    "obrigado", "obrigada", "funciona agora", "resolvido", "dziękuję", "dzięki", "działa", "tack", "tack så mycket",
    "det fungerar", "löst",
    # Ukrainian, Russian
    "дякую", "щиро дякую", "дуже дякую", "все працює", "працює", "вирішено", "можна закривати",
    "спасибо", "спасибо большое", "большое спасибо", "благодарю", "всё работает", "все работает", "работает",
    "решено", "можно закрывать",
    # Japanese, Chinese
    "ありがとうございます", "ありがとう", "解決しました", "谢谢", "非常感谢", "已解决", "问题解决了",
)
_NEGATIONS = re.compile(
    r"\b(not|no longer|still|(?<!works )(?<!working )again|but|however|doesn'?t|don'?t|isn'?t|won'?t|can'?t|"
    r"cannot|fail\w*|error|"
    r"nicht|kein\w*|noch|immer noch|aber|pas|toujours|mais|no funciona|todavía|pero|ancora|però|niet|nog|"
    r"nie|wciąż|ale|inte|fortfarande|men|не|ні|ще|досі|але|но|всё ещё|все еще|снова|знову|ещё)\b",
    re.IGNORECASE,
)
_MAX_THANKS_CHARS = 160


_SIGN_OFF = re.compile(
    r"(best|kind|warm)?\s*regards|best|cheers|sincerely|yours sincerely|best wishes|"
    r"(mit )?(freundlichen|viele|beste|liebe) grüße|(viele )?grüße|gruß|lg|mfg|(bien )?cordialement|"
    r"saludos( cordiales)?|(cordiali )?saluti|met vriendelijke groet(en)?|groeten|pozdrawiam|"
    r"(med )?vänliga hälsningar|hälsningar|mvh|з повагою|с уважением|всего доброго",
    re.IGNORECASE,
)


def without_sign_off(text: str) -> str:
    """The text above a closing line ("Best regards", "Viele Grüße", …): the name, title and
    address lines of a signature written without a "-- " separator are not the message."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if index and _SIGN_OFF.fullmatch(line.strip().rstrip(",.!").strip()):
            return "\n".join(lines[:index])
    return text


def is_thanks(new_text: str, extra_phrases: tuple[str, ...] = ()) -> str | None:
    """The phrase that makes this short reply a plain thanks/confirmation, or None."""
    text = _normalise(without_sign_off(new_text))
    if not text or len(text) > _MAX_THANKS_CHARS or "?" in text or _NEGATIONS.search(text):
        return None
    words = set(re.findall(r"\w+", text))
    for phrase in sorted({*THANKS_PHRASES, *(p.lower() for p in extra_phrases)}, key=len, reverse=True):
        phrase_words = re.findall(r"\w+", phrase)
        if phrase_words and _contains_words(text, phrase_words, words):
            return phrase
    return None


def _contains_words(text: str, phrase_words: list[str], words: set[str]) -> bool:
    if all(w in words for w in phrase_words):
        return bool(re.search(r"\b" + r"\W+".join(map(re.escape, phrase_words)) + r"\b", text))
    joined = "".join(phrase_words)
    return _written_without_spaces(joined) and joined in text


def _written_without_spaces(text: str) -> bool:
    return all(unicodedata.name(c, "").startswith(("CJK", "HIRAGANA", "KATAKANA")) for c in text)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)
