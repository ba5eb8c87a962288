"""The fallback strategy: a pure function from (contact, message, history, now) to the next action.

It reads no clock, does no I/O and holds no state: the same inputs always give
the same `Action`, and every candidate it passes over is explained in words.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from time import strftime
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator

from multichannel.clock import require_aware
from multichannel.consent import refusal
from multichannel.contacts import Contact, ContactPoint, PreferenceEntry, Preferences
from multichannel.dispatch import Attempt, Outcome, Status
from multichannel.messages import Message
from multichannel.windows import Schedule, Window, next_open_all

__all__ = ["Action", "FallbackStrategy", "RetryPolicy"]

_ANY_CHANNEL = "*"
_REACHED = (Outcome.ACCEPTED, Outcome.DELIVERED)


class RetryPolicy(BaseModel):
    """How often and how patiently one point is retried after transient errors.

    ``tries`` counts the first try. Waits grow from ``initial`` by doubling up to
    ``maximum``, plus up to ``jitter`` at random. A provider's Retry-After is
    honoured when it is no longer than ``maximum``; a longer one ends the tries.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tries: int = Field(default=3, ge=1, le=20)
    initial: timedelta = timedelta(seconds=1)
    maximum: timedelta = timedelta(seconds=30)
    jitter: timedelta = timedelta(seconds=1)

    @field_validator("initial", "maximum", "jitter")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("cannot be negative")
        return value


