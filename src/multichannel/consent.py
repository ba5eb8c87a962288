"""Every consent rule in one place: opt-out keywords, addresses, who an opt-out stops, sensitivity.

The rules here are pure: they read a message, a point, a dispatch or an event
and answer in words. The dispatcher applies them (`Dispatcher.opt_out`,
`Dispatcher.record` and the check made before every try), and the stores keep
what they decided.

What is promised, and tested:

- An opt-out is recorded before anything else a webhook batch holds is
  processed, and nothing that fails later loses it.
- Before every try of every provider, the opt-out registry and the
  dispatch's status are read again from the store (and the point's own
  ``opted_out`` flag checked): no try begins on a point that has opted out or
  on a dispatch that is cancelled, answered or held for review.
- An opt-out stops every dispatch that tried that address (the person may have
  answered any of them): each is cancelled and not chased on another channel.
  A dispatch that has not used the address yet passes over it.

What remains: a request already on the wire when the STOP arrives cannot be
called back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

from pydantic import ValidationError

from multichannel.contacts import (
    EMAIL_CHANNELS,
    PHONE_CHANNELS,
    ContactPoint,
    address_key,
    normalise_phone,
)
from multichannel.dispatch import LIVE, DeliveryEvent, Dispatch, EventKind, Status
from multichannel.messages import Message

__all__ = [
    "HELP_KEYWORDS",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "STOPPABLE",
    "Keyword",
    "consent_point",
    "opt_out_point",
    "read_keyword",
    "refusal",
    "stop_for_opt_out",
    "withheld",
]


class Keyword(StrEnum):
    """What a one-word reply means for consent."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


# Twilio's default keywords on long codes and toll-free numbers (REVOKE and OPTOUT
# were added in 2025; ARRET is the Canadian French stop), so a reply means here
# what it meant to the carrier that acted on it.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "ARRET"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_MEANINGS = {
    **dict.fromkeys(OPT_OUT_KEYWORDS, Keyword.OPT_OUT),
    **dict.fromkeys(OPT_IN_KEYWORDS, Keyword.OPT_IN),
    **dict.fromkeys(HELP_KEYWORDS, Keyword.HELP),
}
_TRAILING_PUNCTUATION = re.compile(r"[\s.!?,;:]+$")
_SPACES = re.compile(r"[\s\-_]+")

STOPPABLE = LIVE | {Status.REVIEW}
"""Statuses an opt-out can still change: anything not yet answered, failed or ended."""


def read_keyword(body: str) -> Keyword | None:
    """What a reply's whole text means for consent, or None when it is an ordinary reply.

    Case, surrounding whitespace, accents and trailing punctuation are ignored
    ("Stop.", " stop! ", "Arrêt"), and "opt out" / "opt-out" read as OPTOUT.
    Only the whole message counts: "please stop" is an ordinary reply.
    """
    text = unicodedata.normalize("NFKD", body)
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = _TRAILING_PUNCTUATION.sub("", text.strip()).upper()
    return _MEANINGS.get(_SPACES.sub("", text)) if len(text) <= 16 else None


def consent_point(channel: str, address: str, *, region: str | None = None) -> tuple[str, str]:
    """``(channel, address)`` normalised exactly as a `ContactPoint` would store them.

    Channel names are read in any case with surrounding spaces; phone numbers
    may be national (read in ``region``) or ``tel:`` URIs; email addresses may
    be ``mailto:`` URIs in any case. Raises ValueError saying why when the
    address could never match a point, so such an opt-out is never stored.
    """
    name = channel.strip().lower() if isinstance(channel, str) else channel
    text = address.strip()
    if name in PHONE_CHANNELS:
        text = re.sub(r"^tel:", "", text, flags=re.IGNORECASE).split(";")[0]
        text = normalise_phone(text, region)
    elif name in EMAIL_CHANNELS:
        text = re.sub(r"^mailto:", "", text, flags=re.IGNORECASE).split("?")[0]
    try:
        point = ContactPoint(channel=name, address=text)
    except ValidationError as err:
        reason = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"cannot opt {address!r} out of {channel!r}: {reason}") from None
    return point.channel, address_key(point.channel, point.address)


def refusal(
    point: ContactPoint, message: Message, opted_out: Collection[tuple[str, str]]
) -> str | None:
    """Why ``point`` may not carry ``message``, or None when it may."""
    if _has_opted_out(point, opted_out):
        return "the person opted out of it"
    if message.sensitive and not point.allow_sensitive:
        return "the message is sensitive and this point does not allow sensitive content"
    return None


def opt_out_point(
    event: DeliveryEvent, matched: tuple[str, str] | None = None
) -> tuple[str, str] | None:
    """The (channel, address) an event opts out, if it opts one out.

    An ``opted_out`` event does, and so does a failure the provider blamed on
    an earlier opt-out (``point_opted_out``): the point the event names, else
    ``matched``, the point of the attempt it was matched to.
    """
    if not (
        event.kind is EventKind.OPTED_OUT
        or (event.kind is EventKind.FAILED and event.point_opted_out)
    ):
        return None
    if event.channel is not None and event.address is not None:
        return event.channel, event.address
    return matched


def withheld(
    stored: Dispatch | None, point: ContactPoint, opted_out: Collection[tuple[str, str]]
) -> str | None:
    """Why a try on ``point`` must not begin now, read from the store's copy; None to go ahead."""
    if stored is None:
        return "the dispatch is no longer in the store"
    if stored.status not in LIVE:
        return f"the dispatch is {stored.status.value}"
    if _has_opted_out(point, opted_out):
        return f"{point.channel} {point.address} has opted out"
    return None


def _has_opted_out(point: ContactPoint, opted_out: Collection[tuple[str, str]]) -> bool:
    """By the point's own flag, or by the registry's answer ``opted_out``."""
    return point.opted_out or (point.channel, point.address) in opted_out


def stop_for_opt_out(
    dispatch: Dispatch,
    channel: str,
    address: str,
    *,
    received_at: datetime,
    now: datetime,
    detail: str | None = None,
) -> bool:
    """Cancel ``dispatch`` for an opt-out of ``address`` on ``channel``; True if it changed.

    Only a dispatch that tried that address and can still act is stopped: the
    person may have been answering any of them, so none is chased on another
    channel. A dispatch that has not used the address is left to pass over it.
    ``detail`` is how the person said it (e.g. "replied STOP"), for the timeline.
    """
    tried = dispatch.attempt_for_address(channel, address)
    if dispatch.status not in STOPPABLE or tried is None:
        return False
    # A send held for review keeps its unknown outcome: the opt-out does not say
    # whether it went out, only that nothing more may.
    how = f": {detail}" if detail else ""
    dispatch.note(
        now,
        f"the person opted out on {channel} {tried.address}{how} "
        f"(received {received_at.isoformat()})",
    )
    dispatch.settle(now, Status.CANCELLED, "opted out: not contacted on any other channel")
    return True
