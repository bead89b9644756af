"""The local FlagKit-compatible server (``flagkit serve``), standard library only.

>>> from flagkit.server import FlagKitServer
>>> with FlagKitServer(flags={"dark-mode": True}) as server:   # doctest: +SKIP
...     print(server.base_url)                                 # http://127.0.0.1:PORT/api/v1

See ``docs/server.md`` for the endpoints, the flags file, the admin API and the CLI.
"""

from flagkit.server.app import DEFAULT_API_KEY, MISSING, FlagKitServer
from flagkit.server.faults import ENDPOINTS
from flagkit.server.flags_file import (
    EnvironmentInfo,
    FlagsDocument,
    FlagsFileError,
    InvalidFieldError,
    load_flags_file,
    parse_flags_document,
)
from flagkit.server.requests_log import Headers, RecordedRequest

__all__ = [
    "DEFAULT_API_KEY",
    "ENDPOINTS",
    "MISSING",
    "EnvironmentInfo",
    "FlagKitServer",
    "FlagsDocument",
    "FlagsFileError",
    "Headers",
    "InvalidFieldError",
    "RecordedRequest",
    "load_flags_file",
    "parse_flags_document",
]
