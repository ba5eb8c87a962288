"""Twilio's answers and network failures, read into the library's errors: every table row."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses

from multichannel import (
    ContactPoint,
    Content,
    DeliveryError,
    OptedOut,
    PermanentError,
    ProviderError,
    SendContext,
    TransientError,
)
from multichannel.adapters._twilio import ERRORS
from multichannel.adapters.twilio_sms import TwilioSMS
from multichannel.adapters.twilio_voice import TwilioVoiceDrop

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "token-that-must-never-show"
NUMBER = "+17345550100"
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
CALLS = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Calls.json"
CONTEXT = SendContext(dispatch_id="d-1", contact_id="c-1")

# The HTTP status Twilio answers each code with; 400 for the rest.
STATUS_OF = {20003: 401, 20403: 403, 20404: 404, 20429: 429, 20500: 500, 20503: 503, 10001: 401}


def twilio_error(code: int, status: int, message: str) -> dict[str, object]:
    """An error body exactly as Twilio's 2010 API writes it."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def sms() -> TwilioSMS:
    return TwilioSMS(account_sid=SID, auth_token=TOKEN, from_number="+15005550006")


def refusal(adapter: TwilioSMS | TwilioVoiceDrop, channel: str = "sms") -> DeliveryError:
    with pytest.raises(DeliveryError) as raised:
        adapter.send(ContactPoint(channel=channel, address=NUMBER), Content(body="Hi"), CONTEXT)
    return raised.value


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_row_of_the_table_is_read_as_its_error(
    code: int, wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    status = STATUS_OF.get(code, 400)
    body = twilio_error(code, status, f"Twilio's own words for {code}")
    wire.post(MESSAGES, json=body, status=status)

    error = refusal(sms)

    assert type(error) is ERRORS[code].kind
    assert error.code == str(code)
    assert error.status == status
    assert error.provider == "twilio-sms"
    assert ERRORS[code].meaning in error.message
    assert f"Twilio's own words for {code}" in error.message
    assert f"https://www.twilio.com/docs/errors/{code}" in error.message
    assert isinstance(error.__cause__, Exception)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        (21610, 400, OptedOut),
        (21211, 400, PermanentError),
        (21614, 400, PermanentError),
        (21217, 400, PermanentError),
        (21612, 400, ProviderError),
        (21408, 400, ProviderError),
        (21421, 400, ProviderError),
        (20003, 401, ProviderError),
        (20404, 404, ProviderError),
        (20429, 429, TransientError),
    ],
)
def test_the_codes_the_issue_names_are_classified_as_decided(
    code: int,
    status: int,
    expected: type[DeliveryError],
    wire: responses.RequestsMock,
    sms: TwilioSMS,
) -> None:
    wire.post(MESSAGES, json=twilio_error(code, status, "refused"), status=status)

    assert type(refusal(sms)) is expected


