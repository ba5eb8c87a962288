"""The store interface: where dispatches, indexes, opt-outs and due steps live.

`Store` is what every store implements. `BatchStore` adds optional methods that
do many dispatches' work in one call (one transaction on a SQL store); the
library asks for each of them by name (`create_many` and `release_many` here do
that) and falls back to `Store`'s one-at-a-time methods when a store lacks it,
so a store written before they existed keeps working unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from multichannel.dispatch import DeliveryEvent, Dispatch, Status

__all__ = ["BatchStore", "Store", "create_many", "release_many"]


@runtime_checkable
class Store(Protocol):
    """Remembers dispatches and answers the dispatcher's questions about them.

    Implementations are safe to share between threads.
    """

    def create(self, dispatch: Dispatch) -> Dispatch:
        """Store a new dispatch, or return the one already stored under its contact and key."""
        ...

    def save(self, dispatch: Dispatch) -> None:
        """Write ``dispatch`` and index its provider ids, then bump its ``revision``.

        Raises StaleDispatch, writing nothing, when the stored revision is not
        ``dispatch.revision``: someone else saved it since this copy was read.
        """
        ...

    def get(self, dispatch_id: str) -> Dispatch | None:
        """The dispatch with this id, or None."""
        ...

    def find_by_provider_id(self, provider_id: str) -> Dispatch | None:
        """The dispatch with an attempt the provider knows as ``provider_id``, or None."""
        ...

    def find_by_address(self, channel: str, address: str) -> Dispatch | None:
        """The dispatch that tried ``address`` over ``channel`` last, or None.

        Last means the latest try there; of dispatches that tried it at the same
        instant, the one that first tried it later.
        """
        ...

    def dispatches_that_tried(
        self, channel: str, address: str, statuses: Collection[Status] | None = None
    ) -> list[Dispatch]:
        """Dispatches (in ``statuses``) that tried ``address`` on ``channel``, oldest first."""
        ...

    def due(self, now: datetime, limit: int | None = None) -> list[Dispatch]:
        """Dispatches waiting for a step whose time is ``now`` or earlier, oldest first."""
        ...

    def claim_due(
        self, now: datetime, *, lease: timedelta, owner: str, limit: int | None = None
    ) -> list[Dispatch]:
        """Due dispatches nobody holds, now leased to ``owner`` until ``now + lease``."""
        ...

    def release(self, dispatch_id: str, owner: str) -> None:
        """End ``owner``'s lease on a dispatch; another owner's lease is left alone."""
        ...

    def dispatches(self, status: Status | None = None) -> Iterator[Dispatch]:
        """Every stored dispatch, or those in ``status``, oldest first."""
        ...

    def add_opt_out(self, channel: str, address: str) -> None:
        """Remember that ``address`` on ``channel`` must not be contacted again."""
        ...

    def remove_opt_out(self, channel: str, address: str) -> None:
        """Forget an opt-out: the person asked to be reached there again."""
        ...

    def opted_out(self, points: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Those of the (channel, address) pairs given that have opted out."""
        ...

    def hold_event(self, event: DeliveryEvent, at: datetime, *, forget_before: datetime) -> None:
        """Keep an event whose ``provider_id`` no dispatch has yet, until the id is saved.

        Events held since before ``forget_before`` are dropped: their send is over.
        """
        ...

    def held_events(self, provider_id: str) -> list[tuple[int, DeliveryEvent]]:
        """The events held for ``provider_id``, oldest first, each with its key for forgetting."""
        ...

    def forget_held_events(self, keys: Iterable[int]) -> None:
        """Drop the held events with these keys (once applied); unknown keys are ignored."""
        ...

    def seen_inbound(self, key: str) -> bool:
        """True when an inbound message with this key was already recorded."""
        ...

    def remember_inbound(self, key: str, at: datetime) -> None:
        """Remember that the inbound message with this key has been recorded."""
        ...


@runtime_checkable
class BatchStore(Store, Protocol):
    """A `Store` that also creates and releases many dispatches in one call.

    Each method is optional and looked up by name on its own: a store may
    define either, both or neither (`create_many` and `release_many` below fall
    back to the `Store` methods, one dispatch at a time).
    """

    def create_many(self, dispatches: Iterable[Dispatch]) -> list[Dispatch]:
        """`create` each dispatch, all or none of them, in the order given; what each returned.

        Idempotency keys work as in `create`: for a (contact, key) already stored
        the stored dispatch is returned and nothing is written, and of two in
        ``dispatches`` with one (contact, key) the first is stored and returned
        for both. A store with transactions writes them in one, so that an
        error (an id already taken) stores none of them.
        """
        ...

    def release_many(self, dispatch_ids: Iterable[str], owner: str) -> None:
        """`release` each of these dispatches: ``owner``'s leases end, others' are left alone."""
        ...


def create_many(store: Store, dispatches: Iterable[Dispatch]) -> list[Dispatch]:
    """``store.create_many(dispatches)`` if the store has it, else ``store.create`` for each.

    The fallback stores them one at a time, so an error may leave the earlier
    ones stored.
    """
    batch = getattr(store, "create_many", None)
    if callable(batch):
        created: list[Dispatch] = batch(dispatches)
        return created
    return [store.create(dispatch) for dispatch in dispatches]


def release_many(store: Store, dispatch_ids: Iterable[str], owner: str) -> None:
    """``store.release_many(dispatch_ids, owner)`` if the store has it, else ``store.release``."""
    batch = getattr(store, "release_many", None)
    if callable(batch):
        batch(dispatch_ids, owner)
        return
    for dispatch_id in dispatch_ids:
        store.release(dispatch_id, owner)
