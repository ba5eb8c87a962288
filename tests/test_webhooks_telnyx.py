"""Telnyx fax webhooks: signed with a generated Ed25519 key, read into events."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from multichannel import ConfigurationError, DeliveryEvent, EventKind, ManualClock
from multichannel.webhooks import (
    InvalidSignature,
    MalformedWebhook,
    MissingSignature,
    StaleSignature,
    TelnyxWebhooks,
)
from multichannel.webhooks.telnyx import VOCABULARY

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
SIGNATURE = "telnyx-signature-ed25519"
TIMESTAMP = "telnyx-timestamp"
FAX_NUMBER = "+13125550142"

TELNYX_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_KEY = ed25519.Ed25519PrivateKey.generate()
# What the Telnyx portal shows: the 32 raw public key bytes in base64.
SHOWN_KEY = base64.b64encode(
    TELNYX_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()


def sign(
    body: bytes, at: datetime = NOW, key: ed25519.Ed25519PrivateKey = TELNYX_KEY
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = key.sign(timestamp.encode() + b"|" + body)
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: timestamp}


def webhook(event_type: str, **payload: Any) -> bytes:
    return json.dumps(
        {
            "data": {
                "event_type": event_type,
                "id": "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
                "occurred_at": "2026-03-02T13:59:30.123456Z",
                "record_type": "event",
                "payload": {
                    "connection_id": "234423",
                    "direction": "outbound",
                    "fax_id": "f8338808-3dc6-4f2b-942a-5d1f39255784",
                    "from": "+13125550100",
                    "to": FAX_NUMBER,
                    "status": event_type.removeprefix("fax."),
                    **payload,
                },
            },
            "meta": {"attempt": 1, "delivered_to": "https://hooks.example.com/telnyx/fax"},
        }
    ).encode()


def hooks(clock: ManualClock | None = None, public_key: str = SHOWN_KEY) -> TelnyxWebhooks:
    return TelnyxWebhooks(public_key=public_key, clock=clock or ManualClock(NOW))


def read(body: bytes) -> list[DeliveryEvent]:
    return hooks().fax_events(body=body, headers=sign(body))


@pytest.mark.parametrize(("event_type", "meaning"), sorted(VOCABULARY.items()))
def test_every_event_type_in_the_vocabulary_gives_its_kind(
    event_type: str, meaning: tuple[EventKind | None, str]
) -> None:
    kind, words = meaning
    events = read(webhook(event_type))
    if kind is None:
        assert events == []
    else:
        [found] = events
        assert found.kind is kind
        assert found.detail == words


def test_a_delivered_fax_is_matched_by_its_fax_id() -> None:
    [found] = read(webhook("fax.delivered", page_count=2))
    assert found.kind is EventKind.DELIVERED
    assert found.provider_id == "f8338808-3dc6-4f2b-942a-5d1f39255784"
    assert (found.channel, found.address) == ("fax", FAX_NUMBER)
    assert found.at == datetime(2026, 3, 2, 13, 59, 30, 123456, tzinfo=UTC)


def test_a_failed_fax_gives_the_reason() -> None:
    [found] = read(webhook("fax.failed", failure_reason="destination_unreachable"))
    assert found.kind is EventKind.FAILED
    assert found.detail == "the fax could not be sent: destination_unreachable"


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("2026-03-02T13:59:30", datetime(2026, 3, 2, 13, 59, 30, tzinfo=UTC)),
        ("2026-03-02T08:59:30-05:00", datetime(2026, 3, 2, 13, 59, 30, tzinfo=UTC)),
        ("not a time", None),
        (None, None),
    ],
)
def test_the_event_time_is_read_as_utc_when_it_has_no_offset(
    occurred_at: str | None, expected: datetime | None
) -> None:
    document = json.loads(webhook("fax.delivered"))
    document["data"]["occurred_at"] = occurred_at
    [found] = read(json.dumps(document).encode())
    assert found.at == expected


def test_events_of_other_products_give_nothing() -> None:
    assert read(webhook("call.hangup")) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "not JSON"),
        (b"[]", "data.event_type"),
        (b'{"data": {"payload": {}}}', "data.event_type"),
        (b'{"data": {"event_type": "fax.failed", "payload": {}}}', "fax_id"),
        (b'{"data": {"event_type": "fax.delivered", "payload": "x"}}', "fax_id"),
    ],
)
def test_a_signed_body_that_is_not_a_fax_webhook_is_malformed(body: bytes, words: str) -> None:
    with pytest.raises(MalformedWebhook, match=words):
        read(body)


def test_a_pem_public_key_also_works() -> None:
    pem = (
        TELNYX_KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    body = webhook("fax.delivered")
    assert len(hooks(public_key=pem).fax_events(body=body, headers=sign(body))) == 1


@pytest.mark.parametrize("missing", [SIGNATURE, TIMESTAMP])
def test_a_missing_header_is_refused(missing: str) -> None:
    body = webhook("fax.failed")
    headers = sign(body)
    del headers[missing]
    with pytest.raises(MissingSignature, match=missing):
        hooks().fax_events(body=body, headers=headers)


def test_header_names_are_read_in_any_letter_case() -> None:
    body = webhook("fax.delivered")
    headers = {name.title(): value for name, value in sign(body).items()}
    assert len(hooks().fax_events(body=body, headers=headers)) == 1


def test_a_tampered_body_is_refused() -> None:
    body = webhook("fax.delivered")
    headers = sign(body)
    with pytest.raises(InvalidSignature):
        hooks().fax_events(body=body.replace(b"fax.delivered", b"fax.failed"), headers=headers)


def test_a_signature_from_another_key_is_refused() -> None:
    body = webhook("fax.failed")
    with pytest.raises(InvalidSignature):
        hooks().fax_events(body=body, headers=sign(body, key=OTHER_KEY))


def test_a_signature_over_the_body_without_the_timestamp_is_refused() -> None:
    body = webhook("fax.failed")
    headers = sign(body)
    headers[SIGNATURE] = base64.b64encode(TELNYX_KEY.sign(body)).decode()
    with pytest.raises(InvalidSignature):
        hooks().fax_events(body=body, headers=headers)


def test_a_replayed_old_webhook_is_stale() -> None:
    body = webhook("fax.failed")
    headers = sign(body, at=NOW)
    clock = ManualClock(NOW)
    clock.advance(timedelta(minutes=10))
    with pytest.raises(StaleSignature, match="replay"):
        hooks(clock).fax_events(body=body, headers=headers)


def test_a_webhook_signed_too_far_in_the_future_is_stale() -> None:
    body = webhook("fax.failed")
    with pytest.raises(StaleSignature, match="future"):
        hooks().fax_events(body=body, headers=sign(body, at=NOW + timedelta(hours=1)))


def test_the_tolerance_is_configurable() -> None:
    body = webhook("fax.delivered")
    strict = TelnyxWebhooks(
        public_key=SHOWN_KEY, tolerance=timedelta(seconds=30), clock=ManualClock(NOW)
    )
    with pytest.raises(StaleSignature):
        strict.fax_events(body=body, headers=sign(body, at=NOW - timedelta(seconds=31)))


@pytest.mark.parametrize(
    ("public_key", "words"),
    [
        ("", "empty"),
        ("***", "neither base64 nor PEM"),
        (base64.b64encode(b"too short").decode(), "32 bytes"),
    ],
)
def test_an_unreadable_key_is_a_configuration_error(public_key: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        TelnyxWebhooks(public_key=public_key)


def test_a_key_that_is_not_ed25519_is_a_configuration_error() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = p256.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ConfigurationError, match="not an Ed25519 key"):
        TelnyxWebhooks(public_key=pem)


def test_without_cryptography_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric.ed25519", None)
    with pytest.raises(ConfigurationError, match=r"multichannel\[webhooks\]"):
        TelnyxWebhooks(public_key=SHOWN_KEY)


def test_the_repr_shows_the_tolerance_and_never_the_key() -> None:
    shown = repr(hooks())
    assert shown == "TelnyxWebhooks(tolerance=datetime.timedelta(seconds=300))"
    assert SHOWN_KEY not in shown
