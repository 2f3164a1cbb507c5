"""A small schema engine: TOML tables → frozen dataclasses, every problem with FILE:LINE.

`build(cls, table, path, ctx)` walks a dataclass's fields (their type hints say what is
expected), collects every problem instead of stopping at the first, and asks
`KeyLines` which line of the file holds a key. The dataclasses live in `config.py`.

Field metadata understood here:
- ``secret=True``: the key also accepts ``<key>_file`` (read, trailing newline dropped)
  and ``<key>_env`` (an environment variable's value).
- ``path=True``: a relative path is taken relative to the config file's folder.
- ``doc="..."``: a short description, used in messages.
A dataclass may define ``validate(self) -> list[tuple[tuple, str]]`` for checks across
fields; each returned (key path, message) is reported at that key's line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from daemon.errors import Problem

KeyPath = tuple[str | int, ...]


class ByteSize(int):
    """A size in bytes; the file may say 26214400, "25MB", "512k"."""


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2,
               "mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(value: object) -> timedelta | None:
    """Seconds as a number, or a string such as "90s", "15m", "4h", "5d", "1h30m"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return timedelta(seconds=value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower().replace(" ", "")
    if not text or _DURATION_PART.sub("", text):
        return None
    seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def parse_size(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


class KeyLines:
    """Finds the line of a key path in a TOML text (tomllib keeps no positions)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _PART = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
    _KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        self._scan(text)

    def _scan(self, text: str) -> None:
        table: KeyPath = ()
        counts: dict[tuple[str, ...], int] = {}
        depth = 0
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            if depth == 0:
                table = self._header(line, table, counts, number) or table
                key = self._KEY.match(line)
                if key and not self._HEADER.match(line):
                    parts = tuple(_unquote(p) for p in _split_dotted(key.group(1)))
                    self.lines.setdefault(table + parts, number)
            stripped = _strip_strings(line)
            depth = max(0, depth + stripped.count("[") - stripped.count("]")) if self._KEY.match(line) or depth else 0
            for quote in ('"""', "'''"):
                if line.count(quote) % 2 == 1:
                    in_multiline = quote

    def _header(self, line: str, table: KeyPath, counts: dict[tuple[str, ...], int], number: int) -> KeyPath | None:
        match = self._HEADER.match(line)
        if not match:
            return None
        names = tuple(_unquote(p) for p in _split_dotted(match.group(2)))
        path = self._resolve_arrays(names, counts)
        if match.group(1) == "[[":
            index = counts.get(names, -1) + 1
            counts[names] = index
            path = (*path, index)
        self.lines.setdefault(path, number)
        return path

    @staticmethod
    def _resolve_arrays(names: tuple[str, ...], counts: dict[tuple[str, ...], int]) -> KeyPath:
        path: list[str | int] = []
        for i, name in enumerate(names):
            path.append(name)
            prefix = names[: i + 1]
            if prefix in counts and i < len(names) - 1:
                path.append(counts[prefix])
        return tuple(path)

    def line_of(self, path: KeyPath) -> int:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return 1


def _split_dotted(text: str) -> list[str]:
    return [p.strip() for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', text) if p.strip()]


def _unquote(part: str) -> str:
    return part[1:-1] if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'" else part


def _strip_strings(line: str) -> str:
    line = re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', "", line)
    return line.split("#", 1)[0]


@dataclasses.dataclass
class BuildContext:
    file: str
    base_dir: Path
    lines: KeyLines
    environ: typing.Mapping[str, str]
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.lines.line_of(path), message))


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_MISSING = object()


def build(cls: type[Any], table: object, path: KeyPath, ctx: BuildContext) -> Any:
    """Build `cls` from a TOML table; on problems, record them and return None."""
    if not isinstance(table, dict):
        ctx.problem(path, f"{dotted(path)} must be a table, not {_describe(table)}")
        return None
    hints = get_type_hints(cls)
    known = _known_keys(cls)
    for key in table:
        if key not in known:
            expected = ", ".join(sorted(known))
            ctx.problem((*path, key), f"unknown key {dotted((*path, key))!r}; expected one of: {expected}")
    values: dict[str, Any] = {}
    ok = True
    for field in dataclasses.fields(cls):
        value = _field_value(field, hints[field.name], table, path, ctx)
        if value is _MISSING:
            ok = False
        else:
            values[field.name] = value
    if not ok:
        return None
    try:
        instance = cls(**values)
    except (TypeError, ValueError) as error:
        ctx.problem(path, f"{dotted(path) or 'config'}: {error}")
        return None
    for key_path, message in getattr(instance, "validate", lambda: [])():
        ctx.problem((*path, *key_path), message)
    return instance


def _known_keys(cls: type[Any]) -> set[str]:
    keys = set()
    for field in dataclasses.fields(cls):
        keys.add(field.name)
        if field.metadata.get("secret"):
            keys.update({f"{field.name}_file", f"{field.name}_env"})
    return keys


def _field_value(field: dataclasses.Field[Any], hint: Any, table: dict[str, Any], path: KeyPath,
                 ctx: BuildContext) -> Any:
    key_path = (*path, field.name)
    if field.metadata.get("secret"):
        secret = _secret_value(field.name, table, path, ctx)
        if secret is not None:
            return secret  # the value, or _MISSING when the file or variable failed
    if field.name not in table and dataclasses.is_dataclass(field.default):
        value = build(type(field.default), {}, key_path, ctx)  # a missing section: its defaults, paths resolved
        value = _MISSING if value is None else value
    elif field.name not in table:
        value = _default_of(field, key_path, ctx)
    else:
        value = convert(hint, table[field.name], key_path, ctx)
    if value is _MISSING:
        return _MISSING
    if field.metadata.get("path") and isinstance(value, str) and value:  # defaults too: relative to the file
        return str((ctx.base_dir / value).resolve()) if not os.path.isabs(value) else value
    return value


def _default_of(field: dataclasses.Field[Any], key_path: KeyPath, ctx: BuildContext) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    doc = field.metadata.get("doc", "")
    ctx.problem(key_path[:-1], f"missing key {dotted(key_path)!r}" + (f": {doc}" if doc else ""))
    return _MISSING


def _secret_value(name: str, table: dict[str, Any], path: KeyPath, ctx: BuildContext) -> Any:
    """None when neither <name>_file nor <name>_env is given; _MISSING when they fail."""
    given = [k for k in (name, f"{name}_file", f"{name}_env") if k in table]
    if len(given) > 1:
        ctx.problem((*path, given[1]), f"give only one of {', '.join(given)}")
        return _MISSING
    file_key, env_key = f"{name}_file", f"{name}_env"
    if file_key in table:
        return _read_secret_file(table[file_key], (*path, file_key), ctx)
    if env_key in table:
        variable = table[env_key]
        if not isinstance(variable, str) or variable not in ctx.environ:
            ctx.problem((*path, env_key), f"environment variable {variable!r} is not set; "
                        f"expected the name of a variable that holds {dotted((*path, name))}")
            return _MISSING
        return ctx.environ[variable]
    return None


def _read_secret_file(value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    if not isinstance(value, str):
        ctx.problem(key_path, f"{dotted(key_path)} must be a file path (string), not {_describe(value)}")
        return _MISSING
    file = Path(value) if os.path.isabs(value) else ctx.base_dir / value
    try:
        return file.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        ctx.problem(key_path, f"cannot read {dotted(key_path)} {str(file)!r}: {error.strerror or error}")
        return _MISSING


def convert(hint: Any, value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    """Check `value` against the type `hint`; record a problem and return _MISSING if wrong."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return _convert_optional(hint, value, key_path, ctx)
    if origin is Literal:
        return _convert_choice(get_args(hint), value, key_path, ctx)
    if origin is tuple:
        return _convert_list(get_args(hint)[0], value, key_path, ctx)
    if origin is dict:
        return _convert_mapping(get_args(hint)[1], value, key_path, ctx)
    if dataclasses.is_dataclass(hint):
        built = build(typing.cast(type, hint), value, key_path, ctx)
        return _MISSING if built is None else built
    return _convert_scalar(hint, value, key_path, ctx)


def _convert_optional(hint: Any, value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    options = [a for a in get_args(hint) if a is not type(None)]
    if len(options) != 1:
        raise TypeError(f"unsupported config type {hint}")
    return convert(options[0], value, key_path, ctx)


def _convert_choice(choices: tuple[Any, ...], value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    if value in choices and type(value) is type(choices[0]):
        return value
    wanted = " or ".join(repr(c) for c in choices)
    ctx.problem(key_path, f"{dotted(key_path)} is {value!r}; expected {wanted}")
    return _MISSING


def _convert_list(item: Any, value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    if not isinstance(value, list):
        ctx.problem(key_path, f"{dotted(key_path)} must be a list, not {_describe(value)}")
        return _MISSING
    items = [convert(item, v, (*key_path, i), ctx) for i, v in enumerate(value)]
    return _MISSING if any(v is _MISSING for v in items) else tuple(items)


def _convert_mapping(item: Any, value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    if not isinstance(value, dict):
        ctx.problem(key_path, f"{dotted(key_path)} must be a table, not {_describe(value)}")
        return _MISSING
    items = {k: convert(item, v, (*key_path, k), ctx) for k, v in value.items()}
    return _MISSING if any(v is _MISSING for v in items.values()) else items


def _convert_scalar(hint: Any, value: object, key_path: KeyPath, ctx: BuildContext) -> Any:
    if hint is timedelta:
        converted: Any = parse_duration(value)
        expected = 'a duration such as 300 (seconds), "15m", "4h" or "5d"'
    elif hint is ByteSize:
        size = parse_size(value)
        converted = ByteSize(size) if size is not None else None
        expected = 'a size such as 26214400, "25MB" or "512k"'
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        converted = float(typing.cast(float, value)) if ok else None
        expected = "a number"
    elif hint in (str, int, bool):
        converted = value if type(value) is hint else None
        expected = {str: "a string", int: "an integer", bool: "true or false"}[hint]
    else:
        raise TypeError(f"unsupported config type {hint}")
    if converted is None:
        ctx.problem(key_path, f"{dotted(key_path)} is {_describe(value)}; expected {expected}")
        return _MISSING
    return converted


def _describe(value: object) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, dict | list) else ""
    return f"{kind} {shown}".strip() if len(shown) < 60 else kind


def iter_problems_sorted(problems: list[Problem]) -> Iterator[Problem]:
    yield from sorted(problems, key=lambda p: (p.file, p.line))
