"""A store in this process's memory: the default, for tests and single-process use."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Iterable, Iterator
from datetime import datetime, timedelta
from typing import ClassVar

from multichannel.contacts import address_key
from multichannel.dispatch import DeliveryEvent, Dispatch, Status
from multichannel.errors import StaleDispatch

__all__ = ["MemoryStore"]


def _key(channel: str, address: str) -> tuple[str, str]:
    return channel, address_key(channel, address)


class MemoryStore:
    """Keeps dispatches in a dict; lost when the process ends. Thread-safe.

    Dispatches are copied in and out, as a durable store would, so changing a
    returned dispatch does not change the stored one.
    """

    blocking: ClassVar[bool] = False
    """It never waits on I/O (see `Dispatcher.send_many`)."""

    def __init__(self) -> None:
        self._dispatches: dict[str, Dispatch] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._provider_ids: dict[str, str] = {}
        # (channel, address) -> dispatch id -> (latest try there, order of first try)
        self._points: dict[tuple[str, str], dict[str, tuple[datetime, int]]] = {}
        self._order = itertools.count()
        self._opt_outs: set[tuple[str, str]] = set()
        self._leases: dict[str, tuple[str, datetime]] = {}
        self._held: dict[int, tuple[datetime, DeliveryEvent]] = {}
        self._held_keys = itertools.count(1)
        self._inbound: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def create(self, dispatch: Dispatch) -> Dispatch:
        with self._lock:
            key = dispatch.message.key
            if key is not None:
                existing = self._keys.get((dispatch.contact_id, key))
                if existing is not None:
                    return self._dispatches[existing].clone()
                self._keys[(dispatch.contact_id, key)] = dispatch.id
            self._write(dispatch)
            # The caller's own object: the store keeps a copy of its own.
            return dispatch

    def save(self, dispatch: Dispatch) -> None:
        with self._lock:
            stored = self._dispatches.get(dispatch.id)
            if stored is not None and stored.revision != dispatch.revision:
                raise StaleDispatch(
                    f"dispatch {dispatch.id} is at revision {stored.revision}, "
                    f"not {dispatch.revision}"
                )
            dispatch.revision += 1
            self._write(dispatch)

    def _write(self, dispatch: Dispatch) -> None:
        self._dispatches[dispatch.id] = dispatch.clone()
        for attempt in dispatch.attempts:
            if attempt.provider_id is not None:
                self._provider_ids[attempt.provider_id] = dispatch.id
            tried = self._points.setdefault(_key(attempt.channel, attempt.address), {})
            before = tried.get(dispatch.id)
            if before is None:
                tried[dispatch.id] = (attempt.at, next(self._order))
            elif attempt.at > before[0]:
                tried[dispatch.id] = (attempt.at, before[1])

    def get(self, dispatch_id: str) -> Dispatch | None:
        with self._lock:
            found = self._dispatches.get(dispatch_id)
            return None if found is None else found.clone()

    def find_by_provider_id(self, provider_id: str) -> Dispatch | None:
        with self._lock:
            dispatch_id = self._provider_ids.get(provider_id)
        return None if dispatch_id is None else self.get(dispatch_id)

    def find_by_address(self, channel: str, address: str) -> Dispatch | None:
        """The dispatch that tried the point last; of two at one instant, the later to start."""
        with self._lock:
            tried = self._points.get(_key(channel, address))
            if not tried:
                return None
            latest = max(tried, key=tried.__getitem__)
            return self._dispatches[latest].clone()

    def dispatches_that_tried(
        self, channel: str, address: str, statuses: Collection[Status] | None = None
    ) -> list[Dispatch]:
        with self._lock:
            tried = self._points.get(_key(channel, address), {})
            return [
                self._dispatches[dispatch_id].clone()
                for dispatch_id in sorted(tried, key=lambda found: tried[found][1])
                if statuses is None or self._dispatches[dispatch_id].status in statuses
            ]

    def due(self, now: datetime, limit: int | None = None) -> list[Dispatch]:
        with self._lock:
            return [dispatch.clone() for dispatch in self._due(now, limit)]

    def _due(self, now: datetime, limit: int | None) -> list[Dispatch]:
        due = sorted(
            (
                dispatch
                for dispatch in self._dispatches.values()
                if not dispatch.status.is_final
                and dispatch.next_action_at is not None
                and dispatch.next_action_at <= now
                and not self._leased(dispatch.id, now)
            ),
            key=lambda dispatch: (dispatch.next_action_at, dispatch.created_at),
        )
        return due[:limit]

    def _leased(self, dispatch_id: str, now: datetime) -> bool:
        lease = self._leases.get(dispatch_id)
        return lease is not None and lease[1] >= now

    def claim_due(
        self, now: datetime, *, lease: timedelta, owner: str, limit: int | None = None
    ) -> list[Dispatch]:
        with self._lock:
            claimed = self._due(now, limit)
            for dispatch in claimed:
                self._leases[dispatch.id] = (owner, now + lease)
            return [dispatch.clone() for dispatch in claimed]

    def release(self, dispatch_id: str, owner: str) -> None:
        with self._lock:
            lease = self._leases.get(dispatch_id)
            if lease is not None and lease[0] == owner:
                del self._leases[dispatch_id]

    def dispatches(self, status: Status | None = None) -> Iterator[Dispatch]:
        with self._lock:
            chosen = [
                dispatch.clone()
                for dispatch in sorted(self._dispatches.values(), key=lambda d: d.created_at)
                if status is None or dispatch.status is status
            ]
        return iter(chosen)

    def add_opt_out(self, channel: str, address: str) -> None:
        with self._lock:
            self._opt_outs.add(_key(channel, address))

    def remove_opt_out(self, channel: str, address: str) -> None:
        with self._lock:
            self._opt_outs.discard(_key(channel, address))

    def opted_out(self, points: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        with self._lock:
            return frozenset(point for point in points if _key(*point) in self._opt_outs)

    def hold_event(self, event: DeliveryEvent, at: datetime, *, forget_before: datetime) -> None:
        with self._lock:
            self._held = {
                key: (held, kept)
                for key, (held, kept) in self._held.items()
                if held >= forget_before
            }
            self._held[next(self._held_keys)] = (at, event)

    def held_events(self, provider_id: str) -> list[tuple[int, DeliveryEvent]]:
        with self._lock:
            return [
                (key, event)
                for key, (_, event) in sorted(self._held.items())
                if event.provider_id == provider_id
            ]

    def forget_held_events(self, keys: Iterable[int]) -> None:
        with self._lock:
            for key in keys:
                self._held.pop(key, None)

    def seen_inbound(self, key: str) -> bool:
        with self._lock:
            return key in self._inbound

    def remember_inbound(self, key: str, at: datetime) -> None:
        with self._lock:
            self._inbound.setdefault(key, at)

    def __repr__(self) -> str:
        return f"MemoryStore(dispatches={len(self._dispatches)})"

    def create_many(self, dispatches: Iterable[Dispatch]) -> list[Dispatch]:
        """`create` each dispatch in turn; what each returned (a key used twice: the first)."""
        return [self.create(dispatch) for dispatch in dispatches]

    def release_many(self, dispatch_ids: Iterable[str], owner: str) -> None:
        """`release` each of these dispatches: ``owner``'s leases end, others' are left alone."""
        for dispatch_id in dispatch_ids:
            self.release(dispatch_id, owner)
