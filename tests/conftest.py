"""Shared fixtures. Tests never sleep and never read the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from _postgres import postgres_schema
from multichannel import ManualClock, MemoryStore, Outbox, SQLStore, Store

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("default")

# Monday 2 March 2026, 14:00 UTC: 09:00 in Detroit, a working morning.
MONDAY_MORNING_DETROIT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that starts on a Monday morning in Detroit and moves only when told."""
    return ManualClock(MONDAY_MORNING_DETROIT)


@pytest.fixture
def outbox() -> Outbox:
    """A fresh outbox adapter serving every channel."""
    return Outbox()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each kind of store the library ships, fresh and empty."""
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "postgres":
        with postgres_schema() as schema:
            yield schema.store()
    else:
        sql = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
        yield sql
        sql.close()
