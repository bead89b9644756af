"""``python -m flagkit ...``: the same as the ``flagkit`` command (see :mod:`flagkit.cli`)."""

from __future__ import annotations

import sys

from flagkit.cli import main

if __name__ == "__main__":
    sys.exit(main())
