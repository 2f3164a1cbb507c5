"""Who sent a mail and what kind of mail it is, and whether Postdesk may answer it.

RFC 3834 and what real servers send: never answer `Auto-Submitted` other than `no`,
`Precedence: bulk/junk/list`, list mail, `X-Auto-Response-Suppress`, the null
Return-Path, or machine senders; recognise out-of-office replies and bounces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.core.values import AgentView, InboundMail, Nature, Role, Setup

_MACHINE_LOCALS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|donotreply|noreply[-+.].*|bounce[s]?([-+.].*)?|"
    r"notifications?|auto-?reply|autoresponder|daemon|root)$"
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|out of (the )?office|abwesenheitsnotiz|"
    r"automatische antwort|réponse automatique|risposta automatica|respuesta automática|"
    r"autosvar|automatisch antwoord|автоматический ответ|автоматична відповідь|"
    r"odpowiedź automatyczna|自動応答|自动回复|vacation|on vacation|away from (the )?office)\b",
    re.IGNORECASE,
)
_OOO_HEADERS = ("x-autoreply", "x-autorespond", "x-ms-exchange-inbox-rules-loop")
_TICKET_SYSTEM_HEADERS = ("x-loop", "x-otrs-loop", "x-rt-loop-prevention", "rt-ticket")  # another help desk
_SUPPRESS_VALUES = {"all", "oof", "autoreply", "dr", "rn", "nrn"}


@dataclass(frozen=True, slots=True)
class Classification:
    role: Role
    nature: Nature
    agent: AgentView | None
    no_auto_answer: tuple[str, ...]  # reasons Postdesk must not answer automatically
    loop: str = ""  # why this is Postdesk's own mail coming back; "" when it is not


def classify(mail: InboundMail, setup: Setup) -> Classification:
    agent = setup.agent(mail.sender.email)
    loop = own_mail_reason(mail, setup)
    role = Role.SELF if loop else (Role.AGENT if agent else Role.CUSTOMER)
    nature = nature_of(mail)
    return Classification(role=role, nature=nature, agent=agent, no_auto_answer=no_answer_reasons(mail, nature),
                          loop=loop)


def own_mail_reason(mail: InboundMail, setup: Setup) -> str:
    if mail.sender.email in setup.own_addresses:
        return f"sent from Postdesk's own address {mail.sender.email}"
    loop_value = mail.header(setup.loop_header)
    if loop_value is not None and loop_value.strip().lower() == setup.domain.lower():
        return f"carries Postdesk's own {setup.loop_header} header"
    return ""


def nature_of(mail: InboundMail) -> Nature:
    if mail.delivery_report is not None or _is_report(mail):
        return Nature.BOUNCE
    if _is_auto_reply(mail):
        return Nature.AUTO_REPLY
    if mail.header("list-id") is not None or _precedence(mail) == "list":
        return Nature.LIST
    if _precedence(mail) in ("bulk", "junk") or mail.header("list-unsubscribe") is not None:
        return Nature.BULK
    if _machine_sender(mail.sender.email) or _auto_submitted(mail) not in ("", "no"):
        return Nature.MACHINE
    return Nature.NORMAL


def no_answer_reasons(mail: InboundMail, nature: Nature) -> tuple[str, ...]:
    reasons = []
    submitted = _auto_submitted(mail)
    if submitted not in ("", "no"):
        reasons.append(f"Auto-Submitted: {submitted}")
    if _precedence(mail) in ("bulk", "junk", "list"):
        reasons.append(f"Precedence: {_precedence(mail)}")
    for header in ("list-id", "list-unsubscribe"):
        if mail.header(header) is not None:
            reasons.append(f"{header.title()} header")
    suppress = {v.strip().lower() for v in (mail.header("x-auto-response-suppress") or "").split(",")}
    if suppress & _SUPPRESS_VALUES:
        reasons.append("X-Auto-Response-Suppress")
    if mail.return_path == "":
        reasons.append("empty Return-Path")
    if not mail.sender.email:
        reasons.append("no sender address")
    elif _machine_sender(mail.sender.email):
        reasons.append(f"machine sender {mail.sender.email}")
    if nature in (Nature.AUTO_REPLY, Nature.BOUNCE) and not reasons:
        reasons.append(f"the mail is an {nature.value.replace('_', '-')}")
    return tuple(reasons)


def _auto_submitted(mail: InboundMail) -> str:
    """The keyword of Auto-Submitted, without parameters or comments: Dovecot's vacation
    writes `auto-replied (vacation)`, Zimbra `auto-replied (zimbra; vacation)`."""
    value = re.sub(r"\([^()]*\)", " ", mail.header("auto-submitted") or "")
    return value.split(";", 1)[0].strip().lower()


def _precedence(mail: InboundMail) -> str:
    value = mail.header("precedence")
    return value.strip().lower() if value else ""


def _machine_sender(address: str) -> bool:
    return bool(_MACHINE_LOCALS.match(address.rpartition("@")[0]))


def _is_report(mail: InboundMail) -> bool:
    content_type = mail.header("content-type") or ""
    return mail.content_type == "multipart/report" and "delivery-status" in content_type.lower()


def _is_auto_reply(mail: InboundMail) -> bool:
    if _auto_submitted(mail) == "auto-replied":
        return True
    if any(mail.header(h) is not None for h in _OOO_HEADERS):
        return True
    if mail.content_type == "multipart/report" and "disposition-notification" in \
            (mail.header("content-type") or "").lower():
        return True  # a read receipt (MDN): the customer's client answering by itself
    if any(mail.header(h) is not None for h in _TICKET_SYSTEM_HEADERS) and \
            (_auto_submitted(mail) not in ("", "no") or _precedence(mail) in ("bulk", "junk")):
        return True  # another ticket system's automatic acknowledgement (Znuny/OTRS, RT, ...)
    if (mail.header("x-auto-response-suppress") or "").strip().lower() in ("all", "oof") and \
            _AUTO_REPLY_SUBJECT.match(mail.subject):
        return True
    return bool(_AUTO_REPLY_SUBJECT.match(mail.subject)) and _auto_submitted(mail) not in ("", "no")
