"""Writing a dashboard change back to the flags file, keeping the file's formatting.

Only the changed flag's object is rewritten: its text span in the file is replaced by the
new object (indent 2, small leaf objects and arrays kept on one line, as in
``example_projects/flags.json``); every other byte stays, so ``git diff`` shows just that
flag. A new flag is appended to the ``flags`` array. If the file cannot be spliced (no
``flags`` array, say), the whole document is written with ``json.dumps(indent=2)``. The
write is atomic (a temp file in the same directory, then a rename) and keeps the mode.

YAML files are not rewritten (comments and layout could not be kept): the change is
served until the next restart and :func:`writable` says why.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = ["format_json", "splice_flag", "writable", "write_flag"]

_WIDTH: Final = 100
_WIDTH_OBJECT_LIST: Final = 88
_WS: Final = re.compile(r"[ \t\n\r]*")


def writable(path: Path | None) -> str | None:
    """None when changes can be written to ``path``, else why not (shown on the page)."""
    if path is None:
        return "the server has no flags file: changes last until it stops"
    if path.suffix.lower() in (".yaml", ".yml"):
        return (
            "YAML flags files are not rewritten (comments would be lost): "
            "changes last until a restart"
        )
    return None


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _inline(value: dict[str, Any] | list[Any], width: int) -> bool:
    if isinstance(value, list) and sum(isinstance(v, dict) for v in value) > 1:
        return width <= _WIDTH_OBJECT_LIST  # longer arrays of objects: one object a line
    return _depth(value) <= 3 and width <= _WIDTH


def format_json(value: object, indent: int = 0, *, top: bool = True, prefix: int = 0) -> str:
    """JSON with 2-space indents; containers nested at most 3 deep stay on one line when
    they fit in 100 columns, 88 for arrays of several objects (the top-level value is
    always expanded). ``prefix``: characters before the value on its first line."""
    compact = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, (dict, list)) or not value:
        return compact
    if not top and _inline(value, indent + prefix + len(compact) + 1):
        return compact
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = []
        for k, v in value.items():
            name = json.dumps(k, ensure_ascii=False) + ": "
            items.append(f"{pad}{name}{format_json(v, indent + 2, top=False, prefix=len(name))}")
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{format_json(v, indent + 2, top=False)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def _skip(text: str, pos: int) -> int:
    match = _WS.match(text, pos)
    return match.end() if match else pos


def _flags_array(text: str) -> tuple[int, list[tuple[int, int]]] | None:
    """Where the top-level ``flags`` array's ``]`` is and each element's span."""
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if not text.startswith("{", pos):
        return None
    pos = _skip(text, pos + 1)
    while not text.startswith("}", pos):
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # past the ':'
        if name == "flags":
            if not text.startswith("[", pos):
                return None
            pos = _skip(text, pos + 1)
            spans: list[tuple[int, int]] = []
            while not text.startswith("]", pos):
                end = decoder.raw_decode(text, pos)[1]
                spans.append((pos, end))
                pos = _skip(text, end)
                if text.startswith(",", pos):
                    pos = _skip(text, pos + 1)
            return pos, spans
        pos = _skip(text, decoder.raw_decode(text, pos)[1])
        if text.startswith(",", pos):
            pos = _skip(text, pos + 1)
    return None


def _column(text: str, pos: int) -> int:
    return pos - (text.rfind("\n", 0, pos) + 1)


def splice_flag(text: str, flag: Mapping[str, Any]) -> str:
    """The file text with ``flag`` (by key) replaced or appended; raises ``ValueError``
    when the text is not a JSON object with a ``flags`` array."""
    document = json.loads(text)
    found = _flags_array(text)
    if not isinstance(document, dict) or found is None:
        raise ValueError("no top-level flags array")
    close, spans = found
    flags = document["flags"]
    index = next(
        (i for i, f in enumerate(flags) if isinstance(f, dict) and f.get("key") == flag["key"]),
        None,
    )
    if index is not None:
        start, end = spans[index]
        column = _column(text, start)
        new = text[:start] + format_json(dict(flag), column) + text[end:]
        flags[index] = dict(flag)
    elif spans:
        start, end = spans[-1]
        column = _column(text, start)
        insert = ",\n" + " " * column + format_json(dict(flag), column)
        new = text[:end] + insert + text[end:]
        flags.append(dict(flag))
    else:
        column = _column(text, close) + 2
        insert = "\n" + " " * column + format_json(dict(flag), column) + "\n"
        new = text[:close].rstrip() + insert + " " * (column - 2) + text[close:]
        flags.append(dict(flag))
    if json.loads(new) != document:  # never write what we did not mean to
        raise ValueError("splicing changed more than the flag")
    return new


def updated_text(text: str, flag: Mapping[str, Any]) -> str:
    """The new file text with ``flag`` in it (spliced, else the whole document rewritten)."""
    try:
        return splice_flag(text, flag)
    except (ValueError, KeyError, IndexError, RecursionError):
        document = json.loads(text)
        if isinstance(document, list):
            document = {"flags": document}
        flags = document.setdefault("flags", [])
        index = next((i for i, f in enumerate(flags) if f.get("key") == flag["key"]), None)
        if index is None:
            flags.append(dict(flag))
        else:
            flags[index] = dict(flag)
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_flag(path: Path, new_text: str) -> None:
    """Replace ``path``'s content with ``new_text`` atomically (same directory, same mode)."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(new_text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
