"""`postdesk demo`: the embedded default at work, with no server anywhere.

Writes a config (SQLite, a Maildir mailbox, the Maildir outbox) into a folder, drops sample
customer mails into the Maildir the way an MTA would, runs the daemon's pass, lets a
customer and an agent answer the mails Postdesk sent, runs again, and shows the tickets
and every mail that would have been sent.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import tempfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from daemon.app import App
from daemon.config import load_config
from daemon.runtime import run_once
from daemon.store.queries import list_tickets
from daemon.templates import shipped_rules_dir, shipped_templates_dir

CONFIG = """# Written by `postdesk demo`: the embedded default (SQLite, Maildir in, Maildir out).
[database]
url = "sqlite:///postdesk.db"

[instance]
secret = "demo-secret-not-for-production-0123456789"
subject_prefix = "Support"
name = "Example Support"

[[mailboxes]]
name = "help"
address = "help@example.com"
  [mailboxes.maildir]
  path = "mail/help"

[outbound]
transport = "maildir"
maildir = "outbox"

[[agents]]
email = "alice@example.com"
name = "Alice Agent"
groups = ["l1"]

[[agents]]
email = "bob@example.com"
name = "Bob Builder"
groups = ["l2"]

[paths]
templates = "{templates}"
rules = "{rules}"
"""

CUSTOMER_MAILS = [
    ("Olena Petrenko <olena@customer.example>", "Printer on floor 2 prints nothing",
     "Hello,\n\nthe printer on floor 2 prints nothing since this morning. The display says\n"
     "'ready' but jobs vanish from the queue.\n\nOlena\n"),
    ("Тарас Коваленко <taras@customer.example>", "Не працює вхід до системи",
     "Добрий день!\n\nПісля оновлення не можу увійти до системи: пише «невірний пароль».\n\nТарас\n"),
    ("Newsletter <news@vendor.example>", "Our November product update",
     "Read about everything new this month.\n"),
]


def message(sender: str, to: str, subject: str, body: str, when: datetime, **headers: str) -> bytes:
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail["Date"] = format_datetime(when)
    mail["Message-ID"] = make_msgid(domain="customer.example")
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail.as_bytes()


def run_demo(folder: str | None) -> int:
    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="postdesk-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "postdesk.toml").write_text(CONFIG.format(templates=shipped_templates_dir(), rules=shipped_rules_dir()),
                                        encoding="utf-8")
    app = App.from_config(load_config(root / "postdesk.toml"))
    (root / "mail").mkdir(exist_ok=True)
    inbox = mailbox.Maildir(str(root / "mail" / "help"), create=True)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        print(f"Postdesk demo in {root}")
        step("1. Three mails arrive in the support Maildir (as Postfix would deliver them)")
        for index, (sender, subject, body) in enumerate(CUSTOMER_MAILS):
            extra = {"List_Unsubscribe": "<mailto:leave@vendor.example>"} if "news@" in sender else {}
            inbox.add(message(sender, "help@example.com", subject, body, now + timedelta(seconds=index), **extra))
        pass_and_report(app, now + timedelta(minutes=1))
        step("2. Olena adds a detail; Alice answers her, resolves Taras's ticket and closes the newsletter")
        for raw in answers_to_outbox(root / "outbox", now + timedelta(minutes=5)):
            inbox.add(raw)
        pass_and_report(app, now + timedelta(minutes=6))
        step("3. Taras thanks for the solution: his resolved ticket closes by itself")
        for raw in thanks_to_resolution(root / "outbox", now + timedelta(minutes=30)):
            inbox.add(raw)
        pass_and_report(app, now + timedelta(minutes=31))
        step("4. The tickets now")
        show_tickets(app)
        step("5. Every mail Postdesk sent (in the outbox Maildir)")
        show_outbox(root / "outbox")
        print(f"\nEverything is in {root}: postdesk.toml, postdesk.db, mail/help, outbox.")
        print(f"Look closer with:  postdesk -c {root / 'postdesk.toml'} tickets show 2")
    finally:
        app.close()
    return 0


def step(title: str) -> None:
    print(f"\n== {title}")


def pass_and_report(app: App, when: datetime) -> None:
    intake, sent = run_once(app, lambda: when)
    print(f"   the daemon's pass: {intake.taken} mail(s) taken in, {intake.quarantined} quarantined; "
          f"{sent.sent} mail(s) sent")


ALICE = "Alice Agent <alice@example.com>"
AGENT_ANSWERS = {  # what Alice writes back to each new-ticket notification, by a word of its subject
    "Printer": "Hello Olena,\n\nI have restarted the print spooler; please try again.\n\nAlice\n",
    "системи": "#resolve password-reset\n#type question\n\nДобрий день, Тарасе!\n\nПароль скинуто: "
               "увійдіть з тимчасовим паролем, який надійшов SMS.\n\nАліса\n",
    "November": "#close\n#note\nA vendor newsletter, nothing to do.\n",
}


def answers_to_outbox(outbox: Path, when: datetime) -> list[bytes]:
    """The customer answers the first acknowledgement; Alice answers her notifications."""
    answers: list[bytes] = []
    for mail in sent_mails(outbox):
        subject, to, kind = str(mail["Subject"]), str(mail["To"]), str(mail["X-Postdesk-Kind"])
        headers = {"In_Reply_To": str(mail["Message-ID"]), "References": str(mail["Message-ID"])}
        if "olena@" in to and kind == "acknowledgement" and not any(b"olena@" in a for a in answers):
            answers.append(message("Olena Petrenko <olena@customer.example>", "help@example.com", f"Re: {subject}",
                                   "It is the HP LaserJet in room 2.14, in case that helps.\n", when, **headers))
        elif "alice@" in to and kind == "agent_new_ticket":
            text = next(t for word, t in AGENT_ANSWERS.items() if word in subject)
            answers.append(message(ALICE, "help@example.com", f"Re: {subject}", text,
                                   when + timedelta(seconds=len(answers)), **headers))
    return answers


def thanks_to_resolution(outbox: Path, when: datetime) -> list[bytes]:
    for mail in sent_mails(outbox):
        if "taras@" in str(mail["To"]) and mail["X-Postdesk-Kind"] == "resolution":
            headers = {"In_Reply_To": str(mail["Message-ID"]), "References": str(mail["Message-ID"])}
            return [message("Тарас Коваленко <taras@customer.example>", "help@example.com",
                            f"Re: {mail['Subject']}", "Дякую, все працює!\n", when, **headers)]
    return []


def sent_mails(outbox: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            for f in sorted_outbox(outbox)]


def sorted_outbox(outbox: Path) -> list[Path]:
    files = [f for sub in ("new", "cur") for f in (outbox / sub).glob("*") if f.is_file()]
    return sorted(files, key=lambda f: (f.stat().st_mtime_ns, f.name))


def show_tickets(app: App) -> None:
    with app.db.read() as session:
        for ticket in list_tickets(session):
            print(f"   #{ticket['number']:<4} {ticket['status']:<18} {ticket['priority']:<7} "
                  f"{ticket['requester']:<26} {ticket['subject']}")


def show_outbox(outbox: Path) -> None:
    for mail in sent_mails(outbox):
        body = mail.get_body(preferencelist=("plain",))
        first = body.get_content().strip().splitlines()[0] if body is not None else ""
        auto = mail.get("Auto-Submitted", "no (a person's reply)")
        print(f"   To: {mail['To']}\n     Subject: {mail['Subject']}\n     Kind: {mail['X-Postdesk-Kind']}, "
              f"Auto-Submitted: {auto}\n     | {first[:76]}")
