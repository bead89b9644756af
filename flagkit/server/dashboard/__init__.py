"""The web dashboard of the local server: static pages under ``static/`` and their JSON API.

Served by :mod:`flagkit.server.handler` at ``/`` and ``/dashboard/...`` (see
docs/dashboard.md). Modules: ``state`` (what the server keeps for it), ``sessions``
(sign-in and CSRF), ``history`` (flag versions), ``describe`` (targeting in words),
``writeback`` (changes written to the flags file), ``explain``, ``usage`` and ``routes``
(the HTTP endpoints). Nothing is imported here, so the server's context can name the
state without importing the endpoints.
"""
