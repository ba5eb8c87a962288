"""SendGrid Event Webhook: batches signed with a generated ECDSA P-256 key, read into events."""

from __future__ import annotations

import base64
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from multichannel import ConfigurationError, DeliveryEvent, EventKind, ManualClock
from multichannel.webhooks import (
    InvalidSignature,
    MalformedWebhook,
    MissingSignature,
    SendGridWebhooks,
    StaleSignature,
)
from multichannel.webhooks.sendgrid import VOCABULARY

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
ALICE = "alice@example.com"


def _public(key: ec.EllipticCurvePrivateKey, encoding: serialization.Encoding) -> bytes:
    return key.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)


SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
# What SendGrid shows as the verification key: base64 of the DER SubjectPublicKeyInfo.
SHOWN_KEY = base64.b64encode(_public(SENDGRID_KEY, serialization.Encoding.DER)).decode()
PEM_KEY = _public(SENDGRID_KEY, serialization.Encoding.PEM).decode()


def sign(
    body: bytes, at: datetime = NOW, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY
) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: timestamp}


def hooks(clock: ManualClock | None = None, public_key: str = SHOWN_KEY) -> SendGridWebhooks:
    return SendGridWebhooks(public_key=public_key, clock=clock or ManualClock(NOW))


def batch(*items: dict[str, Any]) -> bytes:
    return json.dumps(list(items)).encode()


def event(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": ALICE,
        "timestamp": int(NOW.timestamp()) - 60,
        "event": name,
        "sg_event_id": f"evt-{name}",
        "sg_message_id": "Xmsg0001.filterdrecv-5645d9c87f-abcde.1.0",
        **fields,
    }


def read(body: bytes) -> list[DeliveryEvent]:
    return hooks().events(body=body, headers=sign(body))


@pytest.mark.parametrize(("name", "meaning"), sorted(VOCABULARY.items()))
def test_every_event_in_the_vocabulary_gives_its_kind(
    name: str, meaning: tuple[EventKind | None, str]
) -> None:
    kind, words = meaning
    events = read(batch(event(name)))
    if kind is None:
        assert events == []
    else:
        [found] = events
        assert found.kind is kind
        assert found.detail is not None
        assert words in found.detail


def test_an_event_is_matched_by_the_dispatch_id_in_custom_args() -> None:
    [found] = read(batch(event("delivered", dispatch_id="d-42")))
    assert found.dispatch_id == "d-42"
    assert (found.channel, found.address) == ("email", ALICE)


def test_without_a_dispatch_id_the_message_id_before_the_first_dot_is_the_provider_id() -> None:
    [found] = read(batch(event("delivered")))
    assert found.dispatch_id is None
    assert found.provider_id == "Xmsg0001"


def test_the_event_time_is_the_sendgrid_timestamp_in_utc() -> None:
    [found] = read(batch(event("delivered", timestamp=1772459940)))
    assert found.at == datetime(2026, 3, 2, 13, 59, tzinfo=UTC)
    assert found.at is not None
    assert found.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("timestamp", ["1772459940", None, True, 10**20])
def test_a_timestamp_that_cannot_be_read_is_left_out(timestamp: Any) -> None:
    [found] = read(batch(event("delivered", timestamp=timestamp)))
    assert found.at is None


def test_a_bounce_is_a_failure_that_says_why() -> None:
    bounce = event(
        "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 The email account does not exist"
    )
    [found] = read(batch(bounce))
    assert found.kind is EventKind.FAILED
    assert found.detail == "bounced (bounce, 5.1.1): 550 5.1.1 The email account does not exist"


def test_a_blocked_bounce_without_a_status_is_still_described() -> None:
    [found] = read(batch(event("bounce", type="blocked")))
    assert found.detail == "bounced (blocked)"


def test_a_drop_quotes_sendgrid_s_reason() -> None:
    [found] = read(batch(event("dropped", reason="Bounced Address")))
    assert (found.kind, found.detail) == (EventKind.FAILED, "dropped by SendGrid: Bounced Address")


