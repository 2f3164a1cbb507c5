"""split_reply: the author's new text, the quoted history and the signature, table-driven."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from daemon.core.reply import ReplyParts, split_reply


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    new: str  # the exact new text
    quoted_has: str = ""  # a piece of the quoted history ("" when there is none)
    signature: str = ""


QUOTE = "> Could you send us the log file?\n> \n> Best regards,\n> Support Team"


def attributed(attribution: str, answer: str = "Here is the log.") -> Case:
    return Case(attribution[:40], f"{answer}\n\n{attribution}\n{QUOTE}\n", answer, attribution.splitlines()[-1])


ATTRIBUTION_CASES = [
    # English: Gmail, Apple Mail, Thunderbird, Outlook for Mac, Yahoo, and a wrapped one
    attributed("On Mon, Nov 23, 2026 at 9:15 AM Support Team <support@example.com> wrote:"),
    attributed("On 23 Nov 2026, at 09:15, Support Team <support@example.com> wrote:"),
    attributed("On 23/11/2026 09:15, Support Team wrote:"),
    attributed('On 23.11.26, 09:15, "Support Team" <support@example.com> wrote:'),
    attributed("On Monday, November 23, 2026, 09:15:00 AM GMT+1, Support Team <support@example.com> wrote:"),
    attributed(
        "On Mon, Nov 23, 2026 at 9:15 AM Support Team of Example Company Limited <\nsupport-desk@example.com> wrote:"
    ),
    attributed(
        "On Mon, Nov 23, 2026 at 9:15 AM\nSupport Team of Example Company Limited\n<support-desk@example.com> wrote:"
    ),
    # German, French, Spanish, Italian, Portuguese, Dutch, Polish, Swedish
    attributed("Am Mo., 23. Nov. 2026 um 09:15 Uhr schrieb Support Team <support@example.com>:"),
    attributed("Am 23.11.2026 um 09:15 schrieb Support Team:"),
    attributed("Le lun. 23 nov. 2026 à 09:15, Support Team <support@example.com> a écrit :"),
    attributed("Le lun. 23 nov. 2026 à 09:15, Support Team <support@example.com> a\nécrit :"),
    attributed("El lun, 23 nov 2026 a las 9:15, Support Team (<support@example.com>) escribió:"),
    attributed("Il giorno lun 23 nov 2026 alle ore 09:15 Support Team <support@example.com> ha scritto:"),
    attributed("Em seg., 23 de nov. de 2026 às 09:15, Support Team <support@example.com> escreveu:"),
    attributed("Op ma 23 nov 2026 om 09:15 schreef Support Team <support@example.com>:"),
    attributed("W dniu pon., 23.11.2026 o 09:15 Support Team <support@example.com> napisał(a):"),
    attributed("W dniu 23.11.2026 o 09:15, Support Team pisze:"),
    attributed("Den mån 23 nov. 2026 kl 09:15 skrev Support Team <support@example.com>:"),
    # Russian (Gmail web, Android wrapped, Thunderbird), Ukrainian, Japanese, Chinese
    attributed("пн, 23 нояб. 2026 г. в 09:15, Support Team <support@example.com>:"),
    attributed("пн, 23 нояб. 2026 г. в 09:15, Support Team <\nsupport@example.com>:"),
    attributed("23 нояб. 2026 г., 09:15 пользователь Support Team <\nsupport@example.com> написал:"),
    attributed("23.11.2026 09:15, Support Team пишет:"),
    attributed("пн, 23 лист. 2026 р. о 09:15 Support Team <support@example.com> пише:"),
    attributed("23.11.2026 09:15, Support Team написав:"),
    attributed("2026年11月23日(月) 9:15 Support Team <support@example.com>:"),
    attributed("Support Team <support@example.com> 于2026年11月23日周一 09:15写道："),
    attributed("在 2026年11月23日，09:15，Support Team <support@example.com> 写道："),
    # Android writes the attribution right below the answer, without a blank line
    Case("android ru, no blank line", 'Hello\n02.04.2012 14:20 пользователь "bob@example.com" <\n'
         "bob@example.com> написал:\n\n> Hi\n>\n", "Hello", "> Hi"),
    Case("wrapped weak form, no blank line", "Thanks, that works\nSupport Team of Example Company Limited <\n"
         "support-desk@example.com> wrote:\n> Please restart.\n", "Thanks, that works", "> Please restart."),
    Case("english, no blank line", "Here is the log\nOn Mon, Nov 23, 2026 at 9:15 AM Support Team <\n"
         "support@example.com> wrote:\n> Could you send us the log file?\n", "Here is the log", "> Could you"),
    # Unknown language, but an address, a time and a quote below
    attributed("ma 23.11.2026 klo 9.15 Support Team (support@example.com) 10:00:"),
]

OUTLOOK_CASES = [
    Case(
        "outlook english with underscores",
        "Thanks, that fixed it.\n\n________________________________\nFrom: Support Team <support@example.com>\n"
        "Sent: Monday, November 23, 2026 9:15 AM\nTo: Ralf <r@example.de>\nSubject: RE: VPN\n\nPlease restart.\n",
        "Thanks, that fixed it.",
        "Please restart.",
    ),
    Case(
        "outlook original message",
        "Attached.\n\n-----Original Message-----\nFrom: Support <support@example.com>\nSent: Monday\n"
        "Subject: x\n\nOld.",
        "Attached.",
        "Old.",
    ),
    Case(
        "outlook german",
        "Danke!\n\nVon: Support <support@example.com>\nGesendet: Montag, 23. November 2026 09:15\n"
        "An: Ralf <r@example.de>\nBetreff: AW: VPN\n\nBitte neu starten.",
        "Danke!",
        "Bitte neu starten.",
    ),
    Case(
        "outlook german ursprüngliche nachricht",
        "Danke!\n\n-----Ursprüngliche Nachricht-----\nVon: Support\nGesendet: Montag\n\nAlt.",
        "Danke!",
        "Alt.",
    ),
    Case(
        "outlook french",
        "Merci.\n\nDe : Support <support@example.com>\nEnvoyé : lundi 23 novembre 2026 09:15\n"
        "À : Jean <j@example.fr>\nObjet : RE: export\n\nAncien.",
        "Merci.",
        "Ancien.",
    ),
    Case(
        "outlook russian",
        "Спасибо.\n\nОт: Support <support@example.com>\nОтправлено: 23 ноября 2026 г. 9:15\n"
        "Кому: Иван <i@example.ru>\nТема: RE: 1С\n\nСтарое.",
        "Спасибо.",
        "Старое.",
    ),
    Case(
        "outlook ukrainian",
        "Дякую.\n\nВід: Support <support@example.com>\nНадіслано: 23 листопада 2026 р. 9:15\n"
        "Кому: Олена <o@example.ua>\nТема: RE: принтер\n\nСтаре.",
        "Дякую.",
        "Старе.",
    ),
    Case(
        "outlook spanish enviado el",
        "Gracias.\n\nDe: Support <support@example.com>\nEnviado el: lunes, 23 de noviembre de 2026 9:15\n"
        "Para: Carmen\nAsunto: RE: correo\n\nViejo.",
        "Gracias.",
        "Viejo.",
    ),
    Case(
        "gmx sent first",
        "Gruß\nJürgen\n\nGesendet: Montag, 23. November 2026 um 09:15\nVon: Support\nAn: Jürgen\nBetreff: x\nAlt.",
        "Gruß\nJürgen",
        "Alt.",
    ),
    Case(
        "bold html header block",
        "Done.\n\n*From:* Support <support@example.com>\n*Sent:* Monday\n*To:* me\n*Subject:* x\n\nOld.",
        "Done.",
        "Old.",
    ),
    Case(
        "gmail forward",
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: A <a@example.com>\nDate: Mon\n"
        "Subject: x\nTo: b@example.com\n\nForwarded body.",
        "FYI, see below.",
        "Forwarded body.",
    ),
    Case("apple forward", "Look.\n\nBegin forwarded message:\n\nFrom: A\nSubject: x\n\nBody.", "Look.", "Body."),
]

LAYOUT_CASES = [
    Case(
        "bottom-posted",
        "On 23/11/2026 09:15, Support Team wrote:\n> Please restart the router.\n>\n> Support\n\n"
        "I restarted it, still no connection.\n",
        "I restarted it, still no connection.",
        "Please restart the router.",
    ),
    Case(
        "interleaved",
        "Support Team wrote:\n> What version do you use?\n3.8.0\n\n> Which system?\nmacOS 15\n",
        "3.8.0\n\nmacOS 15",
        "Which system?",
    ),
    Case("quote without attribution", "> old line\nnew line", "new line", "old line"),
    Case(
        "top-posted attribution without > quoting",
        "Fine now.\n\nOn Mon, Nov 23, 2026 at 9:15 AM Support <support@example.com> wrote:\nOld unquoted text.",
        "Fine now.",
        "Old unquoted text.",
    ),
    Case(
        "yahoo attribution run into the quote",
        "Still broken.\n\nSent from Yahoo Mail on Android\n\n  On Mon, Nov 23, 2026 at 9:15, Support<s@example.com>"
        " wrote:   Hello,\nplease reconnect.",
        "Still broken.",
        "please reconnect.",
        "Sent from Yahoo Mail on Android",
    ),
    Case("no quote at all", "Hello,\n\nthe printer is broken.\n", "Hello,\n\nthe printer is broken."),
    Case("empty", "", ""),
    Case("crlf line ends", "New.\r\n\r\n> old\r\n", "New.", "old"),
    Case(
        "colon lines that are content",
        "Here is what I did:\nRestarted.\n\nSteps to reproduce:\n1. open\n",
        "Here is what I did:\nRestarted.\n\nSteps to reproduce:\n1. open",
    ),
    Case(
        "header-like content is kept",
        "From: my experience this fails.\nSubject: the printer.\n",
        "From: my experience this fails.\nSubject: the printer.",
    ),
]

SIGNATURE_CASES = [
    Case("dash dash space", "Works now.\n\n-- \nJohn Smith\nACME", "Works now.", signature="John Smith\nACME"),
    Case("dash dash", "Works now.\n--\nJohn", "Works now.", signature="John"),
    Case(
        "signature before the quote",
        "Works.\n-- \nJohn\n\nOn 23/11/2026 09:15, Support wrote:\n> old",
        "Works.",
        "old",
        "John",
    ),
    Case("iphone", "Broken again.\n\nSent from my iPhone", "Broken again.", signature="Sent from my iPhone"),
    Case(
        "outlook android",
        "Ok.\n\nGet Outlook for Android<https://aka.ms/x>",
        "Ok.",
        signature="Get Outlook for Android<https://aka.ms/x>",
    ),
    Case("german iphone", "Danke\n\nVon meinem iPhone gesendet", "Danke", signature="Von meinem iPhone gesendet"),
    Case("ukrainian iphone", "Дякую\n\nНадіслано з iPhone", "Дякую", signature="Надіслано з iPhone"),
    Case("russian iphone", "Спасибо\n\nОтправлено с iPhone", "Спасибо", signature="Отправлено с iPhone"),
    Case("japanese iphone", "ありがとう\n\niPhoneから送信", "ありがとう", signature="iPhoneから送信"),
    Case("french iphone", "Merci\n\nEnvoyé de mon iPhone", "Merci", signature="Envoyé de mon iPhone"),
    Case("typeapp", "Thanks, works now.\n\nSent from TypeApp", "Thanks, works now.", signature="Sent from TypeApp"),
    Case("bluemail", "Ok\n\nSent from BlueMail", "Ok", signature="Sent from BlueMail"),
    Case("zoho", "Fine.\n\nSent using Zoho Mail", "Fine.", signature="Sent using Zoho Mail"),
    Case("aol app", "Yes\n\nSent from the all-new AOL app for iOS", "Yes",
         signature="Sent from the all-new AOL app for iOS"),
    Case("a sentence that starts like an app is content",
         "The report was sent from Spark.\nIt never arrived.", "The report was sent from Spark.\nIt never arrived."),
    Case(
        "mobile line in the middle is content",
        "Sent from my iPhone does not sync.\nPlease help.",
        "Sent from my iPhone does not sync.\nPlease help.",
    ),
    Case(
        "a long text after -- is not a signature",
        "Intro\n--\n" + "\n".join(f"line {number}" for number in range(20)),
        "Intro\n--\n" + "\n".join(f"line {number}" for number in range(20)),
    ),
]

# Forms seen in other reply parsers' test mails (mailgun/talon, crisp-oss/email-reply-parser), written anew here
OLD = "Could you send us the log file?"
WILD_CASES = [
    attributed("pe 23. marraskuuta 2026 klo 9.15 Support Team\n<support@example.com> kirjoitti:"),
    Case("gmail wraps inside the address, '>:' alone",
         "Here is the log.\n\nma. 23. nov. 2026 kl. 09:15 skrev Support Team <support@example.com\n>:\n\n> " + OLD,
         "Here is the log.", OLD),
    Case("a date first, the address last, nothing quoted",
         f'Here is the log.\n\n23.11.2026, 09.15, "Support Team" <support@example.com>:\n\n{OLD}',
         "Here is the log.", OLD),
    Case("a time first, the address last, nothing quoted",
         f'Here is the log.\n\n9:15 AM, November 23, 2026, "Support Team" <support@example.com>:\n\n{OLD}',
         "Here is the log.", OLD),
    Case("an attribution that lost its colon",
         f"Here is the log.\n\nOn Mon, 23 Nov 2026 09:15:00 +0100 Support Team <support@example.com> wrote\n\n{OLD}",
         "Here is the log.", OLD),
    Case("outlook block whose From wrapped",
         "Here is the log.\n\nFrom: Support Team of Example Company\n<support-desk@example.com>\n"
         f"Sent: Monday, November 23, 2026 9:15 AM\nTo: Ralf <r@example.de>\nSubject: VPN\n\n{OLD}",
         "Here is the log.", OLD),
    Case("french block under a ==== line",
         "Voici le journal.\n\n====\n\nMessage du : 23/11/2026 09:15\nDe : \"Support\" <support@example.com>\n"
         f"A : client@example.fr\nSujet : journal\n\n{OLD}",
         "Voici le journal.", OLD),
    Case("danish original message",
         "Her er loggen.\n\n-------- Oprindelig besked --------\nFra: Support <support@example.com>\n"
         f"Dato: 23.11.2026 09.15 (GMT+01:00)\nTil: kunde@example.dk\nEmne: log\n\n{OLD}",
         "Her er loggen.", OLD),
    Case("mobile signature above the unquoted message answered",
         "Done, it works.\n\nSent from my Fairphone\n\nHi, please restart the router and tell us.",
         "Done, it works.", "please restart the router", "Sent from my Fairphone"),
    Case("outlook for ios in french", "Merci.\n\nEnvoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>",
         "Merci.", signature="Envoyé à partir de Outlook pour iOS<https://aka.ms/o0ukef>"),
    Case("a quoted line wrapped without its '>'",
         "Done.\n\nOn Mon, Nov 23, 2026 at 9:15 AM Support Team <support@example.com> wrote:\n"
         "> Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nullam pharetra d\nignissim odio?\n> Thanks",
         "Done.", "ignissim odio?"),
]

ALL_CASES = ATTRIBUTION_CASES + OUTLOOK_CASES + LAYOUT_CASES + SIGNATURE_CASES + WILD_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.name for case in ALL_CASES])
def test_split_reply(case: Case) -> None:
    parts = split_reply(case.text)
    assert parts.new_text == case.new
    if case.quoted_has:
        assert case.quoted_has in parts.quoted_text
    else:
        assert parts.quoted_text == ""
    assert parts.signature == case.signature


def test_languages_narrow_the_attributions() -> None:
    german = "Danke.\n\nAm 23.11.2026 um 09:15 schrieb Support Team:\nAlter Text ohne Zitatzeichen."
    assert split_reply(german, languages=("de",)).new_text == "Danke."
    assert "Alter Text" in split_reply(german, languages=("fr",)).new_text
    english = "Thanks.\n\nOn 23/11/2026 09:15, Support wrote:\nold"
    assert split_reply(english, languages=("fr",)).new_text == "Thanks.", "English is always known"


def test_result_is_frozen_value() -> None:
    parts = split_reply("a")
    assert isinstance(parts, ReplyParts)
    with pytest.raises(AttributeError):
        parts.new_text = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "x" * 1_000_000,
        ("On " + "a" * 300 + "\n") * 3000,
        ("On Mon wrote wrote wrote " * 40 + ":\n") * 2000,
        ("From: a\n" + "Sent: b\n" * 6) * 3000,
        ("> " + "q" * 80 + "\n") * 12000,
        ("Le " + "é " * 250 + ":\n") * 2000,
        "=" * 1_000_000 + ":",
    ],
    ids=["one long line", "many On lines", "many wrote colons", "header-like lines", "big quote", "french", "eq"],
)
def test_megabyte_bodies_split_fast(text: str) -> None:
    started = time.perf_counter()
    split_reply(text)
    assert time.perf_counter() - started < 2.0
