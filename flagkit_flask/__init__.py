"""Flask integration for FlagKit: per-app clients, per-request contexts, view guards,
Jinja helpers, signals, CLI commands and test helpers.

>>> from flagkit_flask import FlagKit
>>> flagkit = FlagKit()
>>> def create_app():
...     app = Flask(__name__)
...     app.config["FLAGKIT_API_KEY"] = os.environ["FLAGKIT_API_KEY"]
...     flagkit.init_app(app)
...     return app

Then, in a view: ``flagkit.is_enabled("new-checkout")``; in a template:
``{% flag "new-checkout" %}…{% else %}…{% endflag %}``; on a view: ``@flag_required("key")``.
``docs/flask.md`` has the whole story.

Importing this package has no side effects (no config read, no client, no thread).
"""

from __future__ import annotations

from flagkit_flask.decorators import flag_guard, flag_required, guard_blueprint
from flagkit_flask.extension import FlagKit, FlagKitState, RequestFlags

__all__ = [
    "FlagKit",
    "FlagKitState",
    "RequestFlags",
    "flag_guard",
    "flag_required",
    "guard_blueprint",
]
