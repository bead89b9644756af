"""FlagKit as an OpenFeature provider (``pip install "flagkit[openfeature]"``).

>>> from openfeature import api                                       # doctest: +SKIP
>>> from flagkit.openfeature import FlagKitProvider
>>> api.set_provider(FlagKitProvider(api_key="sdk_...", local_port=8200))
>>> api.get_client().get_boolean_value("new-checkout", False)

An optional integration: nothing in ``flagkit`` imports this package, and importing it
needs the ``openfeature-sdk`` distribution. See docs/openfeature.md.
"""

from __future__ import annotations

from ._context import to_flagkit_context, to_openfeature_context
from ._provider import FlagKitProvider

__all__ = ["FlagKitProvider", "to_flagkit_context", "to_openfeature_context"]
