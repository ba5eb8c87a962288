"""SendGrid Event Webhook batches: deliveries, bounces, drops, spam reports and unsubscribes.

Each event is read through `VOCABULARY`, and the reason of a ``dropped`` one
through `DROP_REASONS`. An event names its dispatch through
the ``dispatch_id`` key the SendGrid adapter puts in ``custom_args``, else
through ``sg_message_id``, whose part before the first dot is the
X-Message-Id the adapter kept as the provider id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from multichannel.dispatch import DeliveryEvent, EventKind
from multichannel.webhooks._signatures import (
    MalformedWebhook,
    SendGridSignature,
    SignedWebhooks,
    excerpt,
    load_json,
    point_address,
)

__all__ = ["DROP_REASONS", "VOCABULARY", "SendGridWebhooks", "parse_events"]

logger = logging.getLogger("multichannel.webhooks")

_PROVIDER = "sendgrid"

VOCABULARY: Mapping[str, tuple[EventKind | None, str]] = MappingProxyType(
    {
        "processed": (None, "accepted by SendGrid"),
        "deferred": (None, "deferred by the receiving server; SendGrid keeps trying"),
        "delivered": (EventKind.DELIVERED, "the receiving server accepted it"),
        "open": (EventKind.DELIVERED, "opened"),
        "click": (EventKind.DELIVERED, "a link in it was clicked"),
        "bounce": (EventKind.FAILED, "bounced"),
        "dropped": (EventKind.FAILED, "dropped by SendGrid"),
        "spamreport": (EventKind.OPTED_OUT, "reported as spam"),
        "unsubscribe": (EventKind.OPTED_OUT, "unsubscribed"),
        "group_unsubscribe": (EventKind.OPTED_OUT, "unsubscribed from the mailing group"),
        "group_resubscribe": (EventKind.OPTED_IN, "subscribed to the mailing group again"),
    }
)

# A drop for one of these reasons (unsubscribed, bounced before, reported spam) means
# SendGrid keeps the address on a suppression list and will drop every later message
# to it too. Like Twilio's 21610, the failure marks the address opted out for every
# later dispatch, and this one falls back.
DROP_REASONS: frozenset[str] = frozenset(
    {"unsubscribed address", "bounced address", "spam reporting address"}
)


def parse_events(body: bytes | str) -> list[DeliveryEvent]:
    """Events for a verified batch, in its order; events that change nothing are left out.

    An item that is not a SendGrid event is skipped with a warning rather than
    failing the batch, which SendGrid would otherwise send again forever.
    Raises MalformedWebhook when the body is not a JSON array, or is nested
    deeper than the interpreter's recursion limit.
    """
    batch = load_json(body, _PROVIDER)
    if not isinstance(batch, list):
        raise MalformedWebhook("the body is not a JSON array of events", provider=_PROVIDER)
    events = []
    for index, item in enumerate(batch):
        if not _is_event(item):
            logger.warning("skipped item %d of a SendGrid batch: it is not an event", index)
            continue
        event = _event(item)
        if event is not None:
            events.append(event)
    return events


def _is_event(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("event"), str)
        and any(_text(item, key) for key in ("email", "dispatch_id", "sg_message_id"))
    )


def _event(item: dict[str, Any]) -> DeliveryEvent | None:
    name = item["event"].strip().lower()
    known = VOCABULARY.get(name)
    if known is None or known[0] is None:
        return None
    kind, words = known
    email = _text(item, "email")
    dispatch_id = _text(item, "dispatch_id")
    message_id = _text(item, "sg_message_id")
    reason = " ".join((_text(item, "reason") or "").split()).lower()
    suppressed = name == "dropped" and reason in DROP_REASONS
    return DeliveryEvent(
        kind=kind,
        dispatch_id=dispatch_id,
        provider_id=None if dispatch_id or not message_id else message_id.split(".", 1)[0],
        channel="email" if email else None,
        address=point_address("email", email) if email else None,
        at=_time(item.get("timestamp")),
        detail=_detail(name, words, item),
        point_opted_out=suppressed and email is not None,
    )


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _detail(name: str, words: str, item: dict[str, Any]) -> str:
    if name == "bounce":
        kind = _text(item, "type") or "bounce"
        status = _text(item, "status")
        words = f"bounced ({kind}{', ' + status if status else ''})"
    reason = _text(item, "reason")
    return f"{words}: {excerpt(reason)}" if reason else words


class SendGridWebhooks(SignedWebhooks):
    """Verifies SendGrid's signed Event Webhook and turns its batches into `DeliveryEvent`s.

    ``public_key`` is the verification key SendGrid shows for the signed Event
    Webhook (base64, or PEM). A signature older than ``tolerance`` by
    ``clock``, or that far in the future, is refused. Raises
    ConfigurationError for an unreadable key or a tolerance that is not positive.
    """

    signature = SendGridSignature

    def events(self, *, body: bytes, headers: Mapping[str, str]) -> list[DeliveryEvent]:
        """Verify and read one batch.

        ``body`` is the raw request body, byte for byte. Raises SignatureError
        for a missing, wrong or stale signature, MalformedWebhook for a body
        that is not a batch.
        """
        return self._read(body, headers, parse_events)
