"""Settings of the test project for ``flagkit_django`` (also the settings every other test
runs under, so they are cheap: SQLite in memory, signed-cookie sessions, offline FlagKit).

Tests that need a live client point ``settings.FLAGKIT`` at a loopback ``FlagKitServer``
(see ``tests/django/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "flagkit-tests-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    # django-waffle's tables, for the waffle import and compatibility tests; listed before
    # flagkit_django so that {% load waffle_tags %} loads FlagKit's compatible library.
    "waffle",
    "flagkit_django",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "flagkit_django.middleware.FlagKitMiddleware",
]

ROOT_URLCONF = "tests.django.urls"
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "flagkit_django.context_processors.flags",
            ],
        },
    },
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "flagkit_django.jinja2.environment"},
    },
]

# Offline by default: no test touches the network unless it points FLAGKIT at a local server.
FLAGKIT = {"API_KEY": "sdk_django_tests_key", "OFFLINE": True}

LOGGING_CONFIG = None
