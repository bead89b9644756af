"""Where a field of a flags file is: the 1-based line of a field path, in JSON or YAML.

Used to put the line into a :class:`~flagkit.server.flags_file.FlagsFileError`
(``flags.json:12: flags[2].flagType: ...``). PyYAML is imported only for YAML files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = ["json_line", "path_tokens", "yaml_line"]

_TOKEN_RE = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def path_tokens(field_path: str) -> list[str | int]:
    """``flags[2].rules[0].op`` -> ``["flags", 2, "rules", 0, "op"]``."""
    tokens: list[str | int] = []
    for index, name in _TOKEN_RE.findall(field_path):
        tokens.append(int(index) if index else name)
    return tokens


_WS_RE = re.compile(r"[ \t\n\r]*")


def json_line(text: str, tokens: Sequence[str | int]) -> int | None:
    """1-based line where the value at ``tokens`` starts (or its deepest existing parent)."""
    decoder = json.JSONDecoder()

    def skip_ws(pos: int) -> int:
        match = _WS_RE.match(text, pos)
        return match.end() if match else pos

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    pos = skip_ws(0)
    best = line_of(pos)
    try:
        for token in tokens:
            if isinstance(token, str) and text.startswith("{", pos):
                pos = skip_ws(pos + 1)
                while not text.startswith("}", pos):
                    name, pos = decoder.raw_decode(text, pos)
                    pos = skip_ws(skip_ws(pos) + 1)  # past the ':'
                    if name == token:
                        break
                    pos = skip_ws(decoder.raw_decode(text, pos)[1])
                    if text.startswith(",", pos):
                        pos = skip_ws(pos + 1)
                else:
                    return best
            elif isinstance(token, int) and text.startswith("[", pos):
                pos = skip_ws(pos + 1)
                index = 0
                while not text.startswith("]", pos):
                    if index == token:
                        break
                    pos = skip_ws(decoder.raw_decode(text, pos)[1])
                    if text.startswith(",", pos):
                        pos = skip_ws(pos + 1)
                    index += 1
                else:
                    return best
            else:
                return best
            best = line_of(pos)
    except (ValueError, IndexError, RecursionError):
        return best
    return best


def yaml_line(text: str, tokens: Sequence[str | int]) -> int | None:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    best: int = node.start_mark.line + 1
    for token in tokens:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(token, str):
            child = next((v for k, v in node.value if getattr(k, "value", None) == token), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(token, int):
            child = node.value[token] if token < len(node.value) else None
        if child is None:
            return best
        node = child
        best = node.start_mark.line + 1
    return best