def test_an_account_failure_never_blames_the_address(
    wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    wire.post(MESSAGES, json=twilio_error(20003, 401, "Authenticate"), status=401)

    error = refusal(sms)

    assert isinstance(error, ProviderError)
    assert not isinstance(error, PermanentError)
    assert "check the account SID and auth token" in str(error)


def test_the_voice_adapter_reads_the_same_table(wire: responses.RequestsMock) -> None:
    voice = TwilioVoiceDrop(account_sid=SID, auth_token=TOKEN, from_number="+15005550006")
    wire.post(CALLS, json=twilio_error(21217, 400, "not valid"), status=400)
    wire.post(CALLS, json=twilio_error(21215, 400, "geo"), status=400)

    first = refusal(voice, "voice")
    second = refusal(voice, "voice")

    assert (type(first), first.provider) == (PermanentError, "twilio-voice")
    assert type(second) is ProviderError


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ProviderError),
        (403, ProviderError),
        (409, ProviderError),
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
    ],
)
def test_an_unknown_code_is_read_by_its_http_status(
    status: int, expected: type[DeliveryError], wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    wire.post(MESSAGES, json=twilio_error(29999, status, "something new"), status=status)

    error = refusal(sms)

    assert type(error) is expected
    assert (error.code, error.status) == ("29999", status)


def test_a_body_that_is_not_json_is_read_by_its_status(
    wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    wire.post(MESSAGES, body="<html>Bad Gateway</html>", status=502, content_type="text/html")

    error = refusal(sms)

    assert type(error) is TransientError
    assert (error.code, error.status) == (None, 502)


def test_a_problem_details_body_is_read_by_its_code(
    wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    problem = {
        "type": "https://www.twilio.com/docs/errors/21610",
        "title": "Attempt to send to unsubscribed recipient",
        "status": 400,
        "code": 21610,
        "detail": "The recipient replied STOP",
    }
    wire.post(MESSAGES, json=problem, status=400)

    error = refusal(sms)

    assert type(error) is OptedOut
    assert "Attempt to send to unsubscribed recipient" in error.message


def test_phone_numbers_in_twilio_words_are_masked(
    wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    words = f"The 'To' number {NUMBER} is not a valid phone number."
    wire.post(MESSAGES, json=twilio_error(21211, 400, words), status=400)

    error = refusal(sms)

    assert NUMBER not in str(error)
    assert "+1734***0100" in str(error)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        # Not delta-seconds (a sign is not allowed) and not a date: no hint.
        ({"Retry-After": "-3"}, None),
        (
            {
                "Retry-After": "Mon, 02 Mar 2026 14:01:30 GMT",
                "Date": "Mon, 02 Mar 2026 14:00:00 GMT",
            },
            90.0,
        ),
        (
            {
                "Retry-After": "Mon, 02 Mar 2026 14:00:30 -0000",
                "Date": "Mon, 02 Mar 2026 14:00:00 GMT",
            },
            30.0,
        ),
        ({"Retry-After": "Sun, 01 Mar 2020 00:00:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_on_a_429_becomes_the_retry_hint(
    headers: dict[str, str],
    seconds: float | None,
    wire: responses.RequestsMock,
    sms: TwilioSMS,
) -> None:
    body = twilio_error(20429, 429, "Too Many Requests")
    wire.post(MESSAGES, json=body, status=429, headers=headers)

    error = refusal(sms)

    assert isinstance(error, TransientError)
    hint = None if error.retry_after is None else error.retry_after.total_seconds()
    assert hint == seconds


def test_retry_after_on_a_503_is_honoured_too(wire: responses.RequestsMock, sms: TwilioSMS) -> None:
    wire.post(MESSAGES, body="busy", status=503, headers={"Retry-After": "120"})

    error = refusal(sms)

    assert isinstance(error, TransientError)
    assert error.retry_after is not None
    assert error.retry_after.total_seconds() == 120


def test_a_hint_from_an_earlier_answer_is_not_reused(
    wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    wire.post(
        MESSAGES, json=twilio_error(20429, 429, "slow"), status=429, headers={"Retry-After": "9"}
    )
    wire.post(MESSAGES, json=twilio_error(20500, 500, "oops"), status=500)

    first, second = refusal(sms), refusal(sms)

    assert isinstance(first, TransientError)
    assert isinstance(second, TransientError)
    assert first.retry_after is not None
    assert second.retry_after is None


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (requests.exceptions.ReadTimeout("read timed out"), TransientError),
        (requests.exceptions.ConnectTimeout("connect timed out"), TransientError),
        (requests.exceptions.ConnectionError("connection refused"), TransientError),
        (requests.exceptions.TooManyRedirects("loop"), ProviderError),
    ],
)
def test_network_failures_are_translated(
    failure: Exception,
    expected: type[DeliveryError],
    wire: responses.RequestsMock,
    sms: TwilioSMS,
) -> None:
    wire.post(MESSAGES, body=failure)

    error = refusal(sms)

    assert type(error) is expected
    assert error.__cause__ is failure


def test_an_error_that_is_neither_twilio_nor_network_passes_unchanged(
    wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    bug = RuntimeError("a bug, not a delivery failure")
    wire.post(MESSAGES, body=bug)

    with pytest.raises(RuntimeError) as raised:
        sms.send(ContactPoint(channel="sms", address=NUMBER), Content(body="Hi"), CONTEXT)

    assert raised.value is bug


@pytest.mark.parametrize("code", [20003, 21211, 21610, 20429])
def test_no_error_shows_the_auth_token(
    code: int, wire: responses.RequestsMock, sms: TwilioSMS
) -> None:
    status = STATUS_OF.get(code, 400)
    wire.post(MESSAGES, json=twilio_error(code, status, "refused"), status=status)

    error = refusal(sms)

    for text in (str(error), repr(error), repr(error.__cause__), str(error.__cause__)):
        assert TOKEN not in text
