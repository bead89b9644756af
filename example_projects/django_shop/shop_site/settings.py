"""Settings of the FlagKit demo shop (Django, SQLite, the local FlagKit server).

Environment variables (``make demo`` sets them; the defaults suit ``manage.py runserver``):

- ``FLAGKIT_DEMO_SERVER_PORT``: port of ``flagkit serve`` (default 8200);
- ``FLAGKIT_DEMO_API_KEY``: API key (default the demo key of ``example_projects/flags.json``);
- ``DJANGO_SHOP_DB``: path of the SQLite database (default ``db.sqlite3`` next to
  ``manage.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Demo only. A real project reads these from its environment (see docs/deploying.md).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-shop-demo-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "flagkit_django",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After AuthenticationMiddleware: the evaluation context comes from request.user.
    "flagkit_django.middleware.FlagKitMiddleware",
]

ROOT_URLCONF = "shop_site.urls"
WSGI_APPLICATION = "shop_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # {{ flagkit_flags.dark_mode }} in any template
                "flagkit_django.context_processors.flags",
            ],
        },
    },
    {
        # One page (/about/) is rendered with Jinja2 to show the flagkit.* helpers there.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"environment": "flagkit_django.jinja2.environment"},
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SHOP_DB") or BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# The whole FlagKit configuration: one dict (docs/django.md lists every key).
FLAGKIT = {
    "API_KEY": os.environ.get("FLAGKIT_DEMO_API_KEY", "sdk_demo_key_123456"),
    # http://localhost:8200/api/v1 -- the server started by `make demo`.
    "LOCAL_PORT": int(os.environ.get("FLAGKIT_DEMO_SERVER_PORT", "8200")),
    # Target users by username, so both demo sites bucket alice, bob and carol alike.
    "USER_ID_ATTRIBUTE": "username",
    # Send tracked purchases within a second, so `flagkit events tail` shows them at once.
    "EVENT_FLUSH_INTERVAL": 1.0,
    # Evaluation counts per flag for the dashboard's Usage page (opt-in).
    "EVALUATION_SUMMARIES": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "shop": {"handlers": ["console"], "level": "INFO"},
        "flagkit": {"handlers": ["console"], "level": "WARNING"},
    },
}
