"""Stores: where dispatches, opt-outs and what is due are remembered.

`SQLStore` is loaded on first use, so importing this package (and
``multichannel``) does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from multichannel import _lazy
from multichannel.store.base import BatchStore, Store
from multichannel.store.memory import MemoryStore

if TYPE_CHECKING:
    from multichannel.store.sql import SQLStore

__all__ = ["BatchStore", "MemoryStore", "SQLStore", "Store"]


__getattr__, __dir__ = _lazy(globals(), {"SQLStore": "multichannel.store.sql"})
