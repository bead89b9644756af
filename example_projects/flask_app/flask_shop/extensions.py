"""Extension instances, created once and bound to each app in ``create_app``."""

from __future__ import annotations

from flask_login import LoginManager

from flagkit_flask import FlagKit

flagkit = FlagKit()
login_manager = LoginManager()