def test_a_deferral_gives_no_event_because_sendgrid_keeps_trying() -> None:
    assert read(batch(event("deferred", response="400 try again later", attempt="1"))) == []


@pytest.mark.parametrize("name", ["spamreport", "unsubscribe", "group_unsubscribe"])
def test_spam_reports_and_unsubscribes_opt_the_address_out(name: str) -> None:
    [found] = read(batch(event(name)))
    assert (found.kind, found.channel, found.address) == (EventKind.OPTED_OUT, "email", ALICE)


def test_the_address_is_read_as_a_contact_point_stores_it() -> None:
    [found] = read(batch(event("unsubscribe", email=" Alice@EXAMPLE.com ")))
    assert found.address == "Alice@example.com"


def test_an_address_that_is_not_an_email_is_kept_as_given() -> None:
    [found] = read(batch(event("unsubscribe", email="  no-at-sign  ")))
    assert found.address == "no-at-sign"


def test_a_batch_gives_its_events_in_order() -> None:
    body = batch(
        event("processed"),
        event("delivered", email="bob@example.com"),
        event("open"),
        event("click"),
        event("bounce", email="carol@example.com"),
    )
    found = read(body)
    assert [(item.kind, item.address) for item in found] == [
        (EventKind.DELIVERED, "bob@example.com"),
        (EventKind.DELIVERED, ALICE),
        (EventKind.DELIVERED, ALICE),
        (EventKind.FAILED, "carol@example.com"),
    ]


def test_items_that_are_not_events_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="multichannel.webhooks")
    body = batch(event("delivered"), {"event": "delivered"}, {"no": "event"})
    raw = json.loads(body)
    raw.append("not even an object")
    body = json.dumps(raw).encode()
    found = read(body)
    assert [item.kind for item in found] == [EventKind.DELIVERED]
    assert [record.getMessage() for record in caplog.records] == [
        "skipped item 1 of a SendGrid batch: it is not an event",
        "skipped item 2 of a SendGrid batch: it is not an event",
        "skipped item 3 of a SendGrid batch: it is not an event",
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"not json", "not JSON"), (b'{"event": "delivered"}', "array"), (b"\xff\xfe", "not JSON")],
)
def test_a_signed_body_that_is_not_a_batch_is_malformed(body: bytes, words: str) -> None:
    with pytest.raises(MalformedWebhook, match=words):
        read(body)


def test_a_pem_public_key_works_like_the_one_sendgrid_shows() -> None:
    body = batch(event("delivered"))
    assert len(hooks(public_key=PEM_KEY).events(body=body, headers=sign(body))) == 1


def test_a_key_pasted_over_several_lines_is_read() -> None:
    wrapped = "\n".join(SHOWN_KEY[i : i + 40] for i in range(0, len(SHOWN_KEY), 40))
    body = batch(event("delivered"))
    assert len(hooks(public_key=f"  {wrapped}\n").events(body=body, headers=sign(body))) == 1


@pytest.mark.parametrize("missing", [SIGNATURE, TIMESTAMP])
def test_a_missing_header_is_refused(missing: str) -> None:
    body = batch(event("delivered"))
    headers = sign(body)
    del headers[missing]
    with pytest.raises(MissingSignature, match=missing) as caught:
        hooks().events(body=body, headers=headers)
    assert caught.value.reason == "missing"


def test_a_tampered_body_is_refused() -> None:
    body = batch(event("delivered"))
    headers = sign(body)
    with pytest.raises(InvalidSignature):
        hooks().events(body=body.replace(b"delivered", b"bounce"), headers=headers)


def test_a_signature_from_another_key_is_refused() -> None:
    body = batch(event("delivered"))
    with pytest.raises(InvalidSignature):
        hooks().events(body=body, headers=sign(body, key=OTHER_KEY))


def test_a_signature_moved_to_another_timestamp_is_refused() -> None:
    body = batch(event("delivered"))
    headers = sign(body)
    headers[TIMESTAMP] = str(int(headers[TIMESTAMP]) + 1)
    with pytest.raises(InvalidSignature):
        hooks().events(body=body, headers=headers)


