"""``manage.py seed_demo_users``: create (or reset) the demo users and the beta group.

- ``alice``: staff (``custom.is_staff`` is true: the ``staff-tools`` rule);
- ``bob``: in the ``beta`` group (``custom.groups``: the ``beta-testers`` segment);
- ``carol``: a regular customer (in the 30% rollout of ``new-checkout``).

All have the password ``flagkit-demo``. Safe to run again: it resets them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

PASSWORD = "flagkit-demo"
DEMO_USERS: tuple[dict[str, Any], ...] = (
    {"username": "alice", "first_name": "Alice", "is_staff": True, "groups": []},
    {"username": "bob", "first_name": "Bob", "is_staff": False, "groups": ["beta"]},
    {"username": "carol", "first_name": "Carol", "is_staff": False, "groups": []},
)


class Command(BaseCommand):
    """Create or reset the three demo users."""

    help = "Create (or reset) the demo users alice (staff), bob (beta) and carol (regular)."

    def handle(self, *args: Any, **options: Any) -> None:
        """Create the users and the ``beta`` group; idempotent."""
        user_model = get_user_model()
        for spec in DEMO_USERS:
            user, _created = user_model.objects.update_or_create(
                username=spec["username"],
                defaults={
                    "first_name": spec["first_name"],
                    "email": f"{spec['username']}@example.com",
                    "is_staff": spec["is_staff"],
                },
            )
            user.set_password(PASSWORD)
            user.save()
            user.groups.set([Group.objects.get_or_create(name=name)[0] for name in spec["groups"]])
        names = ", ".join(spec["username"] for spec in DEMO_USERS)
        self.stdout.write(f"demo users ready: {names} (password {PASSWORD!r})")
