"""Local server benchmark: the cost of one flag change as the number of flags grows.

Run: ``.venv/bin/python benchmarks/bench_server.py``. Prints the time of
``FlagKitServer.set_flag`` on a server holding 100,000 flags (a tenth of them targeted,
some with prerequisites) against the same change on a server holding 1,000 such flags --
target <= 2x: applying one change costs in proportion to the flags it touches, not to all
flags.

Each figure is the minimum over several repeats (the least disturbed run).
Always exits 0: the numbers are for reading, not for gating.
"""

from __future__ import annotations

import time
from typing import Any

from flagkit.server import FlagKitServer

REPEATS = 7
CHANGES = 50
ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]


def flags(count: int) -> list[dict[str, Any]]:
    """``count`` flags: every tenth targeted, every hundredth with a prerequisite."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        flag: dict[str, Any] = {"key": f"flag-{i}", "value": i % 2 == 0}
        if i % 10 == 0:
            flag.update(variations=ON_OFF, fallthrough={"variation": "on"})
            if i % 100 == 0 and i:
                flag["prerequisites"] = [{"key": f"flag-{i - 10}", "variation": "on"}]
        out.append(flag)
    return out


def per_change(server: FlagKitServer) -> float:
    """Seconds per ``set_flag`` of a targeted flag (best of the repeats)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for n in range(CHANGES):
            server.set_flag("flag-500", value=n % 2 == 0)
        best = min(best, (time.perf_counter() - start) / CHANGES)
    return best


def main() -> None:
    small = per_change(FlagKitServer(flags(1_000)))
    large = per_change(FlagKitServer(flags(100_000)))
    print("local server: one flag change (set_flag)")
    print(f"  1,000 flags    {small * 1e3:8.3f} ms")
    print(f"  100,000 flags  {large * 1e3:8.3f} ms")
    print(f"  ratio          {large / small:8.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