@pytest.mark.parametrize(
    ("header", "value", "words"),
    [(SIGNATURE, "%%% not base64 %%%", "base64"), (TIMESTAMP, "yesterday", "Unix time")],
)
def test_unreadable_headers_are_invalid(header: str, value: str, words: str) -> None:
    body = batch(event("delivered"))
    headers = {**sign(body), header: value}
    with pytest.raises(InvalidSignature, match=words):
        hooks().events(body=body, headers=headers)


def test_a_replayed_old_callback_is_stale() -> None:
    body = batch(event("bounce"))
    headers = sign(body, at=NOW)
    clock = ManualClock(NOW + timedelta(minutes=5, seconds=1))
    with pytest.raises(StaleSignature, match="replay") as caught:
        hooks(clock).events(body=body, headers=headers)
    assert caught.value.reason == "stale"


def test_a_callback_exactly_at_the_tolerance_is_accepted() -> None:
    body = batch(event("delivered"))
    clock = ManualClock(NOW + timedelta(minutes=5))
    assert len(hooks(clock).events(body=body, headers=sign(body, at=NOW))) == 1


def test_a_callback_signed_too_far_in_the_future_is_stale() -> None:
    body = batch(event("delivered"))
    headers = sign(body, at=NOW + timedelta(minutes=6))
    with pytest.raises(StaleSignature, match="future"):
        hooks().events(body=body, headers=headers)


def test_the_tolerance_is_configurable() -> None:
    body = batch(event("delivered"))
    headers = sign(body, at=NOW - timedelta(minutes=20))
    lenient = SendGridWebhooks(
        public_key=SHOWN_KEY, tolerance=timedelta(hours=1), clock=ManualClock(NOW)
    )
    assert len(lenient.events(body=body, headers=headers)) == 1


def _other_shown_keys() -> list[str]:
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return [
        base64.b64encode(_public(p384, der)).decode(),
        base64.b64encode(ed.public_bytes(der, spki)).decode(),
    ]


@pytest.mark.parametrize("public_key", _other_shown_keys(), ids=["p384", "ed25519"])
def test_a_key_that_is_not_p256_is_a_configuration_error(public_key: str) -> None:
    with pytest.raises(ConfigurationError, match="P-256"):
        SendGridWebhooks(public_key=public_key)


@pytest.mark.parametrize(
    ("public_key", "words"),
    [
        ("", "empty"),
        ("not base64 at all!", "neither base64 nor PEM"),
        (base64.b64encode(b"garbage").decode(), "cannot be read"),
        ("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----", "cannot be read"),
    ],
)
def test_an_unreadable_key_is_a_configuration_error(public_key: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        SendGridWebhooks(public_key=public_key)


@pytest.mark.parametrize("tolerance", [timedelta(0), timedelta(seconds=-1)])
def test_a_tolerance_that_is_not_positive_is_a_configuration_error(tolerance: timedelta) -> None:
    with pytest.raises(ConfigurationError, match="tolerance"):
        SendGridWebhooks(public_key=SHOWN_KEY, tolerance=tolerance)


def test_without_cryptography_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)
    with pytest.raises(ConfigurationError, match=r"multichannel\[webhooks\]"):
        SendGridWebhooks(public_key=SHOWN_KEY)


def test_errors_and_reprs_never_show_the_key_or_the_signature() -> None:
    body = batch(event("delivered"))
    headers = sign(body, key=OTHER_KEY)
    webhooks = hooks()
    with pytest.raises(InvalidSignature) as caught:
        webhooks.events(body=body, headers=headers)
    shown = f"{caught.value} {caught.value!r} {webhooks!r}"
    assert SHOWN_KEY not in shown
    assert headers[SIGNATURE] not in shown
    assert repr(webhooks) == "SendGridWebhooks(tolerance=datetime.timedelta(seconds=300))"
