"""Where the library reads the time and waits.

Nothing in the library calls ``datetime.now`` or ``time.sleep`` directly: the
dispatcher asks its clock, so tests drive time with a `ManualClock` and never
sleep.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "require_aware"]


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` if it carries a time zone; raise ValueError if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} {value.isoformat()} has no time zone; "
            "give an aware datetime (for example with tzinfo=datetime.UTC)"
        )
    return value


@runtime_checkable
class Clock(Protocol):
    """A source of the current instant and a way to wait."""

    def now(self) -> datetime:
        """The current instant, time-zone aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Wait for ``seconds`` without blocking the event loop."""
        ...


class SystemClock:
    """The real clock: UTC wall time, real sleeping."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``; a negative time does not wait."""
        time.sleep(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        """Wait for ``seconds`` without blocking the event loop."""
        import asyncio  # only async callers pay for it, and they have it loaded

        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to; sleeping advances it at once.

    Raises ValueError for a naive start or target instant, for a target of
    None and for a negative step. Safe to share between threads.
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "ManualClock start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The instant the clock was last moved to."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` and return the new instant."""
        if delta < timedelta(0):
            raise ValueError(f"cannot advance a clock by a negative amount ({delta})")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, at: datetime | None) -> datetime:
        """Jump to the instant ``at`` (earlier or later) and return it.

        Takes ``dispatch.next_action_at`` as it is: None there means nothing is
        due, and raises ValueError saying so rather than leaving the clock where
        it was.
        """
        if at is None:
            raise ValueError(
                "ManualClock.set was given None: the dispatch has nothing due "
                "(next_action_at is None once it has ended or waits only for an event)"
            )
        require_aware(at, "ManualClock.set")
        with self._lock:
            self._now = at
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once; a negative time does not move the clock."""
        self.advance(timedelta(seconds=max(0.0, seconds)))

    async def asleep(self, seconds: float) -> None:
        """Advance by ``seconds`` at once, then yield to the event loop."""
        self.sleep(seconds)
        import asyncio

        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()!r})"
