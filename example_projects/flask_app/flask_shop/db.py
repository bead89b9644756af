"""The SQLite database (stdlib ``sqlite3``, as in Flask's tutorial) and ``flask init-db``.

``flask --app flask_shop init-db`` creates the ``users`` table and (re)seeds the demo users:

- ``alice``: staff (``custom.is_staff``: the ``staff-tools`` rule of flags.json);
- ``bob``: in the ``beta`` group (``custom.groups``: the ``beta-testers`` segment);
- ``carol``: a regular customer (in the 30% rollout of ``new-checkout``).

All have the password ``flagkit-demo``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from werkzeug.security import generate_password_hash

PASSWORD = "flagkit-demo"
DEMO_USERS: tuple[dict[str, Any], ...] = (
    {"username": "alice", "name": "Alice", "is_staff": True, "groups": ""},
    {"username": "bob", "name": "Bob", "is_staff": False, "groups": "beta"},
    {"username": "carol", "name": "Carol", "is_staff": False, "groups": ""},
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    is_staff INTEGER NOT NULL DEFAULT 0,
    groups TEXT NOT NULL DEFAULT ''  -- comma-separated group names
);
"""


def get_db() -> sqlite3.Connection:
    """This request's connection (opened on first use, closed at teardown)."""
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
        g.db.row_factory = sqlite3.Row
    connection: sqlite3.Connection = g.db
    return connection


def close_db(exc: BaseException | None = None) -> None:
    """Close this request's connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db() -> None:
    """Create the table and create or reset the demo users (idempotent)."""
    db = get_db()
    db.executescript(SCHEMA)
    for user in DEMO_USERS:
        db.execute(
            "INSERT INTO users (username, name, email, password_hash, is_staff, groups)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(username) DO UPDATE SET name = excluded.name,"
            " email = excluded.email, password_hash = excluded.password_hash,"
            " is_staff = excluded.is_staff, groups = excluded.groups",
            (
                user["username"],
                user["name"],
                f"{user['username']}@example.com",
                generate_password_hash(PASSWORD, method=current_app.config["PASSWORD_HASH_METHOD"]),
                int(user["is_staff"]),
                user["groups"],
            ),
        )
    db.commit()


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the database and the demo users alice (staff), bob (beta), carol (regular)."""
    init_db()
    names = ", ".join(user["username"] for user in DEMO_USERS)
    click.echo(f"demo users ready: {names} (password {PASSWORD!r})")


def init_app(app: Flask) -> None:
    """Close connections at teardown and add the ``init-db`` command."""
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
