"""The supported-versions matrix: the adapters' tests against each Django and Flask release line.

``make test-matrix`` runs every session; ``make test`` runs the oldest line of each framework
here (the newest is what ``.venv`` installs, so the main run covers it). Each session has its
own virtualenv under ``.nox/`` with the project installed and the framework pinned.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

DJANGO = ["4.2", "5.1", "5.2"]
FLASK = ["3.0", "3.1"]


def _install(session: nox.Session, pin: str) -> None:
    # Both frameworks: pytest-django needs Django for any run that uses this configuration.
    session.install("-e", ".[dev,django,flask]", pin)


@nox.session
@nox.parametrize("version", DJANGO)
def django(session: nox.Session, version: str) -> None:
    """The Django app's tests and the Django shop's, on Django ``version``."""
    _install(session, f"Django=={version}.*")
    session.run("python", "-m", "pytest", "-q", "tests/django")
    session.chdir("example_projects/django_shop")
    session.run("python", "-m", "pytest", "-q")


@nox.session
@nox.parametrize("version", FLASK)
def flask(session: nox.Session, version: str) -> None:
    """The Flask extension's tests and the Flask shop's, on Flask ``version``."""
    _install(session, f"Flask=={version}.*")
    session.run("python", "-m", "pytest", "-q", "tests/flask", "example_projects/flask_app/tests")
