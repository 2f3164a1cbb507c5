"""Shared pieces of the benchmarks: realistic generated customer mail, temp sites, timing."""

from __future__ import annotations

import random
import resource
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUBJECTS = ["Printer on floor {n} prints nothing", "Cannot log in after the update", "VPN drops every hour",
            "Не працює вхід до системи", "Invoice {n} is wrong", "Scheduling module crashes on save",
            "Request: a new user account for {name}", "Ingest service stopped", "Frage zur Lizenz {n}",
            "Playout lags by {n} frames"]
NAMES = ["Olena Petrenko", "Taras Kovalenko", "Anna Schmidt", "John Miller", "Марія Шевченко", "Li Wei",
         "Pierre Dubois", "Sofia Rossi"]
BODY = ("Hello,\n\n{line}\nIt started this morning at about {hour}:00 and happens on every workstation in "
        "room {n}.\nWe already restarted the machines.\n\nBest regards,\n{name}\n")


def customer_mail(index: int, seed: int = 7) -> bytes:
    rng = random.Random(seed * 100_003 + index)
    name = rng.choice(NAMES)
    subject = rng.choice(SUBJECTS).format(n=rng.randint(1, 99), name=name)
    mail = EmailMessage(policy=SMTP)
    mail["From"] = f"{name} <user{index}@customer{index % 50}.example>"
    mail["To"] = "support@example.com"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(seconds=index))
    mail["Message-ID"] = f"<bench-{seed}-{index}@customer{index % 50}.example>"
    text = BODY.format(line=subject, hour=rng.randint(7, 11), n=rng.randint(1, 40), name=name)
    mail.set_content(text)
    if index % 3 == 0:
        mail.add_alternative(f"<html><body><p>{text.replace(chr(10), '<br>')}</p></body></html>", subtype="html")
    return mail.as_bytes()


def peak_rss_mb(children: bool = False) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    return usage.ru_maxrss / 1024


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else 0.0
