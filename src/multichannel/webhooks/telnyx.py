"""Telnyx Programmable Fax webhooks: a fax delivered or failed.

Each ``event_type`` is read through `VOCABULARY`. The provider id is the
payload's ``fax_id``, the id the TelnyxFax adapter kept when Telnyx accepted
the fax (the webhook's own ``data.id`` names the webhook, not the fax).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from multichannel.dispatch import DeliveryEvent, EventKind
from multichannel.webhooks._signatures import (
    MalformedWebhook,
    SignedWebhooks,
    TelnyxSignature,
    excerpt,
    load_json,
    point_address,
)

__all__ = ["VOCABULARY", "TelnyxWebhooks", "parse_fax_events"]

_PROVIDER = "telnyx"

VOCABULARY: Mapping[str, tuple[EventKind | None, str]] = MappingProxyType(
    {
        "fax.queued": (None, "queued by Telnyx"),
        "fax.media.processed": (None, "the document was fetched and converted"),
        "fax.sending.started": (None, "dialling the fax machine"),
        "fax.delivered": (EventKind.DELIVERED, "the receiving fax machine took every page"),
        "fax.failed": (EventKind.FAILED, "the fax could not be sent"),
        "fax.received": (None, "an inbound fax, not an answer to one we sent"),
    }
)


def parse_fax_events(body: bytes | str) -> list[DeliveryEvent]:
    """Events for a verified fax webhook: one when it was delivered or failed, else none.

    Raises MalformedWebhook when the body is not a Telnyx webhook (JSON nested
    deeper than the interpreter's recursion limit included), or a delivered or
    failed fax has no ``fax_id``.
    """
    document = load_json(body, _PROVIDER)
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("event_type"), str):
        raise MalformedWebhook("the body has no data.event_type", provider=_PROVIDER)
    known = VOCABULARY.get(data["event_type"].strip().lower())
    if known is None or known[0] is None:
        return []
    kind, words = known
    payload = data.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    fax_id = _text(payload, "fax_id")
    if fax_id is None:
        raise MalformedWebhook("the fax webhook has no data.payload.fax_id", provider=_PROVIDER)
    to = _text(payload, "to")
    reason = _text(payload, "failure_reason")
    return [
        DeliveryEvent(
            kind=kind,
            provider_id=fax_id,
            channel="fax" if to else None,
            address=point_address("fax", to) if to else None,
            at=_time(data.get("occurred_at")),
            detail=f"{words}: {excerpt(reason)}" if reason else words,
        )
    ]


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # Telnyx writes UTC; an offset-less time is read as UTC rather than as local time.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class TelnyxWebhooks(SignedWebhooks):
    """Verifies Telnyx's Ed25519 signature and turns its fax webhooks into `DeliveryEvent`s.

    ``public_key`` is the base64 public key from the Telnyx portal. A signature
    older than ``tolerance`` by ``clock``, or that far in the future, is
    refused. Raises ConfigurationError for an unreadable key or a tolerance
    that is not positive.
    """

    signature = TelnyxSignature

    def fax_events(self, *, body: bytes, headers: Mapping[str, str]) -> list[DeliveryEvent]:
        """Verify and read one fax webhook.

        ``body`` is the raw request body, byte for byte. Raises SignatureError
        for a missing, wrong or stale signature, MalformedWebhook for a body
        that is not a Telnyx webhook.
        """
        return self._read(body, headers, parse_fax_events)
