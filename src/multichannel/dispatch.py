"""The record of one message to one person: its state, its attempts and why each step was taken."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, TypeAlias

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from multichannel.contacts import Contact, ContactPoint, address_key
from multichannel.messages import Message

__all__ = [
    "LIVE",
    "WAITING",
    "Attempt",
    "Decision",
    "DeliveryEvent",
    "Dispatch",
    "EventKind",
    "EventKindName",
    "Outcome",
    "Status",
]


class Status(StrEnum):
    """Where a dispatch stands.

    scheduled: a send is due at ``next_action_at``. accepted: a provider took the
    message. delivered: the provider confirmed delivery. awaiting_response: sent,
    and waiting for an answer until ``next_action_at``. responded: the person
    answered. unanswered: the last candidate got no answer in time. expired:
    ``deliver_by`` passed before any candidate could be used. failed: every
    allowed candidate was tried and failed. suppressed: no candidate was ever
    allowed. cancelled: stopped by the person (opt-out) or by you. review: a
    send was interrupted (the process stopped while a provider was being
    called), so nobody knows whether it went out; it waits for a person
    (`Dispatcher.resume`).
    """

    SCHEDULED = "scheduled"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    AWAITING_RESPONSE = "awaiting_response"
    RESPONDED = "responded"
    UNANSWERED = "unanswered"
    EXPIRED = "expired"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"
    REVIEW = "review"

    @property
    def is_final(self) -> bool:
        """True when nothing more will happen unless an event arrives: not `WAITING`."""
        return self not in WAITING


# The one place the status groups are spelled; stores, the dispatcher and consent read them.
WAITING = frozenset({Status.SCHEDULED, Status.AWAITING_RESPONSE})
"""Statuses with a step due at ``next_action_at``: what stores hand to workers."""

LIVE = WAITING | {Status.ACCEPTED, Status.DELIVERED}
"""Statuses a dispatch can still move on from by itself or by a failure event.

The others change only by a person (`Dispatcher.resume`, `Dispatcher.cancel`)
or an answer.
"""


class Outcome(StrEnum):
    """What became of one attempt on one point.

    ``sending`` is written before the provider is called, so a crash during the
    call is visible afterwards.
    """

    SENDING = "sending"
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    FAILED = "failed"
    RESPONDED = "responded"
    UNANSWERED = "unanswered"


class EventKind(StrEnum):
    """What a provider reported back."""

    DELIVERED = "delivered"
    FAILED = "failed"
    RESPONDED = "responded"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"


EventKindName = Literal["delivered", "failed", "responded", "opted_out", "opted_in"]
"""The values of `EventKind` as strings, which a `DeliveryEvent` also takes for its kind."""

# ``DeliveryEvent.kind`` reads as an EventKind and may be given as its string ("responded").
# Type checkers type a pydantic model's ``__init__`` from its field annotations
# (``dataclass_transform``; users run no pydantic plugin), taking a descriptor's ``__set__``
# argument as the parameter's type. To pydantic the field is an EventKind, so what is stored,
# and every validation error, is the enum's.
if TYPE_CHECKING:

    class _KindDescriptor:
        def __get__(self, instance: object, owner: type | None = None) -> EventKind: ...

        def __set__(self, instance: object, value: EventKind | EventKindName) -> None: ...

    _KindField: TypeAlias = _KindDescriptor
else:
    _KindField = EventKind


class Attempt(BaseModel):
    """One point tried within a dispatch, with every try made on it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    channel: str
    address: str
    label: str | None = None
    at: AwareDatetime = Field(description="when the first try began")
    outcome: Outcome = Outcome.SENDING
    tries: int = Field(default=0, ge=0, description="calls made to providers for this point")
    provider: str | None = Field(default=None, description="adapter that took or last refused it")
    provider_id: str | None = Field(default=None, description="the provider's id for the message")
    accepted_at: AwareDatetime | None = None
    error: str | None = None

    def is_for(self, point: ContactPoint) -> bool:
        """True when this attempt was made on ``point``."""
        return self.channel == point.channel and self.address == point.address


