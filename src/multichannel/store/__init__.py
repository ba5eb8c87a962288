"""Stores: where dispatches and what is due are remembered."""

from multichannel.store.base import Store
from multichannel.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
