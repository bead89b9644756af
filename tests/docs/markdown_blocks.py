"""Find the Python code blocks of a Markdown file (used by the docs test and its runner).

A fenced block whose info string's first word is ``python`` (or ``py``/``python3``) is a
Python block. It is a *fragment* when the nearest non-blank line above its opening fence is
an HTML comment starting with ``fragment``, e.g. ``<!-- fragment -->`` or
``<!-- fragment: settings excerpt -->``; fragments are only checked for syntax, every
other Python block is run (docs/index.md documents the convention).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

PYTHON_INFO = frozenset({"python", "py", "python3"})
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_FRAGMENT = re.compile(r"^\s*<!--\s*fragment\b.*-->\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One Python code block: ``line`` is the 1-based line of its first code line."""

    path: str
    line: int
    source: str
    fragment: bool

    @property
    def where(self) -> str:
        """``README.md:42``: where the block's code starts."""
        return f"{self.path}:{self.line}"


def python_blocks(path: Path, name: str | None = None) -> list[Block]:
    """Every Python block of the Markdown file ``path`` in order (``name`` labels them)."""
    label = name or path.name
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening.group("fence")
        info = opening.group("info").strip().split()
        start = index + 1
        end = start
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if info and info[0].lower() in PYTHON_INFO:
            previous = index - 1
            while previous >= 0 and not lines[previous].strip():
                previous -= 1
            fragment = previous >= 0 and _FRAGMENT.match(lines[previous]) is not None
            source = textwrap.dedent("\n".join(lines[start:end])) + "\n"
            blocks.append(Block(label, start + 1, source, fragment))
        index = end + 1
    return blocks
