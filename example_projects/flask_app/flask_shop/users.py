"""Users for Flask-Login, loaded from SQLite."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from flask_login import UserMixin
from werkzeug.security import check_password_hash

from flask_shop.db import get_db


@dataclass
class User(UserMixin):  # type: ignore[misc]
    """A shop user. ``id`` is what Flask-Login keeps in the session."""

    id: int
    username: str
    name: str
    email: str
    is_staff: bool
    groups: list[str]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> User:
        """Build a user from a ``users`` row."""
        return cls(
            id=row["id"],
            username=row["username"],
            name=row["name"],
            email=row["email"],
            is_staff=bool(row["is_staff"]),
            groups=[name for name in row["groups"].split(",") if name],
        )

    def get_id(self) -> str:
        """The session key of this user (its database id)."""
        return str(self.id)


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader."""
    row = get_db().execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
    return User.from_row(row) if row is not None else None


def authenticate(username: str, password: str) -> User | None:
    """The user with these credentials, or None."""
    row = get_db().execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    if row is None or not check_password_hash(row["password_hash"], password):
        return None
    return User.from_row(row)
