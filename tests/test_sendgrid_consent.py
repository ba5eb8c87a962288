"""What SendGrid's events say about consent: drops for suppressed addresses, group unsubscribes.

SendGrid's vocabulary: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
"""

from __future__ import annotations

import base64
import json
import warnings
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.exceptions import StarletteDeprecationWarning

from multichannel import (
    Contact,
    ContactPoint,
    Dispatcher,
    EventKind,
    ManualClock,
    Message,
    Outbox,
    Outcome,
    Preferences,
)
from multichannel.webhooks import SendGridWebhooks, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

EMAIL = ContactPoint(channel="email", address="ann@example.com")
SMS = ContactPoint(channel="sms", address="+17345550100")
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
NOTICE = Message(body="Your appointment is tomorrow at 10:00.", subject="Appointment")
SUPPRESSED = ["Unsubscribed Address", "Bounced Address", "Spam Reporting Address"]


def ann() -> Contact:
    return Contact(
        id="ann",
        timezone="America/Detroit",
        points=[EMAIL, SMS],
        preferences=Preferences(channels=["email", "sms"]),
    )


@pytest.fixture
def dispatcher(clock: ManualClock, outbox: Outbox) -> Dispatcher:
    return Dispatcher(adapters=[outbox], clock=clock)


@pytest.fixture
def client(dispatcher: Dispatcher) -> TestClient:
    return TestClient(create_app(dispatcher, sendgrid_public_key=PUBLIC))


def signed(clock: ManualClock, body: bytes) -> dict[str, str]:
    timestamp = str(int(clock.now().timestamp()))
    signature = KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def post(client: TestClient, clock: ManualClock, *events: dict[str, Any]) -> int:
    body = json.dumps(list(events)).encode()
    status: int = client.post(
        "/sendgrid/events", content=body, headers=signed(clock, body)
    ).status_code
    return status


def drop(reason: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": EMAIL.address,
        "event": "dropped",
        "reason": reason,
        "status": "5.0.0",
        **fields,
    }


def channels_of_a_later_send(dispatcher: Dispatcher) -> list[str]:
    later = dispatcher.send(ann(), Message(body="Your bill is ready.", subject="Bill"))
    return [attempt.channel for attempt in later.attempts]


@pytest.mark.parametrize("reason", SUPPRESSED)
def test_a_drop_for_a_suppressed_address_opts_it_out_and_falls_back(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock, reason: str
) -> None:
    dispatch = dispatcher.send(ann(), NOTICE)
    [email] = outbox.to(EMAIL.address)

    status = post(client, clock, drop(reason, sg_message_id=f"{email.provider_id}.filter-1.0"))

    assert status == 200
    after = dispatcher.get(dispatch.id)
    assert [(a.channel, a.outcome) for a in after.attempts] == [
        ("email", Outcome.FAILED),
        ("sms", Outcome.ACCEPTED),
    ]
    assert dispatcher.store.opted_out([("email", EMAIL.address)])
    assert channels_of_a_later_send(dispatcher) == ["sms"]
    assert len(outbox.to(EMAIL.address)) == 1


def test_a_drop_for_an_unsubscribed_address_holds_even_when_no_dispatch_matches(
    client: TestClient, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    unmatched = drop("Unsubscribed Address", sg_message_id="sent-by-another-app.filter-1.0")

    assert post(client, clock, unmatched) == 200

    assert channels_of_a_later_send(dispatcher) == ["sms"]


@pytest.mark.parametrize("reason", ["Invalid", "Invalid SMTPAPI header", "Spam Content"])
def test_other_drops_fail_the_attempt_but_leave_the_address_usable(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock, reason: str
) -> None:
    dispatcher.send(ann(), NOTICE)
    [email] = outbox.to(EMAIL.address)

    assert post(client, clock, drop(reason, sg_message_id=f"{email.provider_id}.f.0")) == 200

    assert len(outbox.to(SMS.address)) == 1
    assert not dispatcher.store.opted_out([("email", EMAIL.address)])
    assert channels_of_a_later_send(dispatcher) == ["email"]


@pytest.mark.parametrize(
    ("reason", "opted_out"),
    [
        (" unsubscribed   ADDRESS ", True),
        ("Bounced Address", True),
        ("Invalid", False),
        (None, False),
    ],
)
def test_the_drop_reason_is_read_in_any_case_and_spacing(
    clock: ManualClock, reason: str | None, opted_out: bool
) -> None:
    item = drop(reason) if reason is not None else {"email": EMAIL.address, "event": "dropped"}
    body = json.dumps([item]).encode()
    hooks = SendGridWebhooks(public_key=PUBLIC, clock=clock)

    [event] = hooks.events(body=body, headers=signed(clock, body))

    assert (event.kind, event.point_opted_out) == (EventKind.FAILED, opted_out)
    assert (event.channel, event.address) == ("email", EMAIL.address)


def test_a_group_unsubscribe_opts_out_and_a_group_resubscribe_opts_back_in(
    client: TestClient, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    group = {"email": EMAIL.address, "asm_group_id": 42, "sg_message_id": "elsewhere.f.0"}

    assert post(client, clock, {**group, "event": "group_unsubscribe"}) == 200
    assert channels_of_a_later_send(dispatcher) == ["sms"]

    assert post(client, clock, {**group, "event": "group_resubscribe"}) == 200
    assert channels_of_a_later_send(dispatcher) == ["email"]
