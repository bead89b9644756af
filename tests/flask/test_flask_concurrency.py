"""Concurrent requests as different users never see each other's flags."""

from __future__ import annotations

import threading
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from flagkit.testing import FlagKitServer
from flagkit_flask.extension import get_state
from tests.flask.conftest import AppFactory
from tests.flask.factory import flagkit

USERS = 16
ROUNDS = 15


def _personal_flag() -> dict[str, Any]:
    """A string flag serving each of the 16 users a value of their own."""
    return {
        "key": "personal",
        "flagType": "string",
        "value": "nobody",
        "variations": [{"id": f"v{i}", "value": f"value-{i}"} for i in range(USERS)],
        "targets": [{"variation": f"v{i}", "values": [f"user-{i}"]} for i in range(USERS)],
    }


def test_sixteen_threads_as_different_users(make_app: AppFactory) -> None:
    """16 threads request at once as 16 users; every response (extension lookup, plain
    client call, template block and async view) carries that user's own value."""
    with FlagKitServer(flags=[_personal_flag(), {"key": "beta", "value": True}]) as server:
        app = make_app({"FLAGKIT_API_KEY": server.api_key, "FLAGKIT_BASE_URL": server.base_url})
        template = "{% flag 'beta' %}{{ flag_value('personal') }}{% endflag %}"

        @app.get("/mine")
        def mine() -> ResponseReturnValue:
            from flask import render_template_string

            return jsonify(
                extension=flagkit.value("personal"),
                plain=flagkit.client.get_string_value("personal", ""),
                template=render_template_string(template),
                user=flagkit.context.user_id if flagkit.context else None,
            )

        @app.get("/mine-async")
        async def mine_async() -> ResponseReturnValue:
            return jsonify(plain=flagkit.client.get_string_value("personal", ""))

        assert get_state(app).client.wait_for_ready(5)
        barrier = threading.Barrier(USERS)
        failures: list[str] = []
        lock = threading.Lock()

        def run(index: int) -> None:
            web = app.test_client()
            headers = {"X-User": f"user-{index}"}
            expected = f"value-{index}"
            barrier.wait(timeout=10)
            for _ in range(ROUNDS):
                body = web.get("/mine", headers=headers).json
                async_body = web.get("/mine-async", headers=headers).json
                wanted = {
                    "extension": expected,
                    "plain": expected,
                    "template": expected,
                    "user": f"user-{index}",
                }
                if body != wanted or async_body != {"plain": expected}:
                    with lock:
                        failures.append(f"user-{index}: {body} {async_body}")

        threads = [threading.Thread(target=run, args=(i,), name=f"user-{i}") for i in range(USERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
        assert app.test_client().get("/mine").json["plain"] == "nobody"
