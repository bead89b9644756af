"""Helpers for the local-server tests: an SSE reader thread."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx
import pytest


class Unparsable(str):
    """The data of an event that was not valid JSON."""


class SSEReader:
    """Reads an SSE stream on a daemon thread, keeping raw bytes and parsed events."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.raw = bytearray()
        self.status: int | None = None
        self.content_type = ""
        self.connected = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-sse-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with httpx.stream(
                "GET",
                self.url,
                headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
                timeout=httpx.Timeout(10.0),
            ) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                self.connected.set()
                buffer = b""
                name = ""
                data = ""
                for chunk in response.iter_raw():
                    self.raw.extend(chunk)
                    buffer += chunk
                    while b"\n" in buffer:
                        line_bytes, buffer = buffer.split(b"\n", 1)
                        line = line_bytes.decode("utf-8").strip()
                        if line.startswith("event:"):
                            name = line[6:].strip()
                        elif line.startswith("data:"):
                            data += line[5:].strip()
                        elif not line:
                            if name and data:
                                try:
                                    self.events.put((name, json.loads(data)))
                                except ValueError:
                                    self.events.put((name, Unparsable(data)))
                            name = data = ""
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()
            self.done.set()

    def next(self, name: str | None = None, timeout: float = 5.0) -> Any:
        """The data of the next event called ``name`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {name or 'event'} on the stream within {timeout} s")
            try:
                event, data = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if name is None or event == name:
                return data
