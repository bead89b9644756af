"""Log in and out with Flask-Login."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response

from flask_shop.users import authenticate

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    """The log-in form; on success, back to the shop."""
    error = None
    if request.method == "POST":
        user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is not None:
            login_user(user)
            flash(f"Signed in as {user.username}.")
            return redirect(url_for("shop.home"))
        error = "Unknown user or wrong password."
    return render_template("login.html", error=error)


@bp.post("/logout")
def logout() -> Response:
    """Log out and go back to the shop."""
    logout_user()
    return redirect(url_for("shop.home"))