class Action(BaseModel):
    """What to do next, and why: send on a point now, wait until an instant, or stop.

    ``status`` is the dispatch status while waiting or after stopping. ``notes``
    explain the candidates passed over and the time zones used.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["send", "wait", "stop"]
    status: Status
    reason: str
    point: ContactPoint | None = None
    until: datetime | None = None
    notes: tuple[str, ...] = ()


class _Candidate(NamedTuple):
    rank: int
    entry: PreferenceEntry
    point: ContactPoint


@lru_cache(maxsize=64)
def _ordinal(rank: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(rank if rank < 20 else rank % 10, "th")
    return f"{rank}{suffix} choice"


# Pure memos of what decide would otherwise work out again for every contact and
# every call. Each is keyed by the values its answer depends on (never by an
# object's identity), so equal inputs share an entry and no entry can go stale.


@lru_cache(maxsize=1024)
def _entries(channels: tuple[str, ...]) -> tuple[PreferenceEntry, ...]:
    """`Preferences.entries` for ``channels``, which is all it reads."""
    return Preferences.model_construct(channels=channels).entries


@lru_cache(maxsize=4096)
def _phone_zones(points: tuple[ContactPoint, ...]) -> tuple[str, ...]:
    """`Contact.phone_zones` of a contact with ``points``, which is all it reads."""
    return Contact.model_construct(id="-", points=points).phone_zones()


@lru_cache(maxsize=1024)
def _inferred_note(inferred: tuple[str, ...]) -> str:
    shown = ", ".join(inferred[:5]) + (
        f" and {len(inferred) - 5} more" if len(inferred) > 5 else ""
    )
    return (
        f"no time zone given; inferred from phone numbers: {shown} (quiet if quiet in any of them)"
    )


@lru_cache(maxsize=4096)
def _schedules(
    zones: tuple[str, ...],
    quiet_hours: tuple[Window, ...],
    avoid_days: tuple[str, ...],
    available: tuple[Window, ...] | None,
) -> tuple[Schedule, ...]:
    """One schedule per zone, quiet by `Preferences.quiet_windows` of these hours and days."""
    preferences = Preferences.model_construct(quiet_hours=quiet_hours, avoid_days=avoid_days)
    quiet = preferences.quiet_windows
    return tuple(Schedule(timezone=name, quiet=quiet, available=available) for name in zones)


class FallbackStrategy:
    """Walks a contact's ranked channels: first choice first, the next on failure or silence.

    ``depth`` is how many preference entries to walk (None: all). A point gets
    ``retry.tries`` tries for transient errors. ``default_channels`` stand in for
    a contact without preferences; ``default_timezone`` for a contact with no
    zone and no phone number. Raises ValueError for a bad setting.
    """

    def __init__(
        self,
        *,
        depth: int | None = 2,
        default_channels: Sequence[str] = ("email", "sms", "voice", "fax"),
        default_timezone: str = "UTC",
        default_response_wait: timedelta = timedelta(hours=24),
        retry: RetryPolicy | None = None,
        horizon: timedelta = timedelta(days=14),
    ) -> None:
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be at least 1, or None for every choice; got {depth}")
        if default_response_wait <= timedelta(0):
            raise ValueError("default_response_wait must be longer than zero")
        if horizon <= timedelta(0):
            raise ValueError("horizon must be longer than zero")
        Schedule(timezone=default_timezone)
        self.depth = depth
        self.default_channels = tuple(PreferenceEntry.parse(text) for text in default_channels)
        self.default_timezone = default_timezone
        self.default_response_wait = default_response_wait
        self.retry = retry or RetryPolicy()
        self.horizon = horizon

    def __repr__(self) -> str:
        return (
            f"FallbackStrategy(depth={self.depth}, default_timezone={self.default_timezone!r}, "
            f"default_response_wait={self.default_response_wait!r}, retry={self.retry!r})"
        )

    def zones(self, contact: Contact) -> tuple[tuple[str, ...], str]:
        """The zones a contact's quiet hours are read in, and a sentence saying why."""
        if contact.timezone:
            return (contact.timezone,), f"time zone {contact.timezone} (the contact's own)"
        inferred = _phone_zones(tuple(contact.points))
        if inferred:
            return inferred, _inferred_note(inferred)
        return (self.default_timezone,), (
            f"no time zone given and no phone number; using the default {self.default_timezone}"
        )

    def response_wait(self, contact: Contact, message: Message) -> timedelta:
        """How long to wait for an answer: the message's, else the contact's, else the default."""
        return (
            message.response_wait or contact.preferences.response_wait or self.default_response_wait
        )

    def answer_due(self, contact: Contact, message: Message, attempt: Attempt) -> datetime:
        """When the wait for an answer to ``attempt`` runs out, counted from its acceptance."""
        return (attempt.accepted_at or attempt.at) + self.response_wait(contact, message)

    def schedules(
        self, contact: Contact, point: ContactPoint, message: Message
    ) -> tuple[Schedule, ...]:
        """The schedules that must all be open to use ``point`` for ``message``."""
        zones, _ = self.zones(contact)
        available = None if point.available is None else tuple(point.available)
        if message.urgent:
            return _schedules(zones, (), (), available)
        preferences = contact.preferences
        return _schedules(
            zones, tuple(preferences.quiet_hours), tuple(preferences.avoid_days), available
        )

    def may_send_at(
        self, contact: Contact, point: ContactPoint, message: Message, at: datetime
    ) -> bool:
        """Whether ``message`` may reach ``point`` at ``at``: open by its schedules, not expired.

        The one rule for quiet hours, avoided days, the point's hours and
        ``deliver_by``: `decide` uses it for a first send and the dispatcher for
        every retry, so no retry lands where a first send could not.
        """
        schedules = self.schedules(contact, point, message)
        return not message.expired_at(at) and all(schedule.is_open(at) for schedule in schedules)

    def next_send_at(
        self, contact: Contact, point: ContactPoint, message: Message, after: datetime
    ) -> datetime | None:
        """The earliest instant from ``after`` at which `may_send_at` holds; None if none in time.

        None when the point does not open within ``horizon``, or opens only
        after ``deliver_by``.
        """
        opening = next_open_all(self.schedules(contact, point, message), after, self.horizon)
        return None if opening is None or message.expired_at(opening) else opening

    def decide(
        self,
        contact: Contact,
        message: Message,
        *,
        now: datetime,
        attempts: Sequence[Attempt] = (),
        channels: Collection[str] = (_ANY_CHANNEL,),
        opted_out: Collection[tuple[str, str]] = (),
    ) -> Action:
        """The next action for ``message`` to ``contact`` at ``now``.

        ``attempts`` is the history so far, ``channels`` the channels that have
        an adapter (``"*"`` for all), ``opted_out`` the (channel, address) pairs
        known to have opted out. Raises ValueError for a naive ``now``.
        """
        require_aware(now, "now")
        notes = [self.zones(contact)[1]]
        if message.urgent:
            notes.append("urgent: quiet hours and avoided days are ignored")
        candidates = self._candidates(contact, message, channels, opted_out, notes)

        settled = self._settled(contact, message, attempts, now)
        if settled is not None:
            return settled.model_copy(update={"notes": tuple(notes)})

        cut_by_deadline = False
        for candidate in candidates:
            if attempts and _tried(candidate.point, attempts):
                continue
            described = f"{candidate.point.describe()} ({_ordinal(candidate.rank)})"
            if message.deliver_by is not None and message.expired_at(now):
                notes.append(f"deliver_by {message.deliver_by.isoformat()} has passed")
                cut_by_deadline = True
                break
            schedules = self.schedules(contact, candidate.point, message)
            opens = next_open_all(schedules, now, self.horizon)
            if opens is None:
                notes.append(
                    f"skipped {described}: not open at any time in the next {self.horizon}"
                )
                continue
            if message.deliver_by is not None and message.expired_at(opens):
                notes.append(
                    f"skipped {described}: it opens at {opens.isoformat()}, "
                    f"after deliver_by {message.deliver_by.isoformat()}"
                )
                cut_by_deadline = True
                continue
            if opens <= now:
                return Action(
                    kind="send",
                    status=Status.SCHEDULED,
                    point=candidate.point,
                    reason=f"send on {described}: it is open now",
                    notes=tuple(notes),
                )
            return Action(
                kind="wait",
                status=Status.SCHEDULED,
                point=candidate.point,
                until=opens,
                reason=(
                    f"wait until {opens.isoformat()} for {described}: {_why_closed(schedules, now)}"
                ),
                notes=tuple(notes),
            )
        return self._exhausted(attempts, cut_by_deadline, notes)

    def _candidates(
        self,
        contact: Contact,
        message: Message,
        channels: Collection[str],
        opted_out: Collection[tuple[str, str]],
        notes: list[str],
    ) -> list[_Candidate]:
        """Allowed points in ranked order; a note for each entry or point passed over."""
        entries = _entries(tuple(contact.preferences.channels))
        if not entries:
            entries = self.default_channels
            notes.append(
                "no channel preferences; using the defaults: "
                + ", ".join(str(entry) for entry in entries)
            )
        walked = entries if self.depth is None else entries[: self.depth]
        if len(walked) < len(entries):
            later = ", ".join(str(entry) for entry in entries[len(walked) :])
            notes.append(f"depth {self.depth}: later choices not tried ({later})")
        allowed: list[_Candidate] = []
        seen: set[tuple[str, str]] = set()
        every_channel = _ANY_CHANNEL in channels
        for rank, entry in enumerate(walked, start=1):
            if not every_channel and entry.channel not in channels:
                notes.append(
                    f"skipped {entry} ({_ordinal(rank)}): "
                    f"no adapter is registered for {entry.channel}"
                )
                continue
            found = False
            for point in contact.points_for(entry):
                found = True
                key = (point.channel, point.address)
                if key in seen:
                    continue
                seen.add(key)
                skip = refusal(point, message, opted_out)
                if skip:
                    notes.append(f"skipped {point.describe()} ({_ordinal(rank)}): {skip}")
                else:
                    allowed.append(_Candidate(rank, entry, point))
            if not found:
                label = f" labelled {entry.label}" if entry.label else ""
                notes.append(
                    f"skipped {entry} ({_ordinal(rank)}): "
                    f"the contact has no {entry.channel} point{label}"
                )
        return allowed

    def _settled(
        self, contact: Contact, message: Message, attempts: Sequence[Attempt], now: datetime
    ) -> Action | None:
        """The action when the history already decides it: answered, accepted or in flight."""
        for attempt in attempts:
            if attempt.outcome is Outcome.RESPONDED:
                where = f"{attempt.channel} {attempt.address}"
                return Action(kind="stop", status=Status.RESPONDED, reason=f"answered on {where}")
        if not attempts:
            return None
        latest = attempts[-1]
        if latest.outcome is not Outcome.SENDING and latest.outcome not in _REACHED:
            return None
        where = f"{latest.channel} {latest.address}"
        if latest.outcome is Outcome.SENDING:
            return Action(
                kind="stop",
                status=Status.SCHEDULED,
                reason=f"the outcome of the send on {where} is not known yet",
            )
        if not message.expects_response:
            status = Status.DELIVERED if latest.outcome is Outcome.DELIVERED else Status.ACCEPTED
            return Action(kind="stop", status=status, reason=f"{latest.outcome.value} on {where}")
        deadline = self.answer_due(contact, message, latest)
        if now < deadline:
            return Action(
                kind="wait",
                status=Status.AWAITING_RESPONSE,
                until=deadline,
                reason=f"waiting for an answer on {where} until {deadline.isoformat()}",
            )
        return None

    def _exhausted(
        self, attempts: Sequence[Attempt], cut_by_deadline: bool, notes: list[str]
    ) -> Action:
        """The stop once no candidate is left to try."""
        reached = any(
            attempt.outcome in (Outcome.ACCEPTED, Outcome.DELIVERED, Outcome.UNANSWERED)
            for attempt in attempts
        )
        if cut_by_deadline and reached:
            # The person had the message and did not answer in time: that is
            # silence, not a delivery that never happened.
            status, reason = Status.UNANSWERED, "no answer before deliver_by"
        elif cut_by_deadline:
            status, reason = (
                Status.EXPIRED,
                "deliver_by passed before another channel could be used",
            )
        elif not attempts:
            status, reason = Status.SUPPRESSED, "no channel was allowed for this message"
        elif attempts[-1].outcome in (Outcome.ACCEPTED, Outcome.DELIVERED, Outcome.UNANSWERED):
            status, reason = Status.UNANSWERED, "no answer on the last channel tried"
        elif any(attempt.outcome is not Outcome.FAILED for attempt in attempts):
            # An earlier channel took the message and went unanswered, so not
            # every candidate failed: the person was reached and did not answer.
            status, reason = Status.UNANSWERED, "no answer on any channel that took the message"
        else:
            status, reason = Status.FAILED, "every allowed channel was tried and failed"
        return Action(kind="stop", status=status, reason=reason, notes=tuple(notes))


def _tried(point: ContactPoint, attempts: Sequence[Attempt]) -> bool:
    return any(attempt.is_for(point) for attempt in attempts)


def _why_closed(schedules: Sequence[Schedule], now: datetime) -> str:
    """Which window keeps the point closed at ``now``, in words."""
    for schedule in schedules:
        reading = schedule.local(now)
        why = None
        for window in schedule.quiet:
            if window.contains(reading):
                if window.start == "00:00" and window.end == "24:00":
                    why = "an avoided day"
                else:
                    why = f"inside quiet hours {window.describe()}"
                break
        else:
            if schedule.available is not None and not any(
                window.contains(reading) for window in schedule.available
            ):
                hours = "; ".join(window.describe() for window in schedule.available) or "never"
                why = f"outside the point's available hours ({hours})"
        if why is not None:
            # strftime as format(reading, "%a %H:%M") calls it, without its pass over the format.
            local = strftime("%a %H:%M", reading.timetuple())
            return f"it is {local} in {schedule.timezone}, {why}"
    return "it is closed now"
