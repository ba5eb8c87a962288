"""Stores: where dispatches, opt-outs and what is due are remembered."""

from multichannel.store.base import Store
from multichannel.store.memory import MemoryStore
from multichannel.store.sql import SQLStore

__all__ = ["MemoryStore", "SQLStore", "Store"]
