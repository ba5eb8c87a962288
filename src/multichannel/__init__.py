"""multichannel: reach each person on the channel they answer, never in their quiet hours.

The public API is everything named in ``__all__``; other modules are private.
"""

from importlib.metadata import PackageNotFoundError, version

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
from multichannel.store import MemoryStore, SQLStore, Store
from multichannel.strategy import Action, FallbackStrategy, RetryPolicy
from multichannel.windows import Schedule, Window
from multichannel.worker import Worker

try:
    __version__ = version("multichannel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
