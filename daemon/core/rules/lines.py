"""Finding the line of a key in a rule file's text (tomllib keeps no positions).

The n-th `[[rule]]` header starts the n-th rule; a problem's key path is looked up inside
that rule's lines, one key after another going down, so `when.any[1].subject.contians`
lands on the line that says `contians`. A value (a bad regex, an unknown agent) narrows it
to the line that holds it.
"""

from __future__ import annotations

import re

from daemon.core.rules.model import KeyPath

_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_COMMENT = re.compile(r"(?:^|\s)#.*$")


class LineFinder:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.starts = [number for number, line in enumerate(self.lines, start=1) if _RULE_HEADER.match(line)]

    def rule_line(self, index: int) -> int:
        return self.starts[index] if index < len(self.starts) else 1

    def line_of(self, index: int | None, path: KeyPath, hint: str = "") -> int:
        """The line of `path` inside rule `index` (None: the whole file), narrowed by `hint`."""
        if index is None:
            position, end = 1, len(self.lines)
        else:
            position = self.rule_line(index)
            following = [s for s in self.starts if s > position]
            end = following[0] - 1 if following else len(self.lines)
        for key in path:
            if isinstance(key, str):
                position = self._find(_key_pattern(key), position, end, code_only=True) or position
        if hint:
            position = self._find(re.compile(re.escape(hint)), position, end, code_only=False) or position
        return max(position, 1)

    def _find(self, pattern: re.Pattern[str], start: int, end: int, code_only: bool) -> int | None:
        for number in range(start, end + 1):
            line = self.lines[number - 1]
            if pattern.search(_without_comment(line) if code_only else line):
                return number
        return None


def _without_comment(line: str) -> str:
    return _COMMENT.sub("", line)


def _key_pattern(key: str) -> re.Pattern[str]:
    name = re.escape(key)
    return re.compile(rf"(?:^|[\s{{,.\[])(?:{name}|\"{name}\"|'{name}')\s*(?:=|\]|\.)")
