"""Template files: the operator's folder first, then the shipped `templates/`; language, then en.

Sources are read once at start into a dict the core's Renderer compiles; `check_templates`
compiles and test-renders every one for `postdesk check-config`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError

from daemon.core.compose import Envelope, Renderer, template_context
from daemon.core.values import Address, OutboundDraft, OutboundKind, Setup, Status, TicketView
from daemon.errors import Problem


def shipped_templates_dir() -> Path:
    """The `templates/` beside the package (a checkout), or the copy installed under share/."""
    beside = Path(__file__).resolve().parent.parent / "templates"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "postdesk" / "templates"


def load_sources(operator_dir: str | Path | None) -> tuple[dict[str, str], dict[str, Path]]:
    """Template sources by name ("en/acknowledgement.txt.j2") and the file each came from."""
    sources: dict[str, str] = {}
    origins: dict[str, Path] = {}
    folders = [shipped_templates_dir()]
    if operator_dir and Path(operator_dir).resolve() != folders[0].resolve():
        folders.append(Path(operator_dir))
    for folder in folders:  # later folders override earlier ones
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*/*.j2")):
            name = f"{file.parent.name}/{file.name}"
            sources[name] = file.read_text(encoding="utf-8")
            origins[name] = file
    return sources, origins


def load_renderer(operator_dir: str | Path | None) -> Renderer:
    return Renderer(load_sources(operator_dir)[0])


SAMPLE_TICKET = TicketView(
    number=1234, subject="Printer on floor 2 prints nothing", status=Status.OPEN,
    requester=Address("olena@customer.example", "Olena Petrenko"), created_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    status_changed_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC), owner="alice@example.com", group="l1",
)


def sample_context(kind: OutboundKind) -> dict[str, Any]:
    """A context with every variable set, as check-config renders each template with."""
    setup = Setup(secret=b"sample-secret-0123456789", domain="example.com")
    draft = OutboundDraft(kind=kind, to=(Address("olena@customer.example", "Olena Petrenko"),),
                          sender_name="Alice", variables=SAMPLE_VARIABLES)
    extra = {"mail": {"from": "olena@customer.example", "name": "Olena Petrenko", "subject": SAMPLE_TICKET.subject,
                      "text": "The printer on floor 2 prints nothing since this morning."},
             "commands": [{"name": "resolve", "syntax": "#resolve [CODE]", "help": "resolve the ticket"}]}
    return template_context(draft, SAMPLE_TICKET, setup, Envelope("support@example.com", "Support"),
                            datetime(2026, 1, 5, 10, 0, tzinfo=UTC), extra)


SAMPLE_VARIABLES = (("text", "Please restart the print spooler."), ("change", "open → resolved"),
                    ("error", "unknown command #reslove"), ("line", "#reslove"), ("reason", "contract expired"),
                    ("results", "status: open → resolved\npriority: medium → high"), ("close_at", "2026-01-10"))


def check_templates(operator_dir: str | Path | None) -> list[Problem]:
    """Compile every template and render it with a sample context; each problem as FILE:LINE."""
    sources, origins = load_sources(operator_dir)
    renderer = Renderer(sources)
    problems: list[Problem] = []
    for name in sorted(sources):
        problems += _check_one(renderer, name, origins[name])
    for kind in OutboundKind:
        if not renderer.has("en", kind, "txt"):
            problems.append(Problem(str(shipped_templates_dir() / "en"), 0,
                                    f"missing template en/{kind.value}.txt.j2; every kind needs an English text part"))
    return problems


def _check_one(renderer: Renderer, name: str, origin: Path) -> list[Problem]:
    language, file = name.split("/", 1)
    kind_name, part = file.removesuffix(".j2").rsplit(".", 1)
    try:
        kind = OutboundKind(kind_name)
    except ValueError:
        return [Problem(str(origin), 1, f"unknown template kind {kind_name!r}; expected one of: "
                        + ", ".join(k.value for k in OutboundKind))]
    try:
        renderer.env.get_template(name)
        renderer.render(language, kind, part, sample_context(kind))
    except TemplateSyntaxError as error:
        return [Problem(str(origin), error.lineno or 1, f"template syntax error: {error.message}")]
    except UndefinedError as error:
        return [Problem(str(origin), _error_line(error, name), f"unknown variable: {error.message}; "
                        "see the variables listed in templates/README.md")]
    return []


def _error_line(error: BaseException, name: str) -> int:
    traceback = error.__traceback__
    line = 1
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == name:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
