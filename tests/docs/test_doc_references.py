"""Every ``§`` reference in the code and the docs lands on a section of a document in this
repository, and nothing cites documents that are not in it.

- A reference ``§4.2`` (or a range ``§20.3-20.5``) names a numbered heading of
  ``docs/protocol.md`` (``### 4.2 GET /sdk/init``), unless the nearest document named
  before it on the same line is ``architecture.md`` (``docs/architecture.md §3``): then it
  names a heading of ``docs/architecture.md``. Inside ``docs/architecture.md`` a bare
  reference names its own sections.
- No file cites the design notes the project started from (``PROTOCOL``, ``ARCHITECTURE``,
  ``SPEC``, ``[PY]``, ``PY100``, ``../shared``): a maintainer with only this repository
  could not follow such a reference.

Failures list ``file:line`` so they can be fixed one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
CODE_DIRS = ("flagkit", "flagkit_django", "flagkit_flask", "tests", "example_projects")
SKIP_DIRS = frozenset({".venv", "__pycache__", "node_modules", ".git"})

_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s")
_FENCE = re.compile(r"^\s*(```|~~~)")
# ``§4.2``, a range ``§20.3-20.5`` (hyphen or en dash), and which document a line names.
_REFERENCE = re.compile(r"§\s?(\d+(?:\.\d+)*)(?:\s?[-\u2013]\s?(\d+(?:\.\d+)*))?")
_DOCUMENT = re.compile(r"(architecture|protocol)\.md")
# Citations of documents outside the repository. ``\bPROTOCOL\b`` does not match
# ``ssl.PROTOCOL_TLS_CLIENT``; ``SPEC.json`` is a placeholder file name, not a citation.
_FORBIDDEN = (
    ("PROTOCOL", re.compile(r"\bPROTOCOL\b")),
    ("ARCHITECTURE", re.compile(r"\bARCHITECTURE\b")),
    ("SPEC", re.compile(r"\bSPEC\b(?!\.json)")),
    ("[PY]", re.compile(r"\[PY\d*\]")),
    ("PY100", re.compile(r"\bPY100\b")),
    ("../shared", re.compile(r"\.\./shared")),
)


def numbered_headings(path: Path) -> list[str]:
    """The section numbers of the headings of a Markdown file, in order (fences skipped)."""
    found: list[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append(match.group(1))
    return found


@cache
def sections(path: Path) -> frozenset[str]:
    """The section numbers a reference may name in ``path``."""
    return frozenset(numbered_headings(path))


def references(line: str, *, default: str = "protocol") -> Iterator[tuple[str, str]]:
    """``(document, section)`` for every ``§`` reference on ``line``.

    >>> list(references("see docs/architecture.md §3 and protocol.md §4.2-4.3"))
    [('architecture', '3'), ('protocol', '4.2'), ('protocol', '4.3')]
    """
    named = [(m.start(), m.group(1)) for m in _DOCUMENT.finditer(line)]
    for match in _REFERENCE.finditer(line):
        document = default
        for position, name in named:
            if position < match.start():
                document = name
        yield document, match.group(1)
        if match.group(2):
            yield document, match.group(2)


def _files(suffix: str, roots: tuple[str, ...]) -> Iterator[Path]:
    for root in roots:
        base = ROOT / root
        for path in sorted(base.rglob(f"*{suffix}")):
            if SKIP_DIRS.isdisjoint(path.relative_to(ROOT).parts):
                yield path


def python_files() -> list[Path]:
    this = Path(__file__).resolve()
    return [path for path in _files(".py", CODE_DIRS) if path.resolve() != this]


def markdown_files() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [page for page in pages if page.exists()]


def problems_in(path: Path) -> list[str]:
    """Broken ``§`` references and forbidden citations in ``path``, as ``file:line: ...``."""
    available = {"protocol": sections(PROTOCOL), "architecture": sections(ARCHITECTURE)}
    default = "architecture" if path.resolve() == ARCHITECTURE.resolve() else "protocol"
    where = path.relative_to(ROOT)
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for name, pattern in _FORBIDDEN:
            if pattern.search(line):
                found.append(f"{where}:{number}: cites {name}: {line.strip()[:100]}")
        for document, section in references(line, default=default):
            if section not in available[document]:
                found.append(f"{where}:{number}: §{section} is not a section of docs/{document}.md")
    return found


def test_the_documents_have_the_numbered_sections() -> None:
    """protocol.md has §0-§20 with the subsections the code cites; architecture.md is
    numbered too (otherwise every reference check below would pass vacuously)."""
    protocol = sections(PROTOCOL)
    assert {str(n) for n in range(21)} <= protocol
    assert {"4.2", "6.2.6", "17.4", "18", "20.1", "20.9"} <= protocol
    assert {"1", "2", "3"} <= sections(ARCHITECTURE)
    for document in (PROTOCOL, ARCHITECTURE):
        numbers = numbered_headings(document)
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        assert not repeated, f"{document.name}: sections numbered twice: {repeated}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PROTOCOL §4.2.", [("protocol", "4.2")]),
        ("(§17.4/§20.2)", [("protocol", "17.4"), ("protocol", "20.2")]),
        ("§13.1-13.2", [("protocol", "13.1"), ("protocol", "13.2")]),
        ("docs/architecture.md §1 to §5", [("architecture", "1"), ("architecture", "5")]),
        ("architecture.md §2, protocol.md §6", [("architecture", "2"), ("protocol", "6")]),
    ],
)
def test_references_are_read_as_written(line: str, expected: list[tuple[str, str]]) -> None:
    """The parser finds each section number and the document it belongs to."""
    assert list(references(line)) == expected


def test_forbidden_citations_are_recognised(tmp_path: Path) -> None:
    """The patterns catch the citations to outside documents and spare look-alikes."""
    text = "\n".join(
        [
            "Decisions where PROTOCOL leaves room",  # 1: forbidden
            "ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)",  # 2: fine
            "a SPEC deviation",  # 3: forbidden
            "python run_blocks.py SPEC.json",  # 4: fine
            "as in [PY] and [PY100]",  # 5: forbidden
            "see ../shared/notes",  # 6: forbidden
        ]
    )
    hits = [
        number
        for number, line in enumerate(text.splitlines(), 1)
        if any(pattern.search(line) for _, pattern in _FORBIDDEN)
    ]
    assert hits == [1, 3, 5, 6]


def test_code_references_name_existing_sections() -> None:
    """Every ``§`` in the .py files of the packages, tests and examples names a section that
    exists, and none cites a document outside the repository."""
    problems = [problem for path in python_files() for problem in problems_in(path)]
    assert not problems, f"{len(problems)} bad references:\n" + "\n".join(problems)


def test_doc_pages_reference_existing_sections() -> None:
    """The same for README.md and docs/*.md (protocol.md cites its own sections too)."""
    problems = [problem for path in markdown_files() for problem in problems_in(path)]
    assert not problems, f"{len(problems)} bad references:\n" + "\n".join(problems)


_REPO_PATH = re.compile(
    r"`((?:flagkit|flagkit_django|flagkit_flask|tests|benchmarks|example_projects|tools)"
    r"/[A-Za-z0-9_./-]+)`"
)


def test_repository_paths_named_in_the_docs_exist() -> None:
    """Every file or folder of this repository that README.md or docs/ names in backticks
    (``flagkit/core/store.py``) exists, so the docs move with the code."""
    missing = [
        f"{path.relative_to(ROOT)}:{number}: {name}"
        for path in markdown_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for name in _REPO_PATH.findall(line)
        if not (ROOT / name.rstrip("/")).exists()
    ]
    assert not missing, "the docs name paths that do not exist:\n" + "\n".join(missing)
