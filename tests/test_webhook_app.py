"""The ASGI app end to end: signed callbacks in, fallback, opt-outs and idempotency out."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Mount
from twilio.request_validator import RequestValidator

from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    ManualClock,
    Message,
    Outbox,
    Outcome,
    Preferences,
    Status,
)
from multichannel.webhooks import create_app, record_events

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 and warns when its test client falls back on httpx;
    # either one drives the app the same way.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "twilio-auth-token-for-app-tests"
SMS = ContactPoint(channel="sms", address="+17345550100", label="mobile")
EMAIL = ContactPoint(channel="email", address="alice@example.com")
VOICE = ContactPoint(channel="voice", address="+17345550122", label="home")
FAX = ContactPoint(channel="fax", address="+17345550133", label="office")
NOTICE = Message(body="Your appointment is tomorrow at 10:00.", subject="Appointment")

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
TELNYX_KEY = ed25519.Ed25519PrivateKey.generate()
TELNYX_PUBLIC = base64.b64encode(
    TELNYX_KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()


def alice(*channels: str) -> Contact:
    by_channel = {"sms": SMS, "email": EMAIL, "voice": VOICE, "fax": FAX}
    return Contact(
        id="alice",
        timezone="America/Detroit",
        points=[by_channel[channel] for channel in channels],
        preferences=Preferences(channels=list(channels)),
    )


@pytest.fixture
def dispatcher(clock: ManualClock, outbox: Outbox) -> Dispatcher:
    return Dispatcher(adapters=[outbox], clock=clock)


@pytest.fixture
def client(dispatcher: Dispatcher) -> TestClient:
    app = create_app(
        dispatcher,
        twilio_auth_token=TOKEN,
        sendgrid_public_key=SENDGRID_PUBLIC,
        telnyx_public_key=TELNYX_PUBLIC,
    )
    return TestClient(app)


def post_twilio(
    client: TestClient,
    path: str,
    form: dict[str, str],
    *,
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    url = signed_url or f"http://testserver{path}"
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    return client.post(
        path,
        content=urlencode(form),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            **(headers or {}),
        },
    )


def post_sendgrid(client: TestClient, clock: ManualClock, events: list[dict[str, Any]]) -> Any:
    body = json.dumps(events).encode()
    timestamp = str(int(clock.now().timestamp()))
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return client.post(
        "/sendgrid/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )


def post_telnyx(client: TestClient, clock: ManualClock, document: dict[str, Any]) -> Any:
    body = json.dumps(document).encode()
    timestamp = str(int(clock.now().timestamp()))
    signature = TELNYX_KEY.sign(timestamp.encode() + b"|" + body)
    return client.post(
        "/telnyx/fax",
        content=body,
        headers={
            "Content-Type": "application/json",
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": timestamp,
        },
    )


def undelivered(provider_id: str) -> dict[str, str]:
    return {
        "MessageSid": provider_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": SMS.address,
        "From": "+17345550199",
    }


def snapshot(dispatcher: Dispatcher, dispatch: Dispatch) -> dict[str, Any]:
    return dispatcher.get(dispatch.id).model_dump()


def test_an_undelivered_sms_falls_back_to_email(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatch = dispatcher.send(alice("sms", "email"), NOTICE)
    [sms] = outbox.to(SMS.address)
    assert outbox.to(EMAIL.address) == []

    response = post_twilio(client, "/twilio/status", undelivered(sms.provider_id))

    assert response.status_code == 200
    [email] = outbox.to(EMAIL.address)
    assert email.context.dispatch_id == dispatch.id
    after = dispatcher.get(dispatch.id)
    assert [(a.channel, a.outcome) for a in after.attempts] == [
        ("sms", Outcome.FAILED),
        ("email", Outcome.ACCEPTED),
    ]
    assert after.attempts[0].error is not None
    assert "30003" in after.attempts[0].error


def test_the_same_callback_twice_changes_nothing_the_second_time(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatch = dispatcher.send(alice("sms", "email"), NOTICE)
    form = undelivered(outbox.sent[0].provider_id)
    assert post_twilio(client, "/twilio/status", form).status_code == 200
    state, sent = snapshot(dispatcher, dispatch), len(outbox.sent)

    assert post_twilio(client, "/twilio/status", form).status_code == 200

    assert snapshot(dispatcher, dispatch) == state
    assert len(outbox.sent) == sent == 2


def test_a_delivery_report_marks_the_attempt_delivered(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatch = dispatcher.send(alice("sms", "email"), NOTICE)
    form = {"MessageSid": outbox.sent[0].provider_id, "MessageStatus": "delivered"}
    for status_word in ("sent", "delivered"):
        response = post_twilio(client, "/twilio/status", {**form, "MessageStatus": status_word})
        assert response.status_code == 200
    after = dispatcher.get(dispatch.id)
    assert (after.status, after.attempts[0].outcome) == (Status.DELIVERED, Outcome.DELIVERED)


def test_an_inbound_stop_cancels_the_dispatch_and_later_ones_skip_the_number(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    first = dispatcher.send(alice("sms", "email"), NOTICE)

    response = post_twilio(
        client, "/twilio/inbound", {"MessageSid": "SM77", "From": SMS.address, "Body": " Stop "}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert dispatcher.get(first.id).status is Status.CANCELLED
    later = dispatcher.send(alice("sms", "email"), Message(body="Reminder: tomorrow at 10:00."))
    assert [attempt.channel for attempt in later.attempts] == ["email"]
    assert len(outbox.to(SMS.address)) == 1


def test_start_lifts_the_opt_out_for_later_dispatches(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatcher.send(alice("sms", "email"), NOTICE)
    stop = {"MessageSid": "SM77", "From": SMS.address, "Body": "STOP"}
    assert post_twilio(client, "/twilio/inbound", stop).status_code == 200
    assert post_twilio(client, "/twilio/inbound", {**stop, "Body": "START"}).status_code == 200

    later = dispatcher.send(alice("sms", "email"), Message(body="Welcome back."))

    assert [attempt.channel for attempt in later.attempts] == ["sms"]


def test_a_reply_answers_a_message_that_expects_one(
    client: TestClient, dispatcher: Dispatcher
) -> None:
    question = Message(body="Can you come tomorrow at 10? Reply YES or NO.", expects_response=True)
    dispatch = dispatcher.send(alice("sms", "email"), question)
    assert dispatch.status is Status.AWAITING_RESPONSE

    reply = {"MessageSid": "SM78", "From": SMS.address, "Body": "No, Thursday?"}
    assert post_twilio(client, "/twilio/inbound", reply).status_code == 200

    after = dispatcher.get(dispatch.id)
    assert after.status is Status.RESPONDED
    assert any("No, Thursday?" in line for line in after.timeline())


def test_a_21610_status_falls_back_and_keeps_the_number_opted_out(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatch = dispatcher.send(alice("sms", "email"), NOTICE)
    form = {
        "MessageSid": outbox.sent[0].provider_id,
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "To": SMS.address,
    }

    assert post_twilio(client, "/twilio/status", form).status_code == 200

    after = dispatcher.get(dispatch.id)
    assert [(a.channel, a.outcome) for a in after.attempts] == [
        ("sms", Outcome.FAILED),
        ("email", Outcome.ACCEPTED),
    ]
    later = dispatcher.send(alice("sms", "email"), Message(body="Reminder: tomorrow at 10:00."))
    assert [attempt.channel for attempt in later.attempts] == ["email"]


def test_a_yes_reply_answers_the_question_as_well_as_opting_back_in(
    client: TestClient, dispatcher: Dispatcher, clock: ManualClock, outbox: Outbox
) -> None:
    question = Message(
        body="Can you come tomorrow at 10? Reply YES to confirm.", expects_response=True
    )
    dispatch = dispatcher.send(alice("sms", "email"), question)

    reply = {"MessageSid": "SM79", "From": SMS.address, "Body": "Yes"}
    assert post_twilio(client, "/twilio/inbound", reply).status_code == 200
    clock.advance(timedelta(days=2))
    dispatcher.run_due()

    after = dispatcher.get(dispatch.id)
    assert after.status is Status.RESPONDED
    assert outbox.to(EMAIL.address) == []


def test_a_voicemail_left_after_the_beep_is_delivered(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatch = dispatcher.send(alice("voice", "email"), NOTICE)
    form = {
        "CallSid": outbox.sent[0].provider_id,
        "CallStatus": "completed",
        "AnsweredBy": "machine_end_beep",
        "To": VOICE.address,
    }
    assert post_twilio(client, "/twilio/calls", form).status_code == 200
    after = dispatcher.get(dispatch.id)
    assert after.attempts[0].outcome is Outcome.DELIVERED
    assert outbox.to(EMAIL.address) == []


def test_a_busy_line_falls_back_from_the_voicemail_drop(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatcher.send(alice("voice", "email"), NOTICE)
    form = {"CallSid": outbox.sent[0].provider_id, "CallStatus": "busy", "To": VOICE.address}
    assert post_twilio(client, "/twilio/calls", form).status_code == 200
    assert len(outbox.to(EMAIL.address)) == 1


def test_a_sendgrid_bounce_falls_back(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock
) -> None:
    dispatch = dispatcher.send(alice("email", "sms"), NOTICE)
    [email] = outbox.to(EMAIL.address)
    bounce = {
        "email": EMAIL.address,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 no such mailbox",
        "timestamp": int(clock.now().timestamp()),
        "dispatch_id": dispatch.id,
        "sg_message_id": f"{email.provider_id}.filterdrecv-1.0",
    }

    assert post_sendgrid(client, clock, [bounce]).status_code == 200

    assert len(outbox.to(SMS.address)) == 1
    assert dispatcher.get(dispatch.id).attempts[0].outcome is Outcome.FAILED


def test_a_sendgrid_bounce_is_matched_through_the_message_id_alone(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock
) -> None:
    dispatcher.send(alice("email", "sms"), NOTICE)
    bounce = {
        "email": EMAIL.address,
        "event": "dropped",
        "reason": "Invalid",
        "sg_message_id": f"{outbox.sent[0].provider_id}.filterdrecv-1.0",
    }
    assert post_sendgrid(client, clock, [bounce]).status_code == 200
    assert len(outbox.to(SMS.address)) == 1


def test_a_sendgrid_unsubscribe_opts_the_email_out(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock
) -> None:
    dispatch = dispatcher.send(alice("email", "sms"), NOTICE)
    unsubscribe = {"email": EMAIL.address, "event": "unsubscribe", "dispatch_id": dispatch.id}

    assert post_sendgrid(client, clock, [unsubscribe]).status_code == 200

    assert dispatcher.get(dispatch.id).status is Status.CANCELLED
    later = dispatcher.send(alice("email", "sms"), Message(body="Your bill is ready."))
    assert [attempt.channel for attempt in later.attempts] == ["sms"]


def test_an_opt_out_holds_even_when_no_dispatch_matches(
    client: TestClient, dispatcher: Dispatcher, clock: ManualClock
) -> None:
    spam = {"email": EMAIL.address, "event": "spamreport", "sg_message_id": "unknown.1.0"}
    assert post_sendgrid(client, clock, [spam]).status_code == 200

    later = dispatcher.send(alice("email", "sms"), NOTICE)

    assert [attempt.channel for attempt in later.attempts] == ["sms"]


def test_a_telnyx_fax_failure_falls_back(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock
) -> None:
    dispatch = dispatcher.send(alice("fax", "email"), NOTICE)
    failed = {
        "data": {
            "event_type": "fax.failed",
            "id": "e0e4b4a4-0000-4000-8000-000000000001",
            "occurred_at": "2026-03-02T14:00:00Z",
            "record_type": "event",
            "payload": {
                "fax_id": outbox.sent[0].provider_id,
                "to": FAX.address,
                "status": "failed",
                "failure_reason": "receiver_call_dropped",
            },
        }
    }

    assert post_telnyx(client, clock, failed).status_code == 200

    assert len(outbox.to(EMAIL.address)) == 1
    assert "receiver_call_dropped" in (dispatcher.get(dispatch.id).attempts[0].error or "")


def test_a_bad_signature_is_refused_and_changes_nothing(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox
) -> None:
    dispatch = dispatcher.send(alice("sms", "email"), NOTICE)
    state = snapshot(dispatcher, dispatch)
    form = undelivered(outbox.sent[0].provider_id)
    response = client.post(
        "/twilio/status", data=form, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    )
    assert response.status_code == 403
    assert response.text == "signature invalid\n"
    missing = client.post("/twilio/status", data=form)
    assert (missing.status_code, missing.text) == (403, "signature missing\n")
    assert snapshot(dispatcher, dispatch) == state
    assert len(outbox.sent) == 1


def test_a_stale_signature_is_refused_by_the_dispatcher_s_clock(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, clock: ManualClock
) -> None:
    dispatcher.send(alice("fax", "email"), NOTICE)
    old = ManualClock(clock.now() - timedelta(minutes=6))
    document = {
        "data": {
            "event_type": "fax.failed",
            "payload": {"fax_id": outbox.sent[0].provider_id, "failure_reason": "user_busy"},
        }
    }
    response = post_telnyx(client, old, document)
    assert (response.status_code, response.text) == (403, "signature stale\n")
    assert outbox.to(EMAIL.address) == []


def test_a_malformed_body_is_answered_400(client: TestClient, clock: ManualClock) -> None:
    response = post_sendgrid(client, clock, [])
    assert response.status_code == 200
    body = b'{"not": "a batch"}'
    timestamp = str(int(clock.now().timestamp()))
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    response = client.post(
        "/sendgrid/events",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )
    assert response.status_code == 400
    assert response.text == "the body is not a JSON array of events\n"
    twilio = post_twilio(client, "/twilio/status", {"MessageStatus": "delivered"})
    assert twilio.status_code == 400


def test_a_provider_without_a_secret_has_no_routes(dispatcher: Dispatcher) -> None:
    client = TestClient(create_app(dispatcher, telnyx_public_key=TELNYX_PUBLIC))
    for path in ("/twilio/status", "/twilio/inbound", "/twilio/calls", "/sendgrid/events"):
        assert client.post(path, content=b"{}").status_code == 404
    assert client.post("/telnyx/fax", content=b"{}").status_code == 403


def test_only_post_is_answered(client: TestClient) -> None:
    assert client.get("/twilio/status").status_code == 405


def test_an_event_for_no_dispatch_is_logged_and_answered_200(
    client: TestClient, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="multichannel.webhooks")
    response = post_twilio(client, "/twilio/status", undelivered("SM-from-another-app"))
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "multichannel.webhooks"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "a failed event on sms +1734***0100 matches no dispatch "
        "(provider id SM-from-another-app, dispatch id None); ignored"
    )
    assert list(dispatcher.store.dispatches()) == []


def test_secrets_and_signatures_never_reach_the_logs(
    client: TestClient, dispatcher: Dispatcher, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dispatcher.send(alice("sms", "email"), NOTICE)
    form = undelivered(outbox.sent[0].provider_id)
    good = RequestValidator(TOKEN).compute_signature("http://testserver/twilio/status", form)
    client.post("/twilio/status", data=form, headers={"X-Twilio-Signature": good[::-1]})
    post_twilio(client, "/twilio/status", form)
    assert caplog.records
    for secret in (TOKEN, good, good[::-1], SENDGRID_PUBLIC, TELNYX_PUBLIC):
        assert secret not in caplog.text


def test_mounted_under_a_prefix_the_twilio_url_includes_it(
    dispatcher: Dispatcher, outbox: Outbox
) -> None:
    app = Starlette(routes=[Mount("/hooks", app=create_app(dispatcher, twilio_auth_token=TOKEN))])
    client = TestClient(app)
    dispatcher.send(alice("sms", "email"), NOTICE)
    form = undelivered(outbox.sent[0].provider_id)

    unprefixed = post_twilio(
        client, "/hooks/twilio/status", form, signed_url="http://testserver/twilio/status"
    )
    assert unprefixed.status_code == 403
    assert post_twilio(client, "/hooks/twilio/status", form).status_code == 200
    assert len(outbox.to(EMAIL.address)) == 1


def test_behind_a_proxy_the_public_url_is_what_twilio_signed(
    dispatcher: Dispatcher, outbox: Outbox
) -> None:
    app = create_app(
        dispatcher, twilio_auth_token=TOKEN, public_url="https://hooks.example.com/mc/"
    )
    client = TestClient(app)
    dispatcher.send(alice("sms", "email"), NOTICE)
    form = undelivered(outbox.sent[0].provider_id)
    public = "https://hooks.example.com/mc/twilio/status?tenant=7"

    response = post_twilio(client, "/twilio/status?tenant=7", form, signed_url=public)

    assert response.status_code == 200
    assert len(outbox.to(EMAIL.address)) == 1


def test_a_mounted_app_behind_a_proxy_appends_only_its_own_route(dispatcher: Dispatcher) -> None:
    inner = create_app(dispatcher, twilio_auth_token=TOKEN, public_url="https://example.com/x")
    client = TestClient(Starlette(routes=[Mount("/hooks", app=inner)]))
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}
    signed = "https://example.com/x/twilio/status"
    assert post_twilio(client, "/hooks/twilio/status", form, signed_url=signed).status_code == 200


@pytest.mark.parametrize(("trust", "expected"), [(True, 200), (False, 403)])
def test_forwarded_headers_are_read_only_when_trusted(
    dispatcher: Dispatcher, trust: bool, expected: int
) -> None:
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN, trust_forwarded=trust))
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}
    response = post_twilio(
        client,
        "/twilio/status",
        form,
        signed_url="https://hooks.example.org/twilio/status",
        headers={"X-Forwarded-Proto": "HTTPS, http", "X-Forwarded-Host": "hooks.example.org"},
    )
    assert response.status_code == expected


@pytest.mark.parametrize(
    ("forwarded", "signed_url"),
    [
        ({}, "http://testserver/twilio/status"),
        ({"X-Forwarded-Proto": "https"}, "https://testserver/twilio/status"),
        ({"X-Forwarded-Proto": "gopher"}, "http://testserver/twilio/status"),
        ({"X-Forwarded-Host": "a.example, b.example"}, "http://a.example/twilio/status"),
    ],
)
def test_trusted_forwarded_headers_replace_only_what_they_name(
    dispatcher: Dispatcher, forwarded: dict[str, str], signed_url: str
) -> None:
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN, trust_forwarded=True))
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}
    response = post_twilio(client, "/twilio/status", form, signed_url=signed_url, headers=forwarded)
    assert response.status_code == 200


def test_a_forwarded_host_with_an_impossible_port_is_refused_not_a_crash(
    dispatcher: Dispatcher,
) -> None:
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN, trust_forwarded=True))
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}
    response = post_twilio(
        client, "/twilio/status", form, headers={"X-Forwarded-Host": "example.org:99999"}
    )
    assert response.status_code == 403


def test_record_events_serves_any_framework(dispatcher: Dispatcher, outbox: Outbox) -> None:
    dispatch = dispatcher.send(alice("sms", "email"), NOTICE)
    events = [
        DeliveryEvent(kind=EventKind.FAILED, provider_id=outbox.sent[0].provider_id),
        DeliveryEvent(kind=EventKind.OPTED_OUT, channel="email", address="bob@example.com"),
    ]

    matched = record_events(dispatcher, events)

    assert [found.id for found in matched] == [dispatch.id]
    assert len(outbox.to(EMAIL.address)) == 1
    assert dispatcher.store.opted_out([("email", "bob@example.com")])


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({}, "at least one"),
        ({"twilio_auth_token": TOKEN, "public_url": "hooks.example.com"}, "public_url"),
        ({"twilio_auth_token": TOKEN, "public_url": "https://x.example/?a=1"}, "public_url"),
        ({"sendgrid_public_key": "***"}, "SendGrid public key"),
        ({"telnyx_public_key": TELNYX_PUBLIC, "tolerance": timedelta(0)}, "tolerance"),
        ({"twilio_auth_token": ""}, "empty"),
    ],
)
def test_bad_settings_are_configuration_errors(
    dispatcher: Dispatcher, settings: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigurationError, match=words):
        create_app(dispatcher, **settings)


def test_without_starlette_create_app_says_what_to_install(
    dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "starlette.applications", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'multichannel\[webhooks\]'"):
        create_app(dispatcher, twilio_auth_token=TOKEN)


def test_the_package_imports_without_starlette_cryptography_or_twilio() -> None:
    script = (
        "import sys\n"
        "for name in ('starlette', 'cryptography', 'twilio'):\n"
        "    sys.modules[name] = None\n"
        "import multichannel.webhooks as webhooks\n"
        "print(sorted(webhooks.__all__) == webhooks.__all__, len(webhooks.__all__))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["True", "11"]
