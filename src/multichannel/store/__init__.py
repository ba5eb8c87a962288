"""Stores: where dispatches, opt-outs and what is due are remembered.

`SQLStore` is loaded on first use, so importing this package (and
``multichannel``) does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multichannel.store.base import BatchStore, Store
from multichannel.store.memory import MemoryStore

if TYPE_CHECKING:
    from multichannel.store.sql import SQLStore

__all__ = ["BatchStore", "MemoryStore", "SQLStore", "Store"]


def __getattr__(name: str) -> Any:
    if name == "SQLStore":
        from multichannel.store.sql import SQLStore

        globals()["SQLStore"] = SQLStore
        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
