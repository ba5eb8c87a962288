"""What ``multichannel status`` reports: dispatches by status, who was not reached, what waits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from multichannel import Dispatch, Status, Store

__all__ = ["NOT_REACHED", "InReview", "NotReached", "StoreStatus", "store_status"]

# The statuses in which a dispatch ended without reaching its person. A
# cancelled dispatch is left out: the person or the sender chose that.
NOT_REACHED = (Status.FAILED, Status.UNANSWERED, Status.EXPIRED, Status.SUPPRESSED)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class NotReached:
    """A dispatch that ended without reaching its contact, and the last word on why."""

    dispatch_id: str
    contact_id: str
    status: str
    tried: tuple[str, ...]
    reason: str
    error: str | None
    at: datetime
    dry_run: bool = False

    def as_json(self) -> dict[str, object]:
        """The entry as ``status --json`` writes it."""
        return {
            "dispatch_id": self.dispatch_id,
            "contact_id": self.contact_id,
            "status": self.status,
            "tried": list(self.tried),
            "reason": self.reason,
            "error": self.error,
            "at": _iso(self.at),
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class InReview:
    """A dispatch held for review: a send was cut short and may or may not have gone out."""

    dispatch_id: str
    contact_id: str
    channel: str
    address: str
    provider: str | None
    since: datetime
    dry_run: bool = False

    def as_json(self) -> dict[str, object]:
        """The entry as ``status --json`` writes it."""
        return {
            "dispatch_id": self.dispatch_id,
            "contact_id": self.contact_id,
            "channel": self.channel,
            "address": self.address,
            "provider": self.provider,
            "since": _iso(self.since),
            "dry_run": self.dry_run,
            "settle_with": [
                f"multichannel review {self.dispatch_id} --sent",
                f"multichannel review {self.dispatch_id} --not-sent",
            ],
        }


@dataclass(frozen=True)
class StoreStatus:
    """Everything ``multichannel status`` shows about one store."""

    store: str
    counts: dict[str, int]
    next_due: datetime | None
    not_reached: list[NotReached]
    review: list[InReview]
    dry_run_counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many dispatches the store holds."""
        return sum(self.counts.values())

    @property
    def dry_runs(self) -> int:
        """How many of them were created as dry runs, and so are never sent for real."""
        return sum(self.dry_run_counts.values())

    def as_json(self) -> dict[str, object]:
        """The report as ``status --json`` writes it."""
        return {
            "store": self.store,
            "total": self.total,
            "counts": self.counts,
            "next_due": _iso(self.next_due),
            "not_reached": [item.as_json() for item in self.not_reached],
            "review": [item.as_json() for item in self.review],
            "dry_run": {"total": self.dry_runs, "counts": self.dry_run_counts},
        }


def _not_reached(dispatch: Dispatch) -> NotReached:
    last = dispatch.decisions[-1].reason if dispatch.decisions else dispatch.status.value
    errors = [attempt.error for attempt in dispatch.attempts if attempt.error]
    return NotReached(
        dispatch_id=dispatch.id,
        contact_id=dispatch.contact_id,
        status=dispatch.status.value,
        tried=tuple(
            f"{attempt.channel} {attempt.address} {attempt.outcome.value}"
            for attempt in dispatch.attempts
        ),
        reason=last,
        error=errors[-1] if errors else None,
        at=dispatch.updated_at,
        dry_run=dispatch.dry_run,
    )


def _in_review(dispatch: Dispatch) -> InReview:
    current = dispatch.current
    return InReview(
        dispatch_id=dispatch.id,
        contact_id=dispatch.contact_id,
        channel="-" if current is None else current.channel,
        address="-" if current is None else current.address,
        provider=None if current is None else current.provider,
        since=dispatch.updated_at if current is None else current.at,
        dry_run=dispatch.dry_run,
    )


def store_status(store: Store, shown: str) -> StoreStatus:
    """Read every dispatch in ``store`` once and sum up; ``shown`` names the store."""
    counts: Counter[str] = Counter()
    dry_runs: Counter[str] = Counter()
    not_reached: list[NotReached] = []
    review: list[InReview] = []
    next_due: datetime | None = None
    for dispatch in store.dispatches():
        counts[dispatch.status.value] += 1
        if dispatch.dry_run:
            dry_runs[dispatch.status.value] += 1
        if dispatch.status in NOT_REACHED:
            not_reached.append(_not_reached(dispatch))
        elif dispatch.status is Status.REVIEW:
            review.append(_in_review(dispatch))
        elif not dispatch.status.is_final and dispatch.next_action_at is not None:
            due = dispatch.next_action_at
            next_due = due if next_due is None else min(next_due, due)
    not_reached.sort(key=lambda item: (item.at, item.contact_id, item.dispatch_id))
    review.sort(key=lambda item: (item.since, item.contact_id, item.dispatch_id))
    return StoreStatus(
        store=shown,
        counts=_in_order(counts),
        next_due=next_due,
        not_reached=not_reached,
        review=review,
        dry_run_counts=_in_order(dry_runs),
    )


def _in_order(counts: Counter[str]) -> dict[str, int]:
    return {status.value: counts[status.value] for status in Status if counts[status.value]}
