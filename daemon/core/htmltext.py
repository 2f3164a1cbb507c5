"""HTML → readable plain text, for mails that have no text/plain part.

Paragraphs and line breaks are kept, lists get "- " or "1. ", links become "text <url>",
blockquotes become "> " lines (so the reply splitter sees the quoted history), scripts,
styles and the head are dropped, entities decoded. Stdlib `html.parser` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Final

_DROPPED: Final = frozenset({"script", "style", "title", "template", "head", "xml", "object"})
_PARAGRAPHS: Final = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "ul", "ol", "dl", "blockquote", "address",
     "figure", "fieldset", "form"}
)  # fmt: skip
_LINES: Final = frozenset(
    {"div", "tr", "li", "dt", "dd", "section", "article", "header", "footer", "main", "nav", "aside",
     "center", "caption", "tbody", "thead", "tfoot", "body", "html"}
)  # fmt: skip
_CELLS: Final = frozenset({"td", "th"})
_LINK_SCHEMES: Final = ("http:", "https:", "ftp:", "mailto:", "tel:")
_SEPARATOR: Final = "_" * 32
_TAG: Final = re.compile(r"<[^<>]*>")
_BLANK_RUNS: Final = re.compile(r"\n{3,}")


@dataclass(slots=True)
class _Writer:
    """Collects output lines; a line gets its "> " prefix from the quote depth when it ends."""

    lines: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    quote_depth: int = 0
    want_blank: bool = False
    space_pending: bool = False

    def _prefix(self) -> str:
        return "> " * self.quote_depth

    def end_line(self) -> None:
        self.lines.append((self._prefix() + "".join(self.words)).rstrip())
        self.words = []
        self.space_pending = False

    def break_line(self) -> None:
        if self.words:
            self.end_line()

    def paragraph(self) -> None:
        self.break_line()
        self.want_blank = True

    def blank_line_now(self) -> None:
        """End the line and add the pending blank line at the current quote depth."""
        self.break_line()
        if self.lines and self.lines[-1].strip("> "):
            self.lines.append(self._prefix().rstrip())
        self.want_blank = False

    def _start_text(self) -> None:
        if self.want_blank and self.lines and self.lines[-1].strip("> "):
            self.lines.append(self._prefix().rstrip())
        self.want_blank = False

    def write(self, text: str) -> None:
        """Text whose white space collapses, as a browser shows it."""
        words = text.split()
        if not words:
            self.space_pending = self.space_pending or (bool(text) and bool(self.words))
            return
        self._start_text()
        if self.words and (self.space_pending or text[0].isspace()):
            self.words.append(" ")
        self.words.append(" ".join(words))
        self.space_pending = text[-1].isspace()

    def write_marker(self, marker: str) -> None:
        """A list marker, kept with its indentation."""
        self._start_text()
        self.words.append(marker)
        self.space_pending = True

    def write_preformatted(self, text: str) -> None:
        self._start_text()
        first, *rest = text.split("\n")
        self.words.append(first)
        for line in rest:
            self.end_line()
            self.words.append(line)

    def text(self) -> str:
        self.break_line()
        joined = "\n".join(line.rstrip() for line in self.lines)
        return _BLANK_RUNS.sub("\n\n", joined).strip("\n")


@dataclass(slots=True)
class _Link:
    href: str
    text: list[str] = field(default_factory=list)


class _HtmlToText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _Writer()
        self.dropped: list[str] = []
        self.lists: list[list[int]] = []  # per open list: [next number] or [] when unordered
        self.links: list[_Link] = []
        self.preformatted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.dropped = [name for name in self.dropped if name != "head"]
        if tag in _DROPPED:
            self.dropped.append(tag)
            return
        self._open_block(tag)
        if tag == "a":
            self.links.append(_Link(dict(attrs).get("href") or ""))
        elif tag in ("ol", "ul"):
            self.lists.append([1] if tag == "ol" else [])
        elif tag == "li":
            self._list_marker()
        elif tag == "pre":
            self.preformatted += 1

    def _open_block(self, tag: str) -> None:
        if tag == "blockquote":
            self.out.blank_line_now()
            self.out.quote_depth += 1
        elif tag in ("ul", "ol") and self.lists:
            self.out.break_line()
        elif tag in _PARAGRAPHS:
            self.out.paragraph()
        elif tag in _LINES:
            self.out.break_line()
        elif tag == "br":
            self.out.end_line()
        elif tag == "hr":
            self.out.break_line()
            self.out.write(_SEPARATOR)
            self.out.end_line()
        elif tag in _CELLS and self.out.words:
            self.out.space_pending = True

    def _list_marker(self) -> None:
        indent = "  " * max(len(self.lists) - 1, 0)
        counter = self.lists[-1] if self.lists else []
        marker = f"{counter[0]}." if counter else "-"
        if counter:
            counter[0] += 1
        self.out.write_marker(indent + marker)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._open_block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            if tag in self.dropped:
                del self.dropped[len(self.dropped) - 1 - self.dropped[::-1].index(tag) :]
            return
        if tag == "a" and self.links:
            self._close_link(self.links.pop())
        elif tag in ("ol", "ul") and self.lists:
            self.lists.pop()
        elif tag == "pre":
            self.preformatted = max(self.preformatted - 1, 0)
        self._close_block(tag)

    def _close_block(self, tag: str) -> None:
        if tag == "blockquote":
            self.out.break_line()
            self.out.quote_depth = max(self.out.quote_depth - 1, 0)
            self.out.want_blank = True
        elif tag in ("ul", "ol") and self.lists:
            self.out.break_line()
        elif tag in _PARAGRAPHS:
            self.out.paragraph()
        elif tag in _LINES:
            self.out.break_line()

    def _close_link(self, link: _Link) -> None:
        href = link.href.strip()
        text = " ".join("".join(link.text).split())
        if not href.lower().startswith(_LINK_SCHEMES):
            return
        shown = href[7:] if href.lower().startswith("mailto:") else href
        if shown.rstrip("/") not in text:
            self.out.write(f" <{shown}>" if text else shown)

    def handle_data(self, data: str) -> None:
        if self.dropped:
            return
        for link in self.links:
            link.text.append(data)
        if self.preformatted:
            self.out.write_preformatted(data)
        else:
            self.out.write(data)


def _strip_tags(html: str) -> str:
    return "\n".join(" ".join(line.split()) for line in unescape(_TAG.sub(" ", html)).splitlines())


def html_to_text(html: str) -> str:
    """Readable text of an HTML document or fragment; never raises."""
    parser = _HtmlToText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        return _BLANK_RUNS.sub("\n\n", _strip_tags(html)).strip()
    return parser.out.text()
