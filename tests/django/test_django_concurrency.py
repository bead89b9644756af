"""Concurrency: 16 threads through the test client and an ASGI run with concurrent requests,
each response showing its own user's flags."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import AsyncClient, Client

from flagkit.testing import FlagKitServer
from tests.django.async_login import alogin

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 16
REQUESTS_PER_USER = 8


def make_users() -> list[dict[str, Any]]:
    """Users 0..15: every third is staff, every other one is in the beta group."""
    beta = Group.objects.create(name="beta")
    people = []
    for index in range(USERS):
        user = User.objects.create_user(f"user{index}", password="pw")
        user.is_staff = index % 3 == 0
        user.save()
        if index % 2 == 0:
            user.groups.add(beta)
        people.append(
            {"user": user, "staff": user.is_staff, "beta": index % 2 == 0, "id": str(user.pk)}
        )
    return people


def check(person: dict[str, Any], data: dict[str, Any]) -> None:
    assert data["user_id"] == person["id"]
    assert data["flags"]["staff-feature"] is person["staff"]
    assert data["plain"]["staff-feature"] is person["staff"]
    assert data["flags"]["beta-feature"] is person["beta"]
    assert data["plain"]["beta-feature"] is person["beta"]


def test_sixteen_threads_see_their_own_users(live: FlagKitServer) -> None:
    """16 threads, one user each, request concurrently; every response is that user's."""
    people = make_users()
    clients = []
    for person in people:
        client = Client()
        client.force_login(person["user"])
        clients.append(client)
    barrier = threading.Barrier(USERS)
    errors: list[BaseException] = []
    responses = [0] * USERS

    def worker(index: int) -> None:
        try:
            barrier.wait(10)
            for _ in range(REQUESTS_PER_USER):
                response = clients[index].get("/whoami/")
                check(people[index], json.loads(response.content))
                responses[index] += 1
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"req-{i}") for i in range(USERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert responses == [REQUESTS_PER_USER] * USERS


def test_asgi_concurrent_requests_see_their_own_users(live: FlagKitServer) -> None:
    """Concurrent ASGI requests (async and sync views) for 16 users are each evaluated for
    their own user."""
    people = make_users()

    async def run() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        clients = []
        for person in people:
            client = AsyncClient()
            await alogin(client, person["user"])
            clients.append(client)

        async def one(index: int, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
            response = await clients[index].get(path)
            assert response.status_code == 200
            return people[index], json.loads(response.content)

        jobs = [
            one(index, path)
            for _ in range(3)
            for index in range(USERS)
            for path in ("/awhoami/", "/whoami/")
        ]
        return await asyncio.gather(*jobs)

    results = asyncio.run(run())
    assert len(results) == USERS * 2 * 3
    for person, data in results:
        check(person, data)
