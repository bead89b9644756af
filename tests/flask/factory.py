"""The test app factory: a module-level ``FlagKit()`` registered on a fresh app per test.

Every app shares :data:`flagkit` (proving one extension serves many apps), gets its own
client, and exposes small views used by the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, g, jsonify, render_template_string, request
from flask.typing import ResponseReturnValue
from flask.views import MethodView

from flagkit_flask import FlagKit, flag_required, guard_blueprint

flagkit = FlagKit()

#: The flags served by the loopback server in most tests.
FLAGS: list[dict[str, Any]] = [
    {"key": "beta", "value": True},
    {"key": "maintenance", "value": False},
    {"key": "banner-text", "value": "Spring sale"},
    {
        "key": "new-checkout",
        "flagType": "boolean",
        "value": False,
        "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
        "targets": [{"variation": "on", "values": ["alice"]}],
        "rules": [
            {
                "id": "nl",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "on",
            },
            {
                "id": "pro",
                "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                "variation": "on",
            },
        ],
        "fallthrough": {"variation": "off"},
    },
    {
        "key": "greeting",
        "flagType": "string",
        "value": "hello",
        "variations": [
            {"id": "anon", "value": "hello visitor"},
            {"id": "user", "value": "welcome back"},
        ],
        "rules": [
            {
                "id": "anonymous",
                "clauses": [{"attribute": "anonymous", "op": "in", "values": [True]}],
                "variation": "anon",
            }
        ],
        "fallthrough": {"variation": "user"},
    },
    {
        "key": "rollout",
        "flagType": "boolean",
        "value": False,
        "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
        "fallthrough": {
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 50000},
                    {"variation": "off", "weight": 50000},
                ]
            }
        },
    },
]


def server_config(base_url: str, api_key: str, **extra: Any) -> dict[str, Any]:
    """``FLAGKIT_*`` config for an app talking to a loopback server (no streaming)."""
    return {
        "FLAGKIT_API_KEY": api_key,
        "FLAGKIT_BASE_URL": base_url,
        "FLAGKIT_STREAMING": {"ENABLED": False},
        "FLAGKIT_POLLING_INTERVAL": 60,
        **extra,
    }


def create_app(
    config: Mapping[str, Any], *, extension: FlagKit | None = None, login: bool = False
) -> Flask:
    """A new app with ``config``, FlagKit registered, and the test views."""
    app = Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY="test-secret-key")
    app.config.update(config)

    @app.before_request
    def load_user_from_header() -> None:
        # The Flask tutorial's convention: g.user is a row-like object or None.
        user_id = request.headers.get("X-User")
        if user_id:
            g.user = {"id": user_id, "email": f"{user_id}@example.com", "username": user_id}

    if login:
        _setup_login(app)

    ext = extension or flagkit
    ext.init_app(app)

    @app.get("/")
    def index() -> str:
        return "index"

    @app.get("/is/<key>")
    def is_enabled(key: str) -> str:
        return "on" if ext.is_enabled(key) else "off"

    @app.get("/value/<key>")
    def value(key: str) -> ResponseReturnValue:
        return jsonify(value=ext.value(key, request.args.get("default")))

    @app.get("/plain/<key>")
    def plain(key: str) -> ResponseReturnValue:
        # A plain client call: the request scope gives it the current user.
        result = ext.client.evaluate(key)
        return jsonify(value=result.value, reason=result.reason.value)

    @app.get("/evaluate/<key>")
    def evaluate(key: str) -> ResponseReturnValue:
        result = ext.evaluate(key)
        return jsonify(
            value=result.value,
            reason=result.reason.value,
            rule=result.rule_id,
            variation=result.variation_id,
        )

    @app.get("/context")
    def context() -> ResponseReturnValue:
        ctx = ext.context
        return jsonify(None if ctx is None else ctx.to_dict(strip_private=False))

    @app.get("/memo/<key>")
    def memo(key: str) -> ResponseReturnValue:
        first = ext.value(key)
        from flagkit_flask.extension import get_state

        get_state().client.set_overrides({key: "changed mid-request"})
        second = ext.value(key)
        return jsonify(first=first, second=second, plain=ext.client.evaluate(key).value)

    @app.get("/async/<key>")
    async def async_view(key: str) -> ResponseReturnValue:
        result = ext.client.evaluate(key)
        return jsonify(value=result.value, extension=ext.is_enabled(key))

    @app.get("/checkout")
    @flag_required("new-checkout")
    def checkout() -> str:
        """The new checkout."""
        return "new checkout"

    @app.get("/checkout-async")
    @flag_required("new-checkout")
    async def checkout_async() -> str:
        return "new checkout (async)"

    @app.get("/old-checkout")
    @flag_required("!new-checkout")
    def old_checkout() -> str:
        return "old checkout"

    @app.get("/redirected")
    @flag_required("new-checkout", redirect_to="index")
    def redirected() -> str:
        return "new checkout"

    @app.get("/redirected-url")
    @flag_required("maintenance", redirect_to="/status")
    def redirected_url() -> str:
        return "maintenance"

    @app.get("/forbidden")
    @flag_required("maintenance", status=403)
    def forbidden() -> str:
        return "maintenance"

    class CheckoutView(MethodView):
        decorators = [flag_required("new-checkout")]

        def get(self) -> str:
            return "class-based checkout"

    app.add_url_rule("/checkout-view", view_func=CheckoutView.as_view("checkout_view"))

    beta = Blueprint("beta", __name__, url_prefix="/beta")

    @beta.get("/")
    def beta_home() -> str:
        return "beta home"

    guard_blueprint(beta, "beta")
    app.register_blueprint(beta)

    closed = Blueprint("closed", __name__, url_prefix="/closed")

    @closed.get("/")
    def closed_home() -> str:
        return "closed home"

    ext.guard_blueprint(closed, "maintenance", redirect_to="index")
    app.register_blueprint(closed)

    @app.get("/template")
    def template() -> str:
        return render_template_string(request.args["t"])

    return app


def _setup_login(app: Flask) -> None:
    from flask_login import LoginManager, UserMixin, login_user, logout_user

    class User(UserMixin):
        def __init__(self, user_id: str) -> None:
            self.id = user_id
            self.email = f"{user_id}@example.com"
            self.name = user_id.title()

    manager = LoginManager()
    manager.init_app(app)

    @manager.user_loader
    def load_user(user_id: str) -> User:
        return User(user_id)

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        login_user(User(user_id))
        return "logged in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "logged out"
