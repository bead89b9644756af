"""pytest configuration of ``example_projects/`` in the repository's main test run.

The Django shop has its own settings module, and a pytest process can configure only one
(the main run uses ``tests.django.settings``), so its tests run in their own process:
``cd example_projects/django_shop && python -m pytest`` (``make test`` does it).
"""

from __future__ import annotations

collect_ignore = ["django_shop"]
