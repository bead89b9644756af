"""Flag-key validation and the User-Agent string."""

from __future__ import annotations

import platform
import re

import pytest

from flagkit.utils.platform import SDK_LANGUAGE, is_browser_runtime, user_agent
from flagkit.utils.validators import MAX_FLAG_KEY_LENGTH, flag_key_problem, is_valid_flag_key


@pytest.mark.parametrize("key", ["a", "dark-mode", "dark_mode", "Feature42", "x" * 256])
def test_valid_flag_keys(key: str) -> None:
    """Letters, digits, '_' and '-' up to 256 characters are valid."""
    assert is_valid_flag_key(key)
    assert flag_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "must not be empty"),
        ("dark mode", "may contain only letters, digits, '_' and '-'"),
        ("dark.mode", "may contain only letters"),
        ("dark-mode\n", "may contain only letters"),
        ("é", "may contain only letters"),
        ("x" * 257, "257 characters long; the maximum is 256"),
        (None, "must be a str, got NoneType"),
        (7, "must be a str, got int"),
    ],
)
def test_invalid_flag_keys(key: object, fragment: str) -> None:
    """Each invalid key is refused with a reason naming the rule."""
    assert not is_valid_flag_key(key)
    problem = flag_key_problem(key)
    assert problem is not None and fragment in problem


def test_long_invalid_key_is_shortened_in_the_reason() -> None:
    """A long bad key is shown truncated, not in full."""
    problem = flag_key_problem("bad key " + "y" * 200)
    assert problem is not None and "y" * 100 not in problem
    assert MAX_FLAG_KEY_LENGTH == 256


def test_user_agent_shape() -> None:
    """FlagKit-Python/{version} ({impl}/{py}; {os}/{release}) as in docs/protocol.md §2.1."""
    agent = user_agent("1.1.0")
    assert agent == (
        f"FlagKit-Python/1.1.0 ({platform.python_implementation()}/{platform.python_version()}; "
        f"{platform.system()}/{platform.release()})"
    )
    assert re.fullmatch(r"FlagKit-Python/1\.1\.0 \(\w+/[\w.+]+; [^/]+/.+\)", agent)
    assert SDK_LANGUAGE == "python"


def test_not_a_browser_runtime() -> None:
    """CPython under pytest is not Brython or Pyodide."""
    assert is_browser_runtime() is False
