"""Every Python code block of README.md and docs/*.md runs, or (marked a fragment) parses.

Runnable blocks of one file run in order in one fresh Python process (``run_blocks.py``),
against a local FlagKit server serving ``example_projects/flags.json`` and accepting every
API key the file's code mentions; the documented port 8200 is rewritten to that server's
port. Fragments (``<!-- fragment -->`` before the fence, see docs/index.md) are parsed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_blocks import Block, python_blocks

from flagkit.testing import FlagKitServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

FLAGS_FILE = ROOT / "example_projects" / "flags.json"
RUNNER = HERE / "run_blocks.py"
KEY_PREFIXES = ("sdk_", "srv_", "cli_")
FILE_TIMEOUT = 90.0


def markdown_files() -> list[Path]:
    """README.md and every docs/*.md, sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def label(path: Path) -> str:
    return str(path.relative_to(ROOT))


def blocks_of(path: Path) -> list[Block]:
    return python_blocks(path, label(path))


ALL_FILES = markdown_files()
RUNNABLE_FILES = [p for p in ALL_FILES if any(not b.fragment for b in blocks_of(p))]


def api_keys_in(blocks: list[Block]) -> list[str]:
    """String literals of the blocks that look like API keys (the server accepts them)."""
    keys: set[str] = set()
    for block in blocks:
        for node in ast.walk(ast.parse(block.source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                value = node.value
                if value.startswith(KEY_PREFIXES) and value.isascii() and " " not in value:
                    keys.add(value)
    return sorted(keys)


def run_blocks(blocks: list[Block], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``blocks`` with run_blocks.py against a fresh local server; the finished process."""
    keys = api_keys_in(blocks) or ["sdk_demo_key_123456"]
    with FlagKitServer(flags_file=FLAGS_FILE, api_keys=keys, heartbeat_interval=1.0) as server:
        spec = {
            "port": server.port,
            "blocks": [
                {
                    "where": b.where,
                    "file": str(ROOT / b.path) if (ROOT / b.path).exists() else b.path,
                    "line": b.line,
                    "source": b.source,
                }
                for b in blocks
            ],
        }
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGKIT_", "DJANGO_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        work = tmp_path / "cwd"
        work.mkdir()
        try:
            return subprocess.run(
                [sys.executable, str(RUNNER), str(spec_path)],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=FILE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = exc.stdout or ""
            text = output if isinstance(output, str) else output.decode(errors="replace")
            pytest.fail(f"blocks did not finish in {FILE_TIMEOUT} s; output:\n{text}")


@pytest.mark.parametrize("path", ALL_FILES, ids=label)
def test_every_python_block_parses(path: Path) -> None:
    """Each Python block of the file, fragment or not, is valid Python syntax."""
    problems = []
    for block in blocks_of(path):
        try:
            ast.parse(block.source, filename=block.where)
        except SyntaxError as exc:
            problems.append(f"{block.path}:{block.line + (exc.lineno or 1) - 1}: {exc.msg}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", RUNNABLE_FILES, ids=label)
def test_runnable_python_blocks_run(path: Path, tmp_path: Path) -> None:
    """The file's blocks not marked as fragments run, in order, without raising."""
    blocks = [b for b in blocks_of(path) if not b.fragment]
    result = run_blocks(blocks, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_has_runnable_quick_starts() -> None:
    """README.md's quick starts (core, Django, Flask) are run, not merely parsed."""
    runnable = [b.source for b in blocks_of(ROOT / "README.md") if not b.fragment]
    code = "\n".join(runnable)
    for needle in ("FlagKit", "flagkit_django", "flagkit_flask"):
        assert needle in code, f"no runnable README block uses {needle}"


def test_harness_reports_the_markdown_line_of_a_failing_block(tmp_path: Path) -> None:
    """A failing block fails the run and the output names its Markdown file and line, and
    blocks share one namespace (a later block sees an earlier block's names)."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# Doc\n\n```python\nanswer = 42\n```\n\ntext\n\n```python\n"
        "assert answer == 42\nraise RuntimeError('boom')\n```\n",
        encoding="utf-8",
    )
    result = run_blocks(python_blocks(doc), tmp_path)
    assert result.returncode == 1
    assert "FAILED doc.md:10" in result.stdout
    assert "RuntimeError: boom" in result.stdout


def test_harness_points_the_documented_port_at_the_test_server(tmp_path: Path) -> None:
    """A block using local_port=8200 reaches the harness's server and its flags."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```python\nfrom flagkit import FlagKitClient\n"
        "with FlagKitClient(api_key='sdk_docs_test_key', local_port=8200) as client:\n"
        "    client.initialize()\n"
        "    assert client.get_string_value('welcome-message', 'x').startswith('Welcome')\n"
        "```\n",
        encoding="utf-8",
    )
    result = run_blocks(python_blocks(doc), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fragment_marker_is_recognised_and_only_parsed(tmp_path: Path) -> None:
    """A block after <!-- fragment --> is a fragment; other blocks (and non-Python fences)
    are not, and the line numbers point at the code."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "<!-- fragment: settings excerpt -->\n\n```python\nFLAGKIT = {...}\n```\n\n"
        "```bash\nmake demo\n```\n\n```py\nx = 1\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(doc)
    assert [(b.line, b.fragment) for b in blocks] == [(4, True), (12, False)]
