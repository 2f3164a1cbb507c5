"""Mails per second of rule evaluation: 500 (and 100) generated rules against 10,000 generated mails.

    .venv/bin/python bench/rules.py [--mails 10000] [--rules 500] [--rounds 3] [--seed 7]

The rules mix what operators write: keyword lists over the subject and the text (several
languages), sender domains, header flags, attachment globs, regexes, any/all/not, weekday
and time, contact attributes; none says `stop`, so every rule is evaluated for every mail
(the worst case). The mails are `InboundMail` values built directly, so only the rules are
timed. The shipped `rules/` set is timed too. The goal (issue 8): at 100 rules the rules
cost under 10% of the intake path, which runs at >= 600 mails/s (1.67 ms a mail): so under
0.17 ms a mail.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.core.rules.engine import evaluate
from daemon.core.rules.load import load_rules
from daemon.core.rules.model import RuleInput, RuleSet
from daemon.core.values import Address, Attachment, ContactView, InboundMail

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
AGENTS = ["alice@example.com", "bob@example.com"]
GROUPS = ["l1", "l2"]
WORDS = ["printer", "invoice", "password", "vpn", "schedule", "playout", "ingest", "error", "down", "urgent",
         "question", "feature", "access", "account", "backup", "network", "server", "licence", "update", "crash",
         "не працює", "помилка", "рахунок", "пароль", "ошибка", "не работает", "счёт", "fehler", "rechnung",
         "drucker", "erreur", "facture", "outage", "slow", "timeout", "disk", "certificate", "mailbox", "quota"]
FILLER = ["hello", "please", "since", "this", "morning", "the", "system", "shows", "we", "tried", "again", "thanks",
          "добрий", "день", "після", "оновлення", "не", "можу", "bitte", "heute", "merci", "regards", "team"]
DOMAINS = [f"customer{n}.example" for n in range(40)]


def make_mail(rng: random.Random, number: int) -> InboundMail:
    words = rng.sample(WORDS, 3)
    subject = " ".join([rng.choice(FILLER), words[0], rng.choice(FILLER), words[1]]).capitalize()
    text = " ".join(rng.choices(FILLER, k=rng.randint(20, 80)) + words) + "."
    headers = [("from", "x"), ("to", "support@example.com"), ("subject", subject)]
    if rng.random() < 0.1:
        headers.append(("x-priority", "1 (Highest)"))
    attachments = (Attachment("report.pdf", "application/pdf", 1000, "0" * 64, b""),) if rng.random() < 0.2 else ()
    sender = Address(f"user{number}@{rng.choice(DOMAINS)}", "User")
    return InboundMail(
        message_id=f"{number}@bench", subject=subject, sender=sender, to=(Address("support@example.com"),), cc=(),
        reply_to=(), date=NOW - timedelta(minutes=number), in_reply_to=(), references=(), headers=tuple(headers),
        body_text=text + "\n\n> quoted history\n", new_text=text, quoted_text="> quoted history", signature="",
        attachments=attachments, raw_sha256="0" * 64, raw_size=2000)


def _keywords(rng: random.Random, count: int) -> str:
    return "[" + ", ".join(f'"{w}"' for w in rng.sample(WORDS, count)) + "]"


RULE_SHAPES: list[Callable[[random.Random], str]] = [
    lambda rng: f'when.subject = {{ contains = {_keywords(rng, 3)} }}\nthen.tags = ["t{rng.randint(0, 50)}"]',
    lambda rng: f'when.new_text = {{ contains = {_keywords(rng, 5)} }}\nthen.urgency = "high"',
    lambda rng: ("[rule.when]\nany = [\n  { subject = { contains = " + _keywords(rng, 4) + " } },\n"
                 "  { new_text = { contains = " + _keywords(rng, 4) + " } },\n]\n[rule.then]\ntype = \"question\""),
    lambda rng: f'when.sender_domain = {_domains(rng)}\nthen.impact = "high"\nthen.tags = ["vip"]',
    lambda rng: (f"when.subject = {{ regex = '\\b({rng.choice(WORDS)}|{rng.choice(WORDS)})\\b' }}\n"
                 f'then.category = "c{rng.randint(0, 9)}"'),
    lambda rng: 'when."header.x-priority" = { starts_with = ["1", "2"] }\nthen.urgency = "high"',
    lambda rng: 'when.is_new = true\nwhen.attachment_name = { glob = "*.pdf" }\nthen.tags = ["pdf"]',
    lambda rng: 'when."contact.contract" = "expired"\nthen.hold = "contract expired"',
    lambda rng: f'when.not = {{ subject = {{ contains = "{rng.choice(WORDS)}" }} }}\nthen.tags = ["n"]',
    lambda rng: ('when.weekday = ["sat", "sun"]\nwhen.time = { between = ["18:00", "08:00"] }\n'
                 'then.tags = ["after-hours"]'),
    lambda rng: (f'when.subject = {{ contains = "{rng.choice(WORDS)}" }}\n'
                 f'then.assign = {{ round_robin = "{rng.choice(GROUPS)}" }}'),
]


def _domains(rng: random.Random) -> str:
    return "[" + ", ".join(f'"{d}"' for d in rng.sample(DOMAINS, 3)) + "]"


def make_rules(rng: random.Random, count: int) -> str:
    parts = []
    for index in range(count):
        shape = RULE_SHAPES[index % len(RULE_SHAPES)]
        parts.append(f'[[rule]]\nname = "rule-{index}"\n{shape(rng)}\n')
    return "\n".join(parts)


def compile_rules(text: str) -> tuple[RuleSet, float]:
    started = time.perf_counter()
    rules, problems = load_rules({"bench.toml": text}, AGENTS, GROUPS, ["acknowledgement", "refusal"])
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems[:10]))
    return rules, time.perf_counter() - started


def time_rules(rules: RuleSet, inputs: list[RuleInput], rounds: int) -> float:
    """Seconds for one pass over all inputs, best of `rounds`."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for subject in inputs:
            evaluate(rules, subject)
        best = min(best, time.perf_counter() - started)
    return best


def report(label: str, rules: RuleSet, inputs: list[RuleInput], rounds: int) -> None:
    seconds = time_rules(rules, inputs, rounds)
    per_mail = seconds / len(inputs) * 1e6
    print(f"{label:<28} {len(rules.rules):>4} rules  {len(inputs) / seconds:>10,.0f} mails/s  {per_mail:>8.1f} µs/mail"
          f"  ({per_mail / 1666.7 * 100:.1f}% of a 600 mails/s intake)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    contact = ContactView("user@customer1.example", attributes=(("contract", "active"),))
    inputs = [RuleInput(make_mail(rng, n), "support", None, contact if n % 10 == 0 else None, NOW, "Europe/Kyiv")
              for n in range(args.mails)]
    text = make_rules(rng, args.rules)
    rules, took = compile_rules(text)
    print(f"compiled {len(rules.rules)} rules in {took * 1000:.0f} ms; {len(inputs):,} mails; best of {args.rounds}")
    report("generated", rules, inputs, args.rounds)
    report("generated, first 100", RuleSet(rules.rules[:100], rules.modules), inputs, args.rounds)
    shipped = Path(__file__).resolve().parent.parent / "rules"
    files = {str(p): p.read_text(encoding="utf-8") for p in sorted(shipped.glob("*.toml"))}
    default, problems = load_rules(files, AGENTS, GROUPS, ["acknowledgement", "refusal"])
    if not problems:
        report("shipped rules/", default, inputs, args.rounds)


if __name__ == "__main__":
    main()
