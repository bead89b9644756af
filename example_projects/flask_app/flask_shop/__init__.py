"""The FlagKit demo shop for Flask: the Django shop's story with ``flagkit_flask``.

``flask --app flask_shop init-db`` creates the SQLite database and the demo users;
``flask --app flask_shop run`` serves it (``make demo`` does both). Configuration comes
from ``create_app(test_config)`` or the environment:

- ``FLAGKIT_DEMO_SERVER_PORT``: port of ``flagkit serve`` (default 8200);
- ``FLAGKIT_DEMO_API_KEY``: API key (default the demo key of ``example_projects/flags.json``);
- ``FLASK_SHOP_DB``: SQLite file (default ``flask_shop.sqlite3`` in the app's instance
  folder).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from flask import Flask

from flagkit import EvaluationContext, FlagState
from flagkit_flask.signals import client_ready, flags_updated
from flask_shop import auth, db, shop, users
from flask_shop.extensions import flagkit, login_manager

logger = logging.getLogger("flask_shop.flags")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app (the app factory: tests build one per test with their own config)."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "flask-shop-demo-only-not-a-secret"),
        DATABASE=os.environ.get("FLASK_SHOP_DB")
        or os.path.join(app.instance_path, "flask_shop.sqlite3"),
        PASSWORD_HASH_METHOD="scrypt",  # tests use a fast one
        # FlagKit: every FLAGKIT_* key is documented in docs/flask.md.
        FLAGKIT_API_KEY=os.environ.get("FLAGKIT_DEMO_API_KEY", "sdk_demo_key_123456"),
        FLAGKIT_LOCAL_PORT=int(os.environ.get("FLAGKIT_DEMO_SERVER_PORT", "8200")),
        # Target users by username, so both demo sites bucket alice, bob and carol alike.
        FLAGKIT_USER_ID_ATTRIBUTE="username",
        # Send tracked purchases within a second (`flagkit events tail` shows them at once).
        FLAGKIT_EVENT_FLUSH_INTERVAL=1.0,
        FLAGKIT_EVALUATION_SUMMARIES=True,  # the dashboard's Usage page (opt-in)
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    if os.path.dirname(app.config["DATABASE"]) == app.instance_path:
        os.makedirs(app.instance_path, exist_ok=True)  # the default place of the database

    db.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.user_loader(users.load_user)
    flagkit.init_app(app)

    app.register_blueprint(auth.bp)
    app.register_blueprint(shop.bp)
    app.register_blueprint(shop.staff_bp)

    # Receivers of the FlagKit signals, for this app only (sender = the app).
    app.extensions["flask_shop"] = {"changes": collections.deque(maxlen=20)}
    flags_updated.connect(log_flag_changes, app)
    client_ready.connect(log_client_ready, app)
    app.logger.setLevel(logging.INFO)
    return app


@flagkit.context_loader
def add_shop_attributes(default: EvaluationContext | None) -> EvaluationContext | None:
    """Add ``custom.is_staff`` and ``custom.groups`` of the signed-in user to the context
    the extension built (user id, anonymous key, language...), as the Django adapter does."""
    from flask_login import current_user

    if default is None or not current_user.is_authenticated:
        return default
    custom = {**default.custom, "is_staff": current_user.is_staff, "groups": current_user.groups}
    return dataclasses.replace(default, custom=custom)


def log_flag_changes(sender: Flask, flags: list[FlagState], **extra: Any) -> None:
    """``flags_updated`` receiver: log each changed flag and remember it for /staff/."""
    now = datetime.now(timezone.utc)
    changes = sender.extensions["flask_shop"]["changes"]
    for state in flags:
        sender.logger.info(
            "flag changed: %s = %r (enabled=%s, version %s)",
            state.key,
            state.value,
            state.enabled,
            state.version,
        )
        changes.appendleft(
            {
                "key": state.key,
                "value": state.value,
                "enabled": state.enabled,
                "version": state.version,
                "at": now,
            }
        )


def log_client_ready(sender: Flask, **extra: Any) -> None:
    """``client_ready`` receiver: log once the first flag set is loaded."""
    sender.logger.info("FlagKit client ready")