class Decision(BaseModel):
    """One step of reasoning, in words a person reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    reason: str


class DeliveryEvent(BaseModel):
    """A report from a provider: delivered, failed, responded, opted out or back in.

    It is matched to a dispatch by ``dispatch_id``, else by ``provider_id``, else
    (for an inbound reply) by the ``channel`` and ``address`` it came from: the
    latest dispatch that tried that point. An event naming only ``dispatch_id``
    applies to the latest attempt; give ``provider_id`` where there is one, so
    that a callback delivered twice is recognised as the same one, and
    ``inbound_id`` for a reply, so that a replayed one is ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: _KindField
    provider_id: str | None = None
    dispatch_id: str | None = None
    channel: str | None = Field(default=None, description="for replies: the channel it came on")
    address: str | None = Field(default=None, description="for replies: who sent it")
    at: AwareDatetime | None = Field(default=None, description="when it happened; default now")
    detail: str | None = Field(default=None, description="the provider's words, e.g. a bounce")
    inbound_id: str | None = Field(
        default=None,
        description="the provider's id of the inbound message this event was read from: "
        "a message delivered again changes nothing",
    )
    point_opted_out: bool = Field(
        default=False,
        description="a failure because the person had opted out of this point: the point is "
        "marked opted out for every later dispatch, and this one falls back",
    )


class Dispatch(BaseModel):
    """Everything known about delivering one message to one contact."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str
    contact_id: str = Field(description="the id of the contact")
    contact: Contact
    message: Message
    status: Status = Status.SCHEDULED
    attempts: list[Attempt] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    next_action_at: AwareDatetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    dry_run: bool = Field(
        default=False,
        description="started by a dispatcher whose adapters are all dry runs, such as "
        "Outbox(dry_run=True): a dispatcher with a real adapter never sends it but cancels it",
    )
    revision: int = Field(
        default=0, ge=0, description="bumped by every save; an out-of-date copy cannot be saved"
    )

    @model_validator(mode="after")
    def _check_contact_id(self) -> Dispatch:
        if self.contact_id != self.contact.id:
            raise ValueError(
                f"contact_id {self.contact_id!r} differs from the contact's id {self.contact.id!r}"
            )
        return self

    def clone(self) -> Dispatch:
        """A copy to change freely: what can change is copied, the rest is shared.

        The attempts, the decision log and the message's dicts (variants,
        metadata) are copied; the contact, the rest of the message and each
        decision are frozen, so they are shared. Much cheaper than ``model_copy(deep=True)``, which
        stores use to hand out and keep dispatches.
        """
        message = self.message
        if message.metadata or message.variants:
            message = message.model_copy(
                update={"metadata": dict(message.metadata), "variants": dict(message.variants)}
            )
        return self.model_copy(
            update={
                "message": message,
                "attempts": [attempt.model_copy() for attempt in self.attempts],
                "decisions": list(self.decisions),
            }
        )

    @property
    def current(self) -> Attempt | None:
        """The latest attempt, if any."""
        return self.attempts[-1] if self.attempts else None

    def attempt_for_provider_id(self, provider_id: str) -> Attempt | None:
        """The attempt the provider knows as ``provider_id``."""
        for attempt in reversed(self.attempts):
            if attempt.provider_id == provider_id:
                return attempt
        return None

    def same_attempt(self, attempt: Attempt) -> Attempt | None:
        """This dispatch's copy of ``attempt`` (same point, same start), if it has one."""
        for mine in self.attempts:
            if (mine.channel, mine.address, mine.at) == (
                attempt.channel,
                attempt.address,
                attempt.at,
            ):
                return mine
        return None

    def attempt_for_address(self, channel: str, address: str) -> Attempt | None:
        """The latest attempt on ``address`` over ``channel``."""
        wanted = address_key(channel, address)
        for attempt in reversed(self.attempts):
            if attempt.channel == channel and address_key(channel, attempt.address) == wanted:
                return attempt
        return None

    def note(self, at: datetime, reason: str) -> None:
        """Add ``reason`` to the decision log."""
        self.decisions.append(Decision(at=at, reason=reason))

    def settle(self, at: datetime, status: Status, reason: str) -> None:
        """End in ``status`` at ``at``, nothing more due, with ``reason`` in the log."""
        self.status = status
        self.next_action_at = None
        self.updated_at = at
        self.note(at, reason)

    def timeline(self) -> list[str]:
        """The decision log as lines: ``2026-03-02T21:00:00+00:00  reason``."""
        return [f"{decision.at.isoformat()}  {decision.reason}" for decision in self.decisions]
