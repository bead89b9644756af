"""Run the Python blocks of one Markdown file in a fresh process (the docs test's runner).

Usage: ``python run_blocks.py SPEC.json``. The spec holds ``port``, the port of the local
FlagKit server started by the test, and ``blocks``, each with ``where`` (for messages),
``file`` and ``line`` (for tracebacks) and ``source``. Blocks run in order in one shared
namespace, like a reader pasting them into one session. Before running, each block is
rewritten so that it talks to that server: the integer ``8200`` (the documented port of
``flagkit serve``) becomes ``port``, and ``:8200`` inside string literals becomes
``:{port}``. Tracebacks name the Markdown file and line.

Exit status 0 when every block ran; otherwise 1 after printing ``FAILED <file>:<line>``
and the traceback.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import traceback
from typing import Any

DOCUMENTED_PORT = 8200


class _PointAtServer(ast.NodeTransformer):
    def __init__(self, port: int) -> None:
        self.port = port

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value == DOCUMENTED_PORT:
            return ast.copy_location(ast.Constant(self.port), node)
        if isinstance(value, str) and f":{DOCUMENTED_PORT}" in value:
            replaced = value.replace(f":{DOCUMENTED_PORT}", f":{self.port}")
            return ast.copy_location(ast.Constant(replaced), node)
        return node


def _setup_django_if_used(blocks: list[dict[str, Any]]) -> None:
    # Blocks that use Django run inside the test project's settings (tests/django).
    if any("django" in block["source"] for block in blocks):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.settings")
        import django

        django.setup()


def main(spec_path: str) -> int:
    """Run the blocks of the spec; 0 when all ran."""
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    blocks: list[dict[str, Any]] = spec["blocks"]
    transformer = _PointAtServer(int(spec["port"]))
    _setup_django_if_used(blocks)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks:
        where: str = block["where"]
        filename: str = block["file"]
        line = int(block["line"])
        print(f"--- running {where}", flush=True)
        try:
            tree = ast.parse(block["source"], filename=filename)
            ast.increment_lineno(tree, line - 1)
            tree = ast.fix_missing_locations(transformer.visit(tree))
            exec(compile(tree, filename, "exec"), namespace)
        except BaseException:
            print(f"FAILED {where}", flush=True)
            traceback.print_exc(file=sys.stdout)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
