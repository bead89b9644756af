"""Run by ``test_django_lifecycle.py`` in a subprocess: a pre-fork master and its workers.

Protocol (one JSON object per stdout line, the test answers on stdin):

1. master: ``django.setup()``, ``check``, ``migrate``; reports ``{"step": "master"}`` with
   its threads, whether a client exists and whether the exit hook is registered, then waits
   for a line on stdin (the test checks the server saw no request meanwhile);
2. fork: the worker serves requests through ``django.test.Client`` (the first one starts
   its own client) and reports ``{"step": "worker"}`` with the value it served; the master reports
   ``{"step": "master-after"}`` (still no client);
3. the master now starts its client, then forks again: the second worker reports
   ``{"step": "worker2-ready"}``, the test changes a flag on the server, and the worker
   reports ``{"step": "worker2"}`` once its (re-started) client received the change.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (Python 3.12+)
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.django.settings"


def report(step: str, **data: object) -> None:
    sys.stdout.write(json.dumps({"step": step, "pid": os.getpid(), **data}) + "\n")
    sys.stdout.flush()


def flagkit_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("flagkit"))


def main() -> None:
    base_url, api_key = sys.argv[1], sys.argv[2]

    import django
    from django.conf import settings

    django.setup()
    settings.FLAGKIT = {
        "API_KEY": api_key,
        "BASE_URL": base_url,
        "POLLING_INTERVAL": 600,
        "TIMEOUT": 2,
    }
    from django.core.management import call_command

    from flagkit.flagkit import FlagKit
    from flagkit_django._engine import _Wiring

    call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("migrate", interactive=False, stdout=io.StringIO(), stderr=io.StringIO())
    report(
        "master",
        threads=flagkit_threads(),
        client=FlagKit.get_instance() is not None,
        atexit_hook=_Wiring.atexit_registered,
    )
    sys.stdin.readline()

    pid = os.fork()
    if pid == 0:
        from django.test import Client

        from flagkit_django._engine import peek_client

        before = peek_client() is not None
        Client().get("/no-flags/")  # request_started starts the worker's client
        started = peek_client()
        ready = started is not None and started.wait_for_ready(5)
        data = Client().get("/memo/").json()
        report(
            "worker",
            client_before=before,
            ready=ready,
            served=data["first"],
            threads=flagkit_threads(),
        )
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    report(
        "master-after",
        worker_exit=os.waitstatus_to_exitcode(status),
        client=FlagKit.get_instance() is not None,
        threads=flagkit_threads(),
    )

    # A master that did start its client (e.g. gunicorn --preload touching flags): the
    # core's fork handling must give the worker a live client of its own.
    from flagkit_django import get_client
    from flagkit_django.signals import flags_updated

    master_client = get_client()
    master_client.wait_for_ready(5)
    report("master-started", atexit_hook=_Wiring.atexit_registered, threads=flagkit_threads())
    pid = os.fork()
    if pid == 0:
        changed = threading.Event()

        def on_update(sender: object, flags: list, **kwargs: object) -> None:
            if any(f.key == "banner-text" for f in flags):
                changed.set()

        flags_updated.connect(on_update)
        client = get_client()
        report("worker2-ready", same_object=client is master_client)
        got = changed.wait(10)
        report(
            "worker2",
            updated=got,
            value=client.get_string_value("banner-text", "none"),
            threads=flagkit_threads(),
        )
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    report("done", worker_exit=os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
