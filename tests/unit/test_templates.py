"""Every mail kind renders, in English and in Ukrainian, into a well-formed, threaded MIME mail;
customer text stays data (never template source, never a header); an operator's file wins over
the shipped one; check-config names the broken file and line."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from daemon.core import tokens
from daemon.core.compose import Envelope, Renderer, compose, compose_one
from daemon.core.values import (
    Address,
    LifecyclePolicy,
    MailboxView,
    OutboundDraft,
    OutboundKind,
    OutboundMail,
    Setup,
    Status,
    TicketView,
)
from daemon.templates import check_templates, load_sources, shipped_templates_dir

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
DOMAIN = "support.example.com"
SETUP = Setup(secret=b"template-test-secret-0123", domain=DOMAIN, subject_prefix="Support",
              instance_name="ACME Support", languages=("en", "uk"),
              mailboxes=(MailboxView("help", f"help@{DOMAIN}"),))
ENVELOPE = Envelope(f"help@{DOMAIN}", "ACME Support")
OLENA = Address("olena@customer.example", "Олена Петренко")
ALICE = Address(f"alice@{DOMAIN}", "Alice Smith")
VENDOR = Address("support@vendor.example", "Vendor Support")
ANSWERED = "m1@customer.example"  # the customer's mail these answers reply to
SUBJECT = "Не працює вхід до системи"
TICKET = TicketView(number=1234, subject=SUBJECT, status=Status.OPEN, requester=OLENA,
                    created_at=NOW - timedelta(hours=2), status_changed_at=NOW - timedelta(hours=1),
                    owner=ALICE.email, group="l1", thread_ids=(ANSWERED,))
VARIABLES = (("text", "Перезапустіть, будь ласка, браузер."), ("change", "open → resolved"),
             ("error", "unknown command #reslove"), ("line", "#reslove"), ("reason", "contract expired"),
             ("results", "status: open → resolved\npriority: medium → high"), ("close_at", "2026-03-09"))
EXTRA: dict[str, Any] = {
    "mail": {"from": OLENA.email, "name": OLENA.name, "subject": SUBJECT, "text": "Пише «невірний пароль»."},
    "commands": [{"name": "resolve", "syntax": "#resolve [CODE] TEXT", "help": "resolve with a solution"},
                 {"name": "assign", "syntax": "#assign AGENT|GROUP", "help": "give it to an agent or a group"}],
}
HTML_KINDS = {OutboundKind.ACKNOWLEDGEMENT, OutboundKind.AGENT_REPLY, OutboundKind.INFO_REQUEST,
              OutboundKind.STATUS_CHANGE, OutboundKind.RESOLUTION, OutboundKind.CLOSURE,
              OutboundKind.AUTOCLOSE_WARNING, OutboundKind.AUTOCLOSE_NOTICE, OutboundKind.REOPEN_NOTICE,
              OutboundKind.CLOSED_TICKET, OutboundKind.REFUSAL}
AGENT_KINDS = {OutboundKind.AGENT_NEW_TICKET, OutboundKind.AGENT_ASSIGNMENT, OutboundKind.AGENT_UPDATE,
               OutboundKind.COMMAND_RESULT, OutboundKind.COMMAND_ERROR, OutboundKind.ESCALATION}
LANGUAGES = ("en", "uk")
SHIPPED = Renderer(load_sources(None)[0])


def draft(kind: OutboundKind, language: str = "en", **fields: Any) -> OutboundDraft:
    """A draft as the core makes it: agents are addressed by name, the customer gets auto mail
    except for an agent's reply, and everything answers the customer's mail."""
    if kind in AGENT_KINDS:
        to, agent, sender = (ALICE,), ALICE.email, ""
    elif kind is OutboundKind.THIRD_PARTY:
        to, agent, sender = (VENDOR,), None, ALICE.name
    else:
        to, agent, sender = (OLENA,), None, ALICE.name if kind is OutboundKind.AGENT_REPLY else ""
    values: dict[str, Any] = {"kind": kind, "to": to, "language": language, "agent": agent, "sender_name": sender,
                              "auto": kind is not OutboundKind.AGENT_REPLY, "in_reply_to": ANSWERED,
                              "variables": VARIABLES}
    return OutboundDraft(**(values | fields))


def render(kind: OutboundKind, language: str = "en", ticket: TicketView = TICKET, setup: Setup = SETUP,
           renderer: Renderer = SHIPPED, extra: dict[str, Any] | None = None,
           **fields: Any) -> tuple[OutboundMail, EmailMessage]:
    mail = compose_one(draft(kind, language, **fields), ticket, setup, renderer, ENVELOPE, "seed", NOW,
                       EXTRA if extra is None else extra)
    message = email.message_from_bytes(mail.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return mail, message


def plain(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # the wire has CRLF


def html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # the wire has CRLF


class _Nesting(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "hr", "link", "input"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.wrong: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.wrong.append(tag)


def well_nested(page: str) -> bool:
    parser = _Nesting()
    parser.feed(page)
    parser.close()
    return not parser.open and not parser.wrong


def visible(page: str) -> str:
    """The words a reader sees in an HTML part, on one line."""
    return " ".join(unescape(re.sub(r"<[^>]+>", "", page)).split())


# ---------------------------------------------------------------------------------------------
# The shipped set


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_kind_has_a_subject_a_text_and_for_customers_an_html_template(language: str) -> None:
    folder = shipped_templates_dir() / language
    for kind in OutboundKind:
        assert (folder / f"{kind.value}.subject.j2").is_file(), kind
        assert (folder / f"{kind.value}.txt.j2").is_file(), kind
        assert (folder / f"{kind.value}.html.j2").is_file() == (kind in HTML_KINDS), kind


def test_shipped_html_has_no_scripts_no_external_assets_and_never_marks_text_safe() -> None:
    for file in shipped_templates_dir().glob("*/*.j2"):
        source = file.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b|autoescape\s+false", source), file
        if file.name.endswith(".html.j2"):
            assert "<script" not in source.lower() and " src=" not in source.lower(), file
            assert not re.search(r"https?://", source), file
            assert f'<html lang="{file.parent.name}"' in source, file


def test_the_shipped_templates_pass_the_check() -> None:
    assert check_templates(None) == []


# ---------------------------------------------------------------------------------------------
# Every kind, both languages: a valid mail with the headers a help desk must send


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(OutboundKind), ids=lambda kind: kind.value)
def test_every_kind_renders_into_a_well_formed_mail(kind: OutboundKind, language: str) -> None:
    mail, message = render(kind, language)
    assert mail.raw.isascii() and mail.raw.count(b"\n") == mail.raw.count(b"\r\n")
    assert all(not part.defects for part in message.walk())

    assert "[Support #1234]" in message["Subject"] and SUBJECT in message["Subject"]
    sender = message["From"].addresses[0]
    signed = kind in (OutboundKind.AGENT_REPLY, OutboundKind.THIRD_PARTY)  # sent with the agent's name
    assert (sender.addr_spec, sender.display_name) == (
        ENVELOPE.address, f"{ALICE.name} via ACME Support" if signed else "ACME Support")
    recipient = draft(kind).to[0]
    assert [(a.addr_spec, a.display_name) for a in message["To"].addresses] == [(recipient.email, recipient.name)]
    assert message["Reply-To"].addresses[0].addr_spec == ENVELOPE.address
    assert parsedate_to_datetime(message["Date"]) == NOW

    assert message["Message-ID"] == f"<{mail.message_id}>" and message["Message-ID"].endswith(f"@{DOMAIN}>")
    token = tokens.read_token(SETUP.secret, mail.message_id, frozenset({DOMAIN}))
    assert token is not None and token.number == 1234
    assert token.agent_hash == (tokens.agent_hash(ALICE.email) if kind in AGENT_KINDS else None)
    assert message["In-Reply-To"] == f"<{ANSWERED}>" and f"<{ANSWERED}>" in message["References"]

    if kind is OutboundKind.AGENT_REPLY:
        assert message["Auto-Submitted"] is None
    else:
        assert message["Auto-Submitted"] == ("auto-generated" if kind in AGENT_KINDS else "auto-replied")
    assert message[SETUP.loop_header] == DOMAIN
    assert message["Content-Language"] == language

    text = plain(message)
    assert "1234" in text and text.endswith("\n")
    assert ("звернення" in text.lower()) == (language == "uk")
    if kind in HTML_KINDS:
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        page = html(message)
        assert f'<html lang="{language}"' in page and "1234" in page and well_nested(page)
    else:
        assert message.get_content_type() == "text/plain"


def test_compose_renders_every_draft_with_its_own_message_id() -> None:
    drafts = (draft(OutboundKind.ACKNOWLEDGEMENT), draft(OutboundKind.AGENT_NEW_TICKET, "uk"))
    mails = compose(drafts, TICKET, SETUP, SHIPPED, ENVELOPE, "seed", NOW, EXTRA)
    assert [m.kind for m in mails] == [d.kind for d in drafts]
    assert len({m.message_id for m in mails}) == 2


def test_timer_mail_continues_the_ticket_thread_and_is_auto_generated() -> None:
    ticket = replace(TICKET, thread_ids=("m0@customer.example", f"pd.older@{DOMAIN}"))
    _, message = render(OutboundKind.AUTOCLOSE_WARNING, ticket=ticket, in_reply_to=None)
    assert message["In-Reply-To"] == f"<pd.older@{DOMAIN}>"
    assert message["References"] == f"<m0@customer.example> <pd.older@{DOMAIN}>"
    assert message["Auto-Submitted"] == "auto-generated"


def test_an_unknown_language_falls_back_to_english() -> None:
    _, message = render(OutboundKind.ACKNOWLEDGEMENT, "fr")
    assert message["Content-Language"] == "en" and plain(message).startswith("Dear Олена Петренко,")


# ---------------------------------------------------------------------------------------------
# Non-ASCII headers round-trip exactly


LONG_SUBJECT = "Не працює вхід до системи після оновлення браузера на всіх комп’ютерах бухгалтерії"


@pytest.mark.parametrize("padding", range(0, 24, 3))
def test_non_ascii_subjects_and_names_round_trip_exactly(padding: int) -> None:
    """compose writes encoded-words with compat32 + Header: the modern folder can drop the
    space between two encoded-words ("до системи" → "досистеми"; here with padding 9). Padding
    moves the fold."""
    subject = f"{'ж' * padding} {LONG_SUBJECT}".strip()
    mail, message = render(OutboundKind.ACKNOWLEDGEMENT, "uk", ticket=replace(TICKET, subject=subject))
    assert message["Subject"] == f"[Support #1234] {subject}"  # the same subject all through the ticket
    raw_subject = re.search(rb"^Subject:(.*?)\r\n(?! )", mail.raw, re.S | re.M)
    assert raw_subject is not None and raw_subject.group(1).count(b"=?utf-8?") >= 2  # several encoded-words
    assert message["To"].addresses[0].display_name == "Олена Петренко"
    assert SUBJECT in plain(message) and subject in html(message)


def test_a_non_ascii_agent_name_round_trips_in_from() -> None:
    ticket = replace(TICKET, requester=Address("petro@customer.example", "Петро Іваненко-Ґудзь"))
    _, message = render(OutboundKind.AGENT_REPLY, "uk", ticket=ticket, sender_name="Марія Коваль",
                        to=(ticket.requester,))
    assert message["From"].addresses[0].display_name == "Марія Коваль via ACME Support"
    assert message["To"].addresses[0].display_name == "Петро Іваненко-Ґудзь"


# ---------------------------------------------------------------------------------------------
# Customer text is data: never template source, never a header, escaped in HTML


INJECTED = "Invoice {{ 7*7 }} {% if 1 %}x{% endif %}\r\nBcc: victim@evil.example\r\n\r\nhello"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [OutboundKind.ACKNOWLEDGEMENT, OutboundKind.AGENT_REPLY,
                                  OutboundKind.AGENT_NEW_TICKET], ids=lambda kind: kind.value)
def test_a_customer_subject_with_template_code_and_crlf_comes_back_literally(kind: OutboundKind,
                                                                             language: str) -> None:
    _, clean = render(kind, language)
    evil = replace(TICKET, subject=INJECTED, requester=Address(OLENA.email, "Eve\r\nCc: evil@example.net"))
    extra = EXTRA | {"mail": EXTRA["mail"] | {"subject": INJECTED, "text": "{{ 7*7 }} {{ ticket }}"}}
    mail, message = render(kind, language, ticket=evil, extra=extra, to=(evil.requester,) if kind not in AGENT_KINDS
                           else (ALICE,), variables=(("text", "{{ 7*7 }}\r\nBcc: x@evil.example"),))
    assert list(message.keys()) == list(clean.keys())  # no header added, none lost
    assert all(part["Bcc"] is None for part in message.walk())
    header_block = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^(bcc|cc):", header_block, re.I | re.M)
    assert "{{ 7*7 }} {% if 1 %}x{% endif %} Bcc: victim@evil.example hello" in message["Subject"]
    assert "49" not in message["Subject"]
    text = plain(message)
    assert "{{ 7*7 }}" in text and "49" not in text
    if kind is not OutboundKind.AGENT_NEW_TICKET:
        assert message["To"].addresses[0].display_name == "Eve Cc: evil@example.net"


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_escapes_customer_text_and_keeps_its_lines(language: str) -> None:
    evil = replace(TICKET, subject="<img src=x onerror=alert(1)>",
                   requester=Address(OLENA.email, "<b>Olena</b>"))
    _, message = render(OutboundKind.AGENT_REPLY, language, ticket=evil, to=(evil.requester,),
                        variables=(("text", "<script>alert('x')</script> & more\nsecond line"),))
    page = html(message)
    assert "<script" not in page and "<img" not in page and "<b>Olena" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more<br>second line" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert('x')</script> & more\nsecond line" in plain(message)


# ---------------------------------------------------------------------------------------------
# What the mails say


@pytest.mark.parametrize(("language", "promise"), [("en", "You can expect a first response by 2026-03-02 14:30"),
                                                   ("uk", "Очікуваний термін першої відповіді — до 2026-03-02 14:30")])
def test_the_acknowledgement_promises_the_first_response_only_when_an_sla_applies(language: str,
                                                                                  promise: str) -> None:
    sla = {"first_response_due": "2026-03-02 14:30", "resolution_due": "2026-03-04 17:00"}
    _, with_sla = render(OutboundKind.ACKNOWLEDGEMENT, language, extra=EXTRA | {"sla": sla})
    _, without = render(OutboundKind.ACKNOWLEDGEMENT, language)
    assert promise in plain(with_sla) and "2026-03-02 14:30" in html(with_sla)
    assert "2026-03-02 14:30" not in plain(without) and "[Support #1234]" in plain(without)


@pytest.mark.parametrize(("language", "policy_", "days", "says"), [
    ("en", "reopen", 14, "within 14 days, simply reply"),
    ("en", "reopen", 1, "within 1 day, simply reply"),
    ("en", "new", 14, "we will open a\nnew ticket linked to this one"),
    ("en", "reply", 14, f"new mail to help@{DOMAIN} without [Support #1234]"),
    ("uk", "reopen", 14, "протягом 14 днів"),
    ("uk", "reopen", 21, "протягом 21 дня"),
    ("uk", "reopen", 11, "протягом 11 днів"),
    ("uk", "new", 14, "ми зареєструємо нове звернення, пов’язане з цим"),
    ("uk", "reply", 14, f"на адресу help@{DOMAIN},\nне додаючи до теми позначку [Support #1234]"),
])
def test_closure_notices_say_what_a_reply_will_do(language: str, policy_: str, days: int, says: str) -> None:
    setup = replace(SETUP, lifecycle=LifecyclePolicy(closed_followup=policy_, reopen_within=timedelta(days=days)))
    for kind in (OutboundKind.CLOSURE, OutboundKind.AUTOCLOSE_NOTICE):
        _, message = render(kind, language, ticket=replace(TICKET, status=Status.CLOSED), setup=setup)
        assert says in plain(message)
        assert " ".join(says.split()) in visible(html(message))


@pytest.mark.parametrize(("language", "says"), [
    ("en", "Waiting for your information → Passed to a third party"),
    ("uk", "«Потрібна інформація» → «Передано третій стороні»"),
])
def test_a_status_change_names_the_statuses_in_the_customers_words(language: str, says: str) -> None:
    ticket = replace(TICKET, status=Status.WAITING_THIRD_PARTY, third_party="Printix Ltd")
    _, message = render(OutboundKind.STATUS_CHANGE, language, ticket=ticket,
                        variables=(("change", "waiting_customer → waiting_third_party"),))
    assert says in plain(message) and "Printix Ltd" in plain(message)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_autoclose_warning_says_when_and_how_to_keep_it_open(language: str) -> None:
    _, message = render(OutboundKind.AUTOCLOSE_WARNING, language, ticket=replace(TICKET, status=Status.RESOLVED))
    text = plain(message)
    assert message["Subject"] == f"Re: [Support #1234] {TICKET.subject}" and "2026-03-09" in text
    assert ("reply to this mail" if language == "en" else "надішліть відповідь на цей лист") in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_refusal_gives_the_reason_and_the_redirect(language: str) -> None:
    _, message = render(OutboundKind.REFUSAL, language, ticket=replace(TICKET, status=Status.CLOSED),
                        variables=(("reason", "marketing requests are not handled here"),
                                   ("text", "Please write to marketing@customer.example.")))
    for body in (plain(message), html(message)):
        assert "marketing requests are not handled here" in body
        assert "Please write to marketing@customer.example." in body


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_closed_ticket_answer_asks_for_a_new_mail(language: str) -> None:
    _, message = render(OutboundKind.CLOSED_TICKET, language, ticket=replace(TICKET, status=Status.CLOSED))
    assert f"help@{DOMAIN}" in plain(message) and f"help@{DOMAIN}" in html(message)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [OutboundKind.AGENT_NEW_TICKET, OutboundKind.AGENT_ASSIGNMENT,
                                  OutboundKind.AGENT_UPDATE, OutboundKind.ESCALATION], ids=lambda kind: kind.value)
def test_agent_notifications_carry_the_mail_the_state_and_the_commands(kind: OutboundKind, language: str) -> None:
    _, message = render(kind, language)
    text = plain(message)
    assert "Пише «невірний пароль»." in text
    assert "#resolve [CODE] TEXT" in text and "#assign AGENT|GROUP" in text
    assert "(open)" in text if language == "uk" else "Status:      open" in text
    assert ALICE.email in text and OLENA.email in text
    if kind is OutboundKind.ESCALATION:
        assert "contract expired" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_command_mails_list_the_results_and_name_the_bad_line(language: str) -> None:
    _, result = render(OutboundKind.COMMAND_RESULT, language)
    assert "  status: open → resolved\n  priority: medium → high\n" in plain(result)
    _, error = render(OutboundKind.COMMAND_ERROR, language)
    text = plain(error)
    assert "unknown command #reslove" in text and "\n  #reslove\n" in text
    assert "#resolve [CODE] TEXT" in text and "#assign AGENT|GROUP" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_command_list_may_come_as_ready_lines(language: str) -> None:
    """agentmail passes the forms of the commands a mail used as lines (a draft's variables are strings)."""
    forms = "  #priority LEVEL    set the priority\n  #status STATUS     set the status"
    _, error = render(OutboundKind.COMMAND_ERROR, language, variables=(*VARIABLES, ("commands", forms)))
    assert f"\n{forms}\n" in plain(error)


# ---------------------------------------------------------------------------------------------
# Operators' templates


def test_an_operator_file_overrides_the_shipped_one_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    own = tmp_path / "en" / "acknowledgement.txt.j2"
    own.write_text("Our own words about {{ token }}.\n", encoding="utf-8")
    sources, origins = load_sources(tmp_path)
    assert origins["en/acknowledgement.txt.j2"] == own
    assert origins["en/acknowledgement.subject.j2"].is_relative_to(shipped_templates_dir())
    renderer = Renderer(sources)
    _, message = render(OutboundKind.ACKNOWLEDGEMENT, "en", renderer=renderer)
    assert plain(message) == "Our own words about [Support #1234].\n"
    assert message["Subject"] == f"[Support #1234] {TICKET.subject}"  # the shipped subject
    assert message.get_content_type() == "text/plain"  # not the shipped HTML, which says something else
    _, ukrainian = render(OutboundKind.ACKNOWLEDGEMENT, "uk", renderer=renderer)
    assert plain(ukrainian).startswith("Добрий день, Олена Петренко!")  # the shipped Ukrainian one


def test_an_operator_html_part_goes_with_an_operator_text_part(tmp_path: Path) -> None:
    write(tmp_path, "uk/resolution.txt.j2", "Вирішено: {{ text }}\n")
    write(tmp_path, "uk/resolution.html.j2", "<p>Вирішено: {{ text }}</p>\n")
    write(tmp_path, "uk/closure.html.j2", "<p>Закрито {{ ticket.number }}</p>\n")
    renderer = Renderer(load_sources(tmp_path)[0])
    _, resolution = render(OutboundKind.RESOLUTION, "uk", renderer=renderer, variables=(("text", "<b>ok</b>"),))
    assert plain(resolution) == "Вирішено: <b>ok</b>\n"
    assert html(resolution) == "<p>Вирішено: &lt;b&gt;ok&lt;/b&gt;</p>\n"
    _, closure = render(OutboundKind.CLOSURE, "uk", renderer=renderer)
    assert plain(closure).startswith("Добрий день") and html(closure) == "<p>Закрито 1234</p>\n"


def test_an_operator_language_is_used_for_the_kinds_it_has(tmp_path: Path) -> None:
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "acknowledgement.txt.j2").write_text("Guten Tag, {{ recipient.name }}.\n", encoding="utf-8")
    renderer = Renderer(load_sources(tmp_path)[0])
    _, german = render(OutboundKind.ACKNOWLEDGEMENT, "de", renderer=renderer)
    assert plain(german) == "Guten Tag, Олена Петренко.\n" and german["Content-Language"] == "de"
    _, fallback = render(OutboundKind.CLOSURE, "de", renderer=renderer)
    assert fallback["Content-Language"] == "en"


