"""Adapters: the protocol, the registry, and the built-in ones.

Provider adapters import their SDK only in their own module, so this package
imports without any extra installed.
"""

from multichannel.adapters.base import (
    ANY_CHANNEL,
    ENTRY_POINT_GROUP,
    Adapter,
    BaseAdapter,
    Discovered,
    Receipt,
    Registry,
    SendContext,
)
from multichannel.adapters.outbox import Outbox, SentMessage

__all__ = [
    "ANY_CHANNEL",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "BaseAdapter",
    "Discovered",
    "Outbox",
    "Receipt",
    "Registry",
    "SendContext",
    "SentMessage",
]
