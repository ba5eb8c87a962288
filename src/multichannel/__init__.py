"""multichannel: reach each person on the channel they answer, never in their quiet hours.

The public API is everything named in ``__all__``; other modules are private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multichannel._engine.batch import BatchResult
from multichannel.adapters import (
    Adapter,
    BaseAdapter,
    Discovered,
    Outbox,
    Receipt,
    Registry,
    SendContext,
    SentMessage,
)
from multichannel.clock import Clock, ManualClock, SystemClock
from multichannel.contacts import Contact, ContactPoint, Preferences
from multichannel.dispatch import (
    Attempt,
    Decision,
    DeliveryEvent,
    Dispatch,
    EventKind,
    Outcome,
    Status,
)
from multichannel.dispatcher import Dispatcher
from multichannel.errors import (
    ConfigurationError,
    DeliveryError,
    IdempotencyConflict,
    MultichannelError,
    OptedOut,
    PermanentError,
    ProviderError,
    StaleDispatch,
    TransientError,
    UnknownDispatch,
)
from multichannel.messages import Attachment, Content, Message, Variant
from multichannel.store import MemoryStore, Store
from multichannel.strategy import Action, FallbackStrategy, RetryPolicy
from multichannel.windows import Schedule, Window
from multichannel.worker import Worker

if TYPE_CHECKING:
    from multichannel.store.sql import SQLStore

    __version__: str

__all__ = [
    "Action",
    "Adapter",
    "Attachment",
    "Attempt",
    "BaseAdapter",
    "BatchResult",
    "Clock",
    "ConfigurationError",
    "Contact",
    "ContactPoint",
    "Content",
    "Decision",
    "DeliveryError",
    "DeliveryEvent",
    "Discovered",
    "Dispatch",
    "Dispatcher",
    "EventKind",
    "FallbackStrategy",
    "IdempotencyConflict",
    "ManualClock",
    "MemoryStore",
    "Message",
    "MultichannelError",
    "OptedOut",
    "Outbox",
    "Outcome",
    "PermanentError",
    "Preferences",
    "ProviderError",
    "Receipt",
    "Registry",
    "RetryPolicy",
    "SQLStore",
    "Schedule",
    "SendContext",
    "SentMessage",
    "StaleDispatch",
    "Status",
    "Store",
    "SystemClock",
    "TransientError",
    "UnknownDispatch",
    "Variant",
    "Window",
    "Worker",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Names whose import is costly are loaded on first use, so ``import multichannel``
    # stays light: SQLStore needs SQLAlchemy, the version needs importlib.metadata.
    if name == "SQLStore":
        from multichannel.store.sql import SQLStore

        globals()[name] = SQLStore
        return SQLStore
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("multichannel")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found = "0.0.0"
        globals()[name] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