def write(folder: Path, name: str, source: str) -> Path:
    file = folder / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(source, encoding="utf-8")
    return file


def test_check_reports_a_syntax_error_at_its_file_and_line(tmp_path: Path) -> None:
    file = write(tmp_path, "en/closure.txt.j2", "Hello,\n\nclosed.\n{% if text %}\n{{ text }}\n")
    problems = check_templates(tmp_path)
    assert [(p.file, p.line) for p in problems] == [(str(file), 5)]
    assert str(problems[0]).startswith(f"{file}:5: template syntax error:")


@pytest.mark.parametrize(("source", "line", "named"), [
    ("Dear {{ recipient.name }},\n\n{{ nope }}\n", 3, "'nope'"),
    ("One\n{% if text == 'never' %}\n{{ ticket.nubmer }}\n{% endif %}\n", 3, "'ticket.nubmer'"),
    ("One\n{% if not text %}\n{{ agent }}\n{% endif %}\n", 3, "'agent'"),
    ("One\nTwo\n{% for command in commands %}\n{{ command.usage }}\n{% endfor %}\n", 4, "'usage'"),
    ("{% macro box(value) %}\n{{ value }}{{ missing }}\n{% endmacro %}\n{{ box(text) }}\n", 2, "'missing'"),
])
def test_check_reports_an_unknown_variable_at_its_file_and_line(tmp_path: Path, source: str, line: int,
                                                                named: str) -> None:
    file = write(tmp_path, "uk/resolution.html.j2", source)
    problems = check_templates(tmp_path)
    assert [(p.file, p.line) for p in problems] == [(str(file), line)]
    assert "unknown variable" in problems[0].message and named in problems[0].message


def test_check_reports_unknown_kinds_and_parts(tmp_path: Path) -> None:
    kind = write(tmp_path, "en/acknowledgment.txt.j2", "typo in the kind\n")
    part = write(tmp_path, "en/acknowledgement.text.j2", "typo in the part\n")
    problems = {p.file: p.message for p in check_templates(tmp_path)}
    assert problems.keys() == {str(kind), str(part)}
    assert "unknown template kind 'acknowledgment'" in problems[str(kind)]
    assert "unknown template part 'text'" in problems[str(part)]
