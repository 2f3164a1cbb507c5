"""Template files: the operator's folder first, then the shipped `templates/`; language, then en.

Sources are read once at start into a dict the core's Renderer compiles; `check_templates`
compiles and test-renders every one for `postdesk check-config`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes

from daemon.core.compose import PARTS, Envelope, Renderer, template_context
from daemon.core.values import Address, OutboundDraft, OutboundKind, Setup, Status, TicketView
from daemon.errors import Problem


def shipped_templates_dir() -> Path:
    """The `templates/` beside the package (a checkout), or the copy installed under share/."""
    beside = Path(__file__).resolve().parent.parent / "templates"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "postdesk" / "templates"


def shipped_rules_dir() -> Path:
    """The default rule set: `rules/` beside the package, or the copy installed under share/."""
    beside = Path(__file__).resolve().parent.parent / "rules"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "postdesk" / "rules"


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
    _drop_stale_html(sources, origins, folders[0])
    return sources, origins


def _drop_stale_html(sources: dict[str, str], origins: dict[str, Path], shipped: Path) -> None:
    """An operator's own text part with the shipped HTML part beside it would send two different
    mails in one (clients show the HTML): such a kind goes out as text only, until the operator
    writes its HTML part too."""
    for name, origin in list(origins.items()):
        html = name.removesuffix(".txt.j2") + ".html.j2"
        if name.endswith(".txt.j2") and origin.parent.parent != shipped and html in origins \
                and origins[html].parent.parent == shipped:
            del sources[html], origins[html]


def load_renderer(operator_dir: str | Path | None) -> Renderer:
    return Renderer(load_sources(operator_dir)[0])


SAMPLE_TICKET = TicketView(
    number=1234, subject="Printer on floor 2 prints nothing", status=Status.OPEN,
    requester=Address("olena@customer.example", "Olena Petrenko"), created_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    status_changed_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC), owner="alice@example.com", group="l1",
)


SAMPLE_SETUP = Setup(secret=b"sample-secret-0123456789", domain="example.com")
SAMPLE_ENVELOPE = Envelope("support@example.com", "Support")
SAMPLE_NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def sample_context(kind: OutboundKind) -> dict[str, Any]:
    """A context with every variable set, as check-config renders each template with."""
    draft = OutboundDraft(kind=kind, to=(Address("olena@customer.example", "Olena Petrenko"),),
                          sender_name="Alice", variables=SAMPLE_VARIABLES)
    extra = {"mail": {"from": "olena@customer.example", "name": "Olena Petrenko", "subject": SAMPLE_TICKET.subject,
                      "text": "The printer on floor 2 prints nothing since this morning."},
             "commands": [{"name": "resolve", "syntax": "#resolve [CODE]", "help": "resolve the ticket"}],
             "sla": {"first_response_due": "2026-01-05 13:00 UTC", "resolution_due": "2026-01-07 17:00 UTC"}}
    return template_context(draft, SAMPLE_TICKET, SAMPLE_SETUP, SAMPLE_ENVELOPE, SAMPLE_NOW, extra)


def bare_context(kind: OutboundKind) -> dict[str, Any]:
    """A context with every optional variable empty, so the templates' other branches run too."""
    draft = OutboundDraft(kind=kind, to=())
    return template_context(draft, SAMPLE_TICKET, SAMPLE_SETUP, SAMPLE_ENVELOPE, SAMPLE_NOW, {})


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
    kind_name, _, part = file.removesuffix(".j2").rpartition(".")
    try:
        kind = OutboundKind(kind_name)
    except ValueError:
        return [Problem(str(origin), 1, f"unknown template kind {kind_name!r}; expected one of: "
                        + ", ".join(k.value for k in OutboundKind))]
    if part not in PARTS:
        return [Problem(str(origin), 1, f"unknown template part {part!r}; expected <kind>.subject.j2, "
                        "<kind>.txt.j2 or <kind>.html.j2")]
    try:
        tree = renderer.env.parse(renderer.sources[name], name)
    except TemplateSyntaxError as error:
        return [Problem(str(origin), error.lineno or 1, f"template syntax error: {error.message}")]
    problems = _unknown_names(renderer.env, tree, sample_context(kind), origin)
    if problems:
        return problems
    for context in (sample_context(kind), bare_context(kind)):
        problems = _render_problems(renderer, language, kind, part, context, name, origin)
        if problems:
            return problems
    return []


def _unknown_names(env: Environment, tree: nodes.Template, context: dict[str, Any], origin: Path) -> list[Problem]:
    """Every variable (`nope`) or field (`ticket.nubmer`) the template reads that does not exist,
    in any branch: rendering alone finds only those in the branches the sample takes."""
    undeclared = meta.find_undeclared_variables(tree)
    unknown: dict[str, int] = {}
    for name in tree.find_all(nodes.Name):
        if name.name in undeclared and name.name not in context and name.name not in env.globals:
            unknown.setdefault(name.name, name.lineno)
    for field in tree.find_all(nodes.Getattr):
        owner = field.node
        if (isinstance(owner, nodes.Name) and owner.name in undeclared and isinstance(context.get(owner.name), dict)
                and field.attr not in context[owner.name] and not hasattr(dict, field.attr)):
            unknown.setdefault(f"{owner.name}.{field.attr}", field.lineno)
    return [Problem(str(origin), line, f"unknown variable '{name}'; see the variables listed in templates/README.md")
            for name, line in sorted(unknown.items(), key=lambda item: (item[1], item[0]))]


def _render_problems(renderer: Renderer, language: str, kind: OutboundKind, part: str, context: dict[str, Any],
                     name: str, origin: Path) -> list[Problem]:
    try:
        renderer.render(language, kind, part, context)
    except UndefinedError as error:
        return [Problem(str(origin), _error_line(error, name), f"unknown variable: {error.message}; "
                        "see the variables listed in templates/README.md")]
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as error:
        # an operator's template can fail in many ways; report it rather than stop check-config
        return [Problem(str(origin), _error_line(error, name), f"template error: {type(error).__name__}: {error}")]
    return []


def _error_line(error: BaseException, name: str) -> int:
    """The template line of the innermost frame that ran template code (Jinja names the
    frames of a template loaded from a dict "<template>")."""
    traceback = error.__traceback__
    line = 1
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename in (name, "<template>"):
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
