"""Shared fixtures. Tests never sleep and never read the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, settings

from multichannel import ManualClock, Outbox

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
