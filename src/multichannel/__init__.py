"""multichannel: reach each person on the channel they answer, never in their quiet hours.

The public API is everything named in ``__all__``; other modules are private.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from multichannel.planning import Plan, plan_many
    from multichannel.store import MemoryStore, Store
    from multichannel.store.sql import SQLStore
    from multichannel.strategy import Action, FallbackStrategy, RetryPolicy
    from multichannel.windows import Schedule, Window
    from multichannel.worker import Worker

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
    "Plan",
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
    "plan_many",
]


_WHERE: dict[str, str] = {
    "Action": "multichannel.strategy",
    "Adapter": "multichannel.adapters",
    "Attachment": "multichannel.messages",
    "Attempt": "multichannel.dispatch",
    "BaseAdapter": "multichannel.adapters",
    "BatchResult": "multichannel._engine.batch",
    "Clock": "multichannel.clock",
    "ConfigurationError": "multichannel.errors",
    "Contact": "multichannel.contacts",
    "ContactPoint": "multichannel.contacts",
    "Content": "multichannel.messages",
    "Decision": "multichannel.dispatch",
    "DeliveryError": "multichannel.errors",
    "DeliveryEvent": "multichannel.dispatch",
    "Discovered": "multichannel.adapters",
    "Dispatch": "multichannel.dispatch",
    "Dispatcher": "multichannel.dispatcher",
    "EventKind": "multichannel.dispatch",
    "FallbackStrategy": "multichannel.strategy",
    "IdempotencyConflict": "multichannel.errors",
    "ManualClock": "multichannel.clock",
    "MemoryStore": "multichannel.store",
    "Message": "multichannel.messages",
    "MultichannelError": "multichannel.errors",
    "OptedOut": "multichannel.errors",
    "Outbox": "multichannel.adapters",
    "Outcome": "multichannel.dispatch",
    "PermanentError": "multichannel.errors",
    "Plan": "multichannel.planning",
    "Preferences": "multichannel.contacts",
    "ProviderError": "multichannel.errors",
    "Receipt": "multichannel.adapters",
    "Registry": "multichannel.adapters",
    "RetryPolicy": "multichannel.strategy",
    "SQLStore": "multichannel.store.sql",
    "Schedule": "multichannel.windows",
    "SendContext": "multichannel.adapters",
    "SentMessage": "multichannel.adapters",
    "StaleDispatch": "multichannel.errors",
    "Status": "multichannel.dispatch",
    "Store": "multichannel.store",
    "SystemClock": "multichannel.clock",
    "TransientError": "multichannel.errors",
    "UnknownDispatch": "multichannel.errors",
    "Variant": "multichannel.messages",
    "Window": "multichannel.windows",
    "Worker": "multichannel.worker",
    "plan_many": "multichannel.planning",
}
"""Where each public name is defined: it is imported from there on first use."""


def _lazy(
    namespace: dict[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that load each name of ``where`` on first use.

    ``where`` maps a name to the module defining it; the module is imported
    when the name is first asked for, and the name is then kept in
    ``namespace`` (the package's globals). This package and its subpackages
    (adapters, store, cli) load their heavy names this way.
    """

    def load(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        from importlib import import_module

        found = getattr(import_module(module), name)
        namespace[name] = found
        return found

    def names() -> list[str]:
        return sorted({*namespace, *namespace["__all__"]})

    return load, names


_load, __dir__ = _lazy(globals(), _WHERE)


def __getattr__(name: str) -> Any:
    # Every public name is imported on first use, so ``import multichannel`` costs
    # next to nothing; ``from multichannel import Dispatcher`` loads what Dispatcher needs.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("multichannel")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found = "0.0.0"
        globals()[name] = found
        return found
    return _load(name)
