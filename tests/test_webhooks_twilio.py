"""Twilio callbacks: signed with the twilio SDK's own RequestValidator, read into events."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from multichannel import ConfigurationError, DeliveryEvent, EventKind
from multichannel.webhooks import (
    InvalidSignature,
    MalformedWebhook,
    MissingSignature,
    SignatureError,
    TwilioWebhooks,
)
from multichannel.webhooks.twilio import VOCABULARY

TOKEN = "twilio-auth-token-for-tests-0123"
STATUS_URL = "https://hooks.example.com/twilio/status?tenant=7"
INBOUND_URL = "https://hooks.example.com/twilio/inbound"
CALLS_URL = "https://hooks.example.com/twilio/calls"
ALICE = "+17345550100"
OUR_NUMBER = "+17345550199"


def signed(form: dict[str, str], url: str, token: str = TOKEN) -> tuple[bytes, dict[str, str]]:
    signature = RequestValidator(token).compute_signature(url, form)
    return urlencode(form).encode(), {"X-Twilio-Signature": signature}


def status(fields: dict[str, str]) -> list[DeliveryEvent]:
    form = {"MessageSid": "SM0001", "To": ALICE, "From": OUR_NUMBER, **fields}
    body, headers = signed(form, STATUS_URL)
    return TwilioWebhooks(auth_token=TOKEN).message_status(
        url=STATUS_URL, body=body, headers=headers
    )


def inbound(fields: dict[str, str]) -> list[DeliveryEvent]:
    form = {"MessageSid": "SM9999", "From": ALICE, "To": OUR_NUMBER, **fields}
    body, headers = signed(form, INBOUND_URL)
    return TwilioWebhooks(auth_token=TOKEN).inbound_message(
        url=INBOUND_URL, body=body, headers=headers
    )


def call(fields: dict[str, str]) -> list[DeliveryEvent]:
    form = {"CallSid": "CA0001", "To": ALICE, "From": OUR_NUMBER, **fields}
    body, headers = signed(form, CALLS_URL)
    return TwilioWebhooks(auth_token=TOKEN).call_status(url=CALLS_URL, body=body, headers=headers)


def callback_for(field: str, value: str) -> list[DeliveryEvent]:
    """The callback in which Twilio says ``value`` in ``field``."""
    if field == "MessageStatus":
        return status({"MessageStatus": value})
    if field == "ErrorCode":
        return status({"MessageStatus": "undelivered", "ErrorCode": value})
    if field == "OptOutType":
        return inbound({"Body": "whatever they wrote", "OptOutType": value})
    if field == "Body":
        return inbound({"Body": f"  {value.lower()}\n"})
    if field == "CallStatus":
        return call({"CallStatus": value})
    assert field == "AnsweredBy"
    return call({"CallStatus": "completed", "AnsweredBy": value})


@pytest.mark.parametrize(("word", "meaning"), sorted(VOCABULARY.items()), ids=str)
def test_every_word_in_the_vocabulary_gives_its_event(
    word: tuple[str, str], meaning: tuple[EventKind | None, str]
) -> None:
    kind, words = meaning
    events = callback_for(*word)
    if kind is None:
        assert events == []
    else:
        # Opting back in is also an answer, so it comes with a "responded" event.
        answered = [EventKind.RESPONDED] if kind is EventKind.OPTED_IN else []
        assert [event.kind for event in events] == [kind, *answered]
        assert events[0].detail is not None
        assert words in events[0].detail


def test_an_undelivered_message_names_the_error_code_and_its_meaning() -> None:
    [event] = status({"MessageStatus": "undelivered", "ErrorCode": "30003"})
    assert event.kind is EventKind.FAILED
    assert event.provider_id == "SM0001"
    assert (event.channel, event.address) == ("sms", ALICE)
    assert event.detail is not None
    assert "30003" in event.detail
    assert "unreachable" in event.detail


@pytest.mark.parametrize(
    ("code", "words"),
    [("30005", "unknown"), ("30006", "landline"), ("30007", "filtered"), ("30008", "unknown")],
)
def test_carrier_errors_are_failures_in_words(code: str, words: str) -> None:
    [event] = status({"MessageStatus": "failed", "ErrorCode": code})
    assert event.kind is EventKind.FAILED
    assert event.detail is not None
    assert code in event.detail
    assert words in event.detail


def test_an_error_code_missing_from_the_table_is_still_quoted() -> None:
    [event] = status({"MessageStatus": "failed", "ErrorCode": "39999"})
    assert event.kind is EventKind.FAILED
    assert event.detail == "failed, Twilio error 39999: Twilio could not send it"


def test_a_failure_without_an_error_code_says_what_happened() -> None:
    [event] = status({"MessageStatus": "undelivered", "ErrorCode": ""})
    assert event.detail == "undelivered: the carrier could not deliver it"


def test_error_21610_is_a_failure_that_marks_the_number_opted_out() -> None:
    # As when the send itself is refused with 21610: the number is opted out
    # and the dispatch falls back, rather than being cancelled outright.
    [event] = status({"MessageStatus": "failed", "ErrorCode": "21610"})
    assert event.kind is EventKind.FAILED
    assert event.point_opted_out
    assert (event.channel, event.address, event.provider_id) == ("sms", ALICE, "SM0001")


@pytest.mark.parametrize("status_word", ["queued", "sending", "sent", "accepted", "scheduled"])
def test_a_message_on_its_way_gives_no_event(status_word: str) -> None:
    assert status({"MessageStatus": status_word}) == []


def test_a_status_twilio_may_add_later_gives_no_event() -> None:
    assert status({"MessageStatus": "teleported"}) == []


def test_a_read_receipt_counts_as_delivered() -> None:
    [event] = status({"MessageStatus": "read"})
    assert event.kind is EventKind.DELIVERED


def test_the_old_sms_field_names_are_understood() -> None:
    form = {"SmsSid": "SM0002", "SmsStatus": "delivered", "To": ALICE}
    body, headers = signed(form, STATUS_URL)
    [event] = TwilioWebhooks(auth_token=TOKEN).message_status(
        url=STATUS_URL, body=body, headers=headers
    )
    assert (event.kind, event.provider_id) == (EventKind.DELIVERED, "SM0002")


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "  Stop  ",
        "StopAll",
        "unsubscribe",
        "CANCEL",
        "end",
        "Quit\n",
        "REVOKE",
        "optout",
        "opt out",
        "Opt-Out",
        "ARRET",
        "Arrêt",
        "Stop.",
        "stop!",
        " STOP ",
        "stop!!",
    ],
)
def test_an_opt_out_keyword_as_the_whole_reply_opts_the_number_out(body: str) -> None:
    [event] = inbound({"Body": body})
    assert event.kind is EventKind.OPTED_OUT
    assert (event.channel, event.address) == ("sms", ALICE)
    assert event.provider_id is None


@pytest.mark.parametrize("body", ["START", "unstop", " yes ", "Yes!", "start."])
def test_an_opt_in_keyword_opts_the_number_back_in_and_counts_as_an_answer(body: str) -> None:
    [event, reply] = inbound({"Body": body})
    assert (event.kind, event.channel, event.address) == (EventKind.OPTED_IN, "sms", ALICE)
    assert (reply.kind, reply.channel, reply.address) == (EventKind.RESPONDED, "sms", ALICE)
    assert reply.detail == f"replied: {body.strip()}"


@pytest.mark.parametrize("body", ["HELP", "info", "Help?"])
def test_help_and_info_are_neither_an_answer_nor_consent(body: str) -> None:
    assert inbound({"Body": body}) == []


def test_twilio_s_own_help_verdict_is_neither_an_answer_nor_consent() -> None:
    assert inbound({"Body": "aide", "OptOutType": "HELP"}) == []


def test_every_inbound_event_carries_the_message_id_so_a_replay_is_recognised() -> None:
    events = inbound({"Body": "START"})
    assert [event.inbound_id for event in events] == ["SM9999", "SM9999"]


@pytest.mark.parametrize("body", ["Stop please", "don't stop", "yes please", "stop stop", "STOP 2"])
def test_anything_else_is_a_response(body: str) -> None:
    [event] = inbound({"Body": body})
    assert event.kind is EventKind.RESPONDED
    assert (event.channel, event.address) == ("sms", ALICE)
    assert event.detail == f"replied: {body}"


def test_twilio_s_own_opt_out_verdict_wins_over_the_words() -> None:
    [event] = inbound({"Body": "arrête", "OptOutType": "STOP"})
    assert event.kind is EventKind.OPTED_OUT


def test_a_reply_without_text_is_still_a_response() -> None:
    [event] = inbound({"Body": "", "NumMedia": "1"})
    assert event.kind is EventKind.RESPONDED
    assert event.detail == "replied without text"


def test_a_long_reply_is_shortened_in_the_log() -> None:
    [event] = inbound({"Body": "word " * 100})
    assert event.detail is not None
    assert len(event.detail) <= len("replied: ") + 160
    assert event.detail.endswith("…")


def test_a_sender_that_is_not_a_phone_number_is_kept_as_given() -> None:
    form = {"MessageSid": "SM9", "From": "55512", "Body": "STOP"}
    body, headers = signed(form, INBOUND_URL)
    [event] = TwilioWebhooks(auth_token=TOKEN).inbound_message(
        url=INBOUND_URL, body=body, headers=headers
    )
    assert event.address == "55512"


def test_a_whatsapp_sender_is_kept_as_given() -> None:
    [event] = inbound({"From": "whatsapp:+17345550100", "Body": "Thanks"})
    assert event.address == "whatsapp:+17345550100"


@pytest.mark.parametrize(
    "answered_by", ["machine_end_beep", "machine_end_silence", "machine_end_other"]
)
def test_a_completed_call_after_the_beep_left_a_voicemail(answered_by: str) -> None:
    [event] = call({"CallStatus": "completed", "AnsweredBy": answered_by})
    assert event.kind is EventKind.DELIVERED
    assert (event.provider_id, event.channel, event.address) == ("CA0001", "voice", ALICE)
    assert event.detail is not None
    assert "voicemail left" in event.detail


def test_a_completed_call_a_person_answered_is_delivered() -> None:
    [event] = call({"CallStatus": "completed", "AnsweredBy": "human"})
    assert event.kind is EventKind.DELIVERED
    assert event.detail == "call completed: a person answered and heard the message"


@pytest.mark.parametrize(
    ("call_status", "words"),
    [
        ("busy", "busy"),
        ("no-answer", "nobody"),
        ("failed", "could not be placed"),
        ("canceled", "canceled"),
    ],
)
def test_an_unanswered_call_is_a_failure(call_status: str, words: str) -> None:
    [event] = call({"CallStatus": call_status})
    assert event.kind is EventKind.FAILED
    assert event.detail is not None
    assert words in event.detail


@pytest.mark.parametrize("call_status", ["completed", "in-progress"])
def test_a_fax_machine_answering_fails_the_voicemail_drop(call_status: str) -> None:
    [event] = call({"CallStatus": call_status, "AnsweredBy": "fax"})
    assert event.kind is EventKind.FAILED
    assert event.detail == f"call {call_status}: a fax machine answered"


@pytest.mark.parametrize("call_status", ["queued", "ringing", "in-progress"])
def test_a_call_still_under_way_gives_no_event(call_status: str) -> None:
    assert call({"CallStatus": call_status, "AnsweredBy": "machine_start"}) == []


def test_a_call_s_timestamp_becomes_the_event_time() -> None:
    [event] = call({"CallStatus": "busy", "Timestamp": "Mon, 02 Mar 2026 14:05:00 +0000"})
    assert event.at == datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize("timestamp", ["", "yesterday", "Mon, 02 Mar 2026 14:05:00"])
def test_a_call_timestamp_that_cannot_be_read_is_left_out(timestamp: str) -> None:
    [event] = call({"CallStatus": "busy", "Timestamp": timestamp})
    assert event.at is None


def test_a_missing_signature_is_refused() -> None:
    body, _ = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    hooks = TwilioWebhooks(auth_token=TOKEN)
    with pytest.raises(MissingSignature) as caught:
        hooks.message_status(url=STATUS_URL, body=body, headers={})
    assert caught.value.reason == "missing"
    assert caught.value.provider == "twilio"


def test_a_tampered_body_is_refused() -> None:
    body, headers = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    tampered = body.replace(b"delivered", b"undelivered")
    with pytest.raises(InvalidSignature) as caught:
        TwilioWebhooks(auth_token=TOKEN).message_status(
            url=STATUS_URL, body=tampered, headers=headers
        )
    assert caught.value.reason == "invalid"


def test_a_signature_made_with_another_token_is_refused() -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    body, headers = signed(form, STATUS_URL, token="someone-else-s-token")
    with pytest.raises(InvalidSignature):
        TwilioWebhooks(auth_token=TOKEN).message_status(url=STATUS_URL, body=body, headers=headers)


@pytest.mark.parametrize(
    "called",
    [
        "http://hooks.example.com/twilio/status?tenant=7",
        "https://hooks.example.com/twilio/status",
        "https://hooks.example.com/other/status?tenant=7",
    ],
)
def test_a_signature_for_another_url_is_refused(called: str) -> None:
    body, headers = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    with pytest.raises(InvalidSignature, match="public URL"):
        TwilioWebhooks(auth_token=TOKEN).message_status(url=called, body=body, headers=headers)


def test_an_explicit_default_port_matches_a_url_signed_without_it() -> None:
    body, headers = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    events = TwilioWebhooks(auth_token=TOKEN).message_status(
        url="https://hooks.example.com:443/twilio/status?tenant=7", body=body, headers=headers
    )
    assert [event.kind for event in events] == [EventKind.DELIVERED]


def test_header_names_are_read_in_any_letter_case() -> None:
    body, headers = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    lower = {"x-twilio-signature": headers["X-Twilio-Signature"]}
    events = TwilioWebhooks(auth_token=TOKEN).message_status(
        url=STATUS_URL, body=body.decode(), headers=lower
    )
    assert len(events) == 1


def test_a_signed_callback_without_its_id_is_malformed() -> None:
    body, headers = signed({"MessageStatus": "delivered"}, STATUS_URL)
    with pytest.raises(MalformedWebhook, match="MessageSid"):
        TwilioWebhooks(auth_token=TOKEN).message_status(url=STATUS_URL, body=body, headers=headers)


@pytest.mark.parametrize(
    ("method", "form", "missing"),
    [
        ("inbound_message", {"Body": "hi"}, "From"),
        ("call_status", {"CallSid": "CA1"}, "CallStatus"),
    ],
)
def test_other_callbacks_without_their_fields_are_malformed(
    method: str, form: dict[str, str], missing: str
) -> None:
    body, headers = signed(form, CALLS_URL)
    read = getattr(TwilioWebhooks(auth_token=TOKEN), method)
    with pytest.raises(MalformedWebhook, match=missing):
        read(url=CALLS_URL, body=body, headers=headers)


def test_a_signed_body_that_is_not_utf8_is_malformed() -> None:
    hooks = TwilioWebhooks(auth_token=TOKEN)
    headers = {"X-Twilio-Signature": "c2lnbmF0dXJl"}
    with pytest.raises(MalformedWebhook, match="UTF-8"):
        hooks.message_status(url=STATUS_URL, body=b"Body=\xff\xfe", headers=headers)


def test_an_unsigned_body_is_refused_before_it_is_read() -> None:
    hooks = TwilioWebhooks(auth_token=TOKEN)
    with pytest.raises(MissingSignature):
        hooks.message_status(url=STATUS_URL, body=b"Body=\xff\xfe", headers={})


def test_errors_and_reprs_never_show_the_token_or_the_signature() -> None:
    body, headers = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    hooks = TwilioWebhooks(auth_token=SecretStr(TOKEN))
    with pytest.raises(SignatureError) as caught:
        hooks.message_status(url=INBOUND_URL, body=body, headers=headers)
    shown = f"{caught.value} {caught.value!r} {hooks!r}"
    assert TOKEN not in shown
    assert headers["X-Twilio-Signature"] not in shown


def test_a_secret_str_token_verifies_like_a_plain_one() -> None:
    body, headers = signed({"MessageSid": "SM1", "MessageStatus": "delivered"}, STATUS_URL)
    hooks = TwilioWebhooks(auth_token=SecretStr(TOKEN))
    assert len(hooks.message_status(url=STATUS_URL, body=body, headers=headers)) == 1


@pytest.mark.parametrize("token", ["", "   ", SecretStr("")])
def test_an_empty_token_is_a_configuration_error(token: str | SecretStr) -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        TwilioWebhooks(auth_token=token)


def test_without_the_twilio_sdk_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "twilio.request_validator", None)
    with pytest.raises(ConfigurationError, match=r"multichannel\[twilio\]"):
        TwilioWebhooks(auth_token=TOKEN)
