"""The values of the rules engine: what a rule sees, what it decides, and the compiled rules.

Rules are data in `rules/*.toml`; `load.py` compiles them into `Rule` values once (regexes
compiled, names and arguments checked, FILE:LINE kept), `engine.py` evaluates them for one
mail, and `apply.py` turns the outcome into ticket changes and events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from daemon.core.values import ContactView, InboundMail, TicketView

Values = tuple[str, ...]
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class RuleInput:
    """What the rules look at: the mail, where it came, and what is known of its ticket and sender."""

    mail: InboundMail
    mailbox: str
    ticket: TicketView | None  # None: the mail opens a new ticket; else the ticket it follows up
    contact: ContactView | None
    now: datetime
    timezone: str = "UTC"  # for the weekday, time and date conditions


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule's verdict for one mail: matched, or the condition that failed, in words."""

    rule: str
    file: str
    line: int
    matched: bool
    why: str  # "matched", or the condition that failed


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What the rules decided for one mail; `apply.apply_outcome` turns it into ticket changes."""

    trace: tuple[RuleTrace, ...] = ()
    fired: tuple[str, ...] = ()  # names of the rules that matched, in order
    fields: tuple[tuple[str, str], ...] = ()  # (type|impact|urgency|priority|category|group|owner|sla_policy, value)
    add_tags: tuple[str, ...] = ()
    assign: tuple[str, str] | None = None  # ("round_robin", GROUP) or ("module", MODULE)
    acknowledgement: str | None = None  # None: the default; "": suppress it; else the template kind to use
    answer: tuple[str, str] | None = None  # answer and close: (template kind, reason)
    third_party: str | None = None  # an address to send the ticket to
    hold: str | None = None  # hold for an agent: the reason
    drop: str | None = None  # drop the mail (with an event): the reason
    alert: tuple[str, str] | None = None  # monitoring: ("problem" | "recovery", alert key)
    effects: tuple[tuple[str, str, str], ...] = ()  # (rule, "FILE:LINE", what it did in words), in order
    modules: tuple[tuple[str, str], ...] = ()  # the rule set's module -> agent table, to resolve assign


class RuleError(ValueError):
    """A rule's argument is wrong; the message says what is wrong and what is expected."""


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem found while compiling one file: where (a key path), what, and a value to find its line."""

    path: KeyPath
    message: str
    hint: str = ""


# ----------------------------------------------------------------------------------------
# Compiled rules


WORD = re.compile(r"\w+")
WordIndex = tuple[frozenset[str], str]  # the words of a field, and " the words joined by spaces "


def word_index(values: Values) -> WordIndex:
    """The words of a field's values (split at every non-word character), for the `words` operator."""
    words: list[str] = []
    for value in values:
        words += WORD.findall(value)
        words.append("\n")  # a phrase never runs from one value into the next
    return frozenset(words), " " + " ".join(words) + " "


class FieldValues:
    """The values of the fields the rules ask about for one mail, each computed once.

    Mutable, but it lives only for one evaluation and never leaves the engine.
    """

    __slots__ = ("_cache", "_words", "subject")

    def __init__(self, subject: RuleInput) -> None:
        self.subject = subject
        self._cache: dict[str, Values] = {}
        self._words: dict[str, WordIndex] = {}

    def get(self, ref: FieldRef) -> Values:
        found = self._cache.get(ref.key)
        if found is None:
            found = ref.extract(self.subject, ref.param)
            if ref.fold:
                found = tuple(value.casefold() for value in found)
            self._cache[ref.key] = found
        return found

    def words(self, ref: FieldRef) -> WordIndex:
        found = self._words.get(ref.key)
        if found is None:
            found = self._words[ref.key] = word_index(self.get(ref))
        return found


Extractor = Callable[[RuleInput, str], Values]
Test = Callable[[Values], bool]
Check = Callable[[FieldValues], "RuleTrace | None"]  # None: the condition holds; else the failure


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field a condition reads: `key` names its cached values (field, parameter, folding)."""

    key: str
    name: str  # as the rule file says it: "subject", "header.x-mailer", "contact.contract"
    extract: Extractor
    param: str = ""  # header name, contact attribute, ticket field or timezone
    fold: bool = False  # values case-folded (case-insensitive comparison)


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: `check` returns None when it holds, else the rule's failure trace."""

    check: Check
    says: str  # the condition in words, for traces and the README


class OutcomeDraft:
    """The outcome while the rules run; actions write into it. Lives for one evaluation."""

    __slots__ = ("acknowledgement", "alert", "answer", "assign", "drop", "effects", "fields", "hold", "tags",
                 "third_party")

    def __init__(self) -> None:
        self.fields: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.assign: tuple[str, str] | None = None
        self.acknowledgement: str | None = None
        self.answer: tuple[str, str] | None = None
        self.third_party: str | None = None
        self.hold: str | None = None
        self.drop: str | None = None
        self.alert: tuple[str, str] | None = None
        self.effects: list[tuple[str, str, str]] = []


Act = Callable[[OutcomeDraft, FieldValues], str]  # does its part of the outcome; returns it in words


@dataclass(frozen=True, slots=True)
class Alert:
    """How a monitoring rule computes the alert key: a regex over a field and a key template."""

    state: str  # "problem" | "recovery"
    field: FieldRef
    pattern: re.Pattern[str]
    key: str  # "{host}/{service}"; "" = the groups joined by "/"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    file: str
    line: int
    condition: Condition | None  # None: always matches
    actions: tuple[Act, ...]
    matched: RuleTrace  # the trace when it matches, built once at load
    stop: bool = False
    description: str = ""
    alert: Alert | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    modules: tuple[tuple[str, str], ...] = ()  # module name -> the agent who owns it
    round_robin: tuple[str, ...] = ()  # the groups rules assign round robin (intake looks up their last owner)
