"""System checks of ``flagkit_django``: exact messages, hints and ids."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from flagkit_django.checks import check_middleware, check_settings

AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
OURS = "flagkit_django.middleware.FlagKitMiddleware"
KEY = "sdk_checks_test_key"


# Hints say what to do inline: a pip user has no docs/ directory.
HINT_FIX_VALUE = (
    "Fix that value in settings.FLAGKIT; the message above says what it allows (run "
    "`manage.py check` to list every FLAGKIT problem)."
)
HINT_KEYS = (
    "FLAGKIT keys are the upper-case FlagKitOptions fields (e.g. POLLING_INTERVAL, OFFLINE) "
    "and the adapter keys ANONYMOUS_COOKIE_MAX_AGE, ANONYMOUS_COOKIE_NAME, CONTEXT_BUILDER, "
    "COUNTRY_HEADER, IP_HEADER, START_ON_REQUEST, START_WAIT, TRUST_PROXY_HEADERS, "
    "USER_ID_ATTRIBUTE."
)


def _settings(**flagkit: Any) -> override_settings:
    return override_settings(FLAGKIT=flagkit)


def test_valid_settings_give_no_messages() -> None:
    """A complete FLAGKIT dict and a well-ordered MIDDLEWARE pass every check."""
    with _settings(API_KEY=KEY, POLLING_INTERVAL=30, COUNTRY_HEADER="HTTP_CF_IPCOUNTRY"):
        assert check_settings() == []
        assert check_middleware() == []


def test_e001_missing_api_key() -> None:
    """No API_KEY (and not offline) is flagkit.E001 with a hint naming both fixes."""
    with _settings(POLLING_INTERVAL=30):
        assert check_settings() == [
            Error(
                "FLAGKIT['API_KEY'] is not set.",
                hint=(
                    "Set FLAGKIT['API_KEY'] to your FlagKit SDK key (e.g. from an environment "
                    "variable), or set FLAGKIT['OFFLINE'] = True to serve bootstrap values only."
                ),
                id="flagkit.E001",
            )
        ]


def test_missing_api_key_is_fine_offline() -> None:
    """OFFLINE=True without API_KEY passes: offline mode never talks to a server."""
    with _settings(OFFLINE=True):
        assert check_settings() == []


def test_e001_when_flagkit_setting_is_absent() -> None:
    """A project without any FLAGKIT setting gets E001."""
    with override_settings():
        from django.conf import settings

        del settings.FLAGKIT
        assert [m.id for m in check_settings()] == ["flagkit.E001"]


def test_e002_invalid_core_value_names_the_key() -> None:
    """A bad core option value is flagkit.E002 whose message names the FLAGKIT key."""
    with _settings(API_KEY=KEY, POLLING_INTERVAL="often"):
        assert check_settings() == [
            Error(
                "FLAGKIT['POLLING_INTERVAL']: polling_interval must be a finite number, "
                "got 'often' (INIT_INVALID_CONFIG)",
                hint=HINT_FIX_VALUE,
                id="flagkit.E002",
            )
        ]


def test_e002_invalid_adapter_value_names_the_key() -> None:
    """A bad adapter-only value is flagkit.E002 naming the key and what is allowed."""
    with _settings(API_KEY=KEY, ANONYMOUS_COOKIE_MAX_AGE=-5):
        assert check_settings() == [
            Error(
                "FLAGKIT['ANONYMOUS_COOKIE_MAX_AGE'] must be a number of seconds > 0, got -5",
                hint=HINT_FIX_VALUE,
                id="flagkit.E002",
            )
        ]


def test_e002_unimportable_context_builder() -> None:
    """A CONTEXT_BUILDER path that cannot be imported is flagkit.E002."""
    with _settings(API_KEY=KEY, CONTEXT_BUILDER="tests.django.nowhere.build"):
        messages = check_settings()
    assert [m.id for m in messages] == ["flagkit.E002"]
    assert messages[0].msg.startswith(
        "FLAGKIT['CONTEXT_BUILDER'] must be a dotted path to a callable, could not import "
        "'tests.django.nowhere.build'"
    )


def test_e002_setting_not_a_dict() -> None:
    """FLAGKIT that is not a dict is flagkit.E002."""
    with override_settings(FLAGKIT="sdk_key"):
        assert check_settings() == [
            Error(
                "FLAGKIT must be a dict of options, got str",
                hint="Set FLAGKIT to a dict such as {'API_KEY': '...'} in your settings.",
                id="flagkit.E002",
            )
        ]


def test_w001_unknown_key_suggests_the_closest() -> None:
    """A typo is flagkit.W001 with a did-you-mean hint, and the rest still validates."""
    with _settings(API_KEY=KEY, POLLING_INTERVALL=10, COUNTRY_HEADR="HTTP_X"):
        assert check_settings() == [
            Warning(
                "FLAGKIT['COUNTRY_HEADR'] is not a FlagKit setting and is ignored.",
                hint="Did you mean 'COUNTRY_HEADER'?",
                id="flagkit.W001",
            ),
            Warning(
                "FLAGKIT['POLLING_INTERVALL'] is not a FlagKit setting and is ignored.",
                hint="Did you mean 'POLLING_INTERVAL'?",
                id="flagkit.W001",
            ),
        ]


def test_w001_without_a_close_match() -> None:
    """An unknown key with no close match points at the documentation."""
    with _settings(API_KEY=KEY, ZZZ=1):
        assert check_settings() == [
            Warning(
                "FLAGKIT['ZZZ'] is not a FlagKit setting and is ignored.",
                hint=HINT_KEYS,
                id="flagkit.W001",
            )
        ]


@override_settings(DEBUG=False)
def test_w003_local_port_without_debug() -> None:
    """LOCAL_PORT with DEBUG=False is flagkit.W003."""
    with _settings(API_KEY=KEY, LOCAL_PORT=8200):
        assert check_settings() == [
            Warning(
                "FLAGKIT['LOCAL_PORT'] is 8200 while DEBUG is False: flags come from a local "
                "development server, not from FlagKit.",
                hint="Remove LOCAL_PORT from FLAGKIT in production settings.",
                id="flagkit.W003",
            )
        ]


@override_settings(DEBUG=True)
def test_local_port_with_debug_is_fine() -> None:
    """LOCAL_PORT during development (DEBUG=True) raises nothing."""
    with _settings(API_KEY=KEY, LOCAL_PORT=8200):
        assert check_settings() == []


def test_w002_middleware_before_auth() -> None:
    """FlagKitMiddleware listed before AuthenticationMiddleware is flagkit.W002."""
    with override_settings(MIDDLEWARE=[SESSION, OURS, AUTH]):
        assert check_middleware() == [
            Warning(
                "FlagKitMiddleware is listed before AuthenticationMiddleware, so request.user "
                "is not available when it builds the evaluation context.",
                hint=f"Move {OURS!r} after {AUTH!r} in MIDDLEWARE.",
                id="flagkit.W002",
            )
        ]


def test_w004_middleware_without_auth() -> None:
    """FlagKitMiddleware without AuthenticationMiddleware is flagkit.W004."""
    with override_settings(MIDDLEWARE=[OURS]):
        assert check_middleware() == [
            Warning(
                "FlagKitMiddleware is installed but AuthenticationMiddleware is not: every "
                "visitor is evaluated as anonymous.",
                hint=f"Add {AUTH!r} to MIDDLEWARE before {OURS!r}.",
                id="flagkit.W004",
            )
        ]


def test_middleware_subclasses_are_recognised() -> None:
    """A subclass of FlagKitMiddleware placed before auth is still reported."""
    sub = "tests.django.middleware_sub.SubclassedFlagKitMiddleware"
    with override_settings(MIDDLEWARE=[sub, AUTH]):
        assert [m.id for m in check_middleware()] == ["flagkit.W002"]


def test_no_middleware_no_message() -> None:
    """Projects that use only template tags (no middleware) get no middleware message."""
    with override_settings(MIDDLEWARE=[SESSION, AUTH]):
        assert check_middleware() == []


def test_checks_are_registered_with_manage_py_check() -> None:
    """``manage.py check`` runs the FlagKit checks (E001 fails the command)."""
    with _settings(POLLING_INTERVAL=5), pytest.raises(SystemCheckError, match=r"flagkit\.E001"):
        call_command("check")
