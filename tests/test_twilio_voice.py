"""TwilioVoiceDrop against Twilio's wire format: the call, its TwiML, the 30-second rule."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import responses
from pytest_httpserver import HTTPServer

from multichannel import ConfigurationError, ContactPoint, Content, PermanentError, SendContext
from multichannel.adapters.twilio_voice import (
    VOICEMAIL_LIMIT,
    WORDS_PER_MINUTE,
    TwilioVoiceDrop,
    spoken_length,
)
from multichannel.testing import AdapterContract, FailureKind

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "token-that-must-never-show"
CALLER = "+15005550006"
NUMBER = "+17345550100"
PATH = f"/2010-04-01/Accounts/{SID}/Calls.json"
CALLS = f"https://api.twilio.com{PATH}"
BASIC = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
POINT = ContactPoint(channel="voice", address=NUMBER)
CONTEXT = SendContext(dispatch_id="d-1", contact_id="c-1")
PLACED = {"sid": "CA0123456789abcdef0123456789abcdef", "status": "queued"}
SCRIPT = "Hello, this is Dr. Lee's office. Your appointment is tomorrow at ten."


def twilio_error(code: int, status: int, message: str) -> dict[str, object]:
    """An error body exactly as Twilio's 2010 API writes it."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def form(body: str | bytes | None) -> dict[str, list[str]]:
    text = body.decode() if isinstance(body, bytes) else body or ""
    return parse_qs(text, keep_blank_values=True)


def spoken(twiml: str) -> list[tuple[str, str | None]]:
    """The verbs of a TwiML document and their text, in order."""
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    return [(verb.tag, verb.text) for verb in root]


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def voice(**settings: object) -> TwilioVoiceDrop:
    options: dict[str, object] = {"account_sid": SID, "auth_token": TOKEN, "from_number": CALLER}
    options.update(settings)
    return TwilioVoiceDrop(**options)  # type: ignore[arg-type]


def words(count: int) -> str:
    return " ".join(["word"] * count)


# The spoken-length rule.


def test_spoken_length_is_the_word_count_at_the_stated_rate() -> None:
    assert WORDS_PER_MINUTE == 150
    assert spoken_length(words(150)) == timedelta(minutes=1)
    assert spoken_length(words(75)) == timedelta(seconds=30)
    assert spoken_length("  ") == timedelta(0)


def test_a_script_of_exactly_thirty_seconds_is_dialled(wire: responses.RequestsMock) -> None:
    wire.post(CALLS, json=PLACED, status=201)

    voice().send(POINT, Content(body=words(75)), CONTEXT)

    assert spoken(form(wire.calls[0].request.body)["Twiml"][0]) == [("Say", words(75))]


def test_a_longer_script_is_refused_before_dialling(wire: responses.RequestsMock) -> None:
    with pytest.raises(PermanentError) as raised:
        voice().send(POINT, Content(body=words(76)), CONTEXT)

    assert len(wire.calls) == 0
    message = str(raised.value)
    assert "about 30.4 seconds" in message
    assert "76 words at 150 a minute" in message
    assert "most important sentence first" in message
    assert timedelta(seconds=30) == VOICEMAIL_LIMIT


def test_an_empty_script_is_refused_before_dialling(wire: responses.RequestsMock) -> None:
    with pytest.raises(PermanentError, match="nothing to say"):
        voice().send(POINT, Content(body="   "), CONTEXT)

    assert len(wire.calls) == 0


# The call on the wire.


def test_send_places_a_call_that_waits_for_the_beep(wire: responses.RequestsMock) -> None:
    wire.post(CALLS, json=PLACED, status=201)

    receipt = voice().send(POINT, Content(body=SCRIPT), CONTEXT)

    assert (receipt.provider_id, receipt.status) == (PLACED["sid"], "queued")
    (call,) = wire.calls
    assert call.request.url == CALLS
    assert call.request.headers["Authorization"] == BASIC
    fields = form(call.request.body)
    assert set(fields) == {"To", "From", "Twiml", "MachineDetection"}
    assert fields["To"] == [NUMBER]
    assert fields["From"] == [CALLER]
    assert fields["MachineDetection"] == ["DetectMessageEnd"]
    assert spoken(fields["Twiml"][0]) == [("Say", SCRIPT)]


def test_a_recording_is_played_instead_of_the_script(wire: responses.RequestsMock) -> None:
    wire.post(CALLS, json=PLACED, status=201)
    recording = "https://media.example.com/reminder.mp3?v=2&lang=en"

    voice().send(POINT, Content(body=words(500), media_url=recording), CONTEXT)

    assert spoken(form(wire.calls[0].request.body)["Twiml"][0]) == [("Play", recording)]


def test_the_script_is_escaped_not_pasted_into_the_twiml() -> None:
    script = 'Press <1> & say "yes"</Say><Hangup/>'

    assert spoken(voice().twiml(Content(body=script))) == [("Say", script)]


def test_status_callback_asks_for_every_call_event(wire: responses.RequestsMock) -> None:
    wire.post(CALLS, json=PLACED, status=201)

    voice(status_callback="https://hooks.example.com/twilio/calls").send(
        POINT, Content(body=SCRIPT), CONTEXT
    )

    fields = form(wire.calls[0].request.body)
    assert fields["StatusCallback"] == ["https://hooks.example.com/twilio/calls"]
    assert fields["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert fields["StatusCallbackMethod"] == ["POST"]


def test_base_url_sends_the_call_elsewhere(wire: responses.RequestsMock) -> None:
    wire.post(f"http://127.0.0.1:8080{PATH}", json=PLACED, status=201)

    voice(base_url="http://127.0.0.1:8080").send(POINT, Content(body=SCRIPT), CONTEXT)

    assert wire.calls[0].request.url == f"http://127.0.0.1:8080{PATH}"


async def test_asend_places_the_same_call_with_aiohttp(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(PATH, method="POST").respond_with_json(PLACED, status=201)
    adapter = voice(
        base_url=f"http://127.0.0.1:{httpserver_ipv4.port}",
        status_callback="https://hooks.example.com/twilio/calls",
    )

    receipt = await adapter.asend(POINT, Content(body=SCRIPT), CONTEXT)

    assert receipt.provider_id == PLACED["sid"]
    ((request, _),) = httpserver_ipv4.log
    assert request.headers["Authorization"] == BASIC
    fields = form(request.get_data())
    assert fields["MachineDetection"] == ["DetectMessageEnd"]
    assert fields["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert spoken(fields["Twiml"][0]) == [("Say", SCRIPT)]


async def test_asend_refuses_a_long_script_before_dialling(httpserver_ipv4: HTTPServer) -> None:
    adapter = voice(base_url=f"http://127.0.0.1:{httpserver_ipv4.port}")

    with pytest.raises(PermanentError, match="seconds to say"):
        await adapter.asend(POINT, Content(body=words(200)), CONTEXT)

    assert httpserver_ipv4.log == []


# Settings.


@pytest.mark.parametrize(
    "settings",
    [{"from_number": ""}, {"account_sid": ""}, {"base_url": "localhost"}, {"timeout": -1}],
)
def test_bad_settings_are_a_configuration_error(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="twilio-voice"):
        voice(**settings)


def test_repr_masks_the_account_and_never_shows_the_token() -> None:
    shown = repr(voice())

    assert "AC01***cdef" in shown
    assert SID not in shown
    assert TOKEN not in shown


def test_from_env_reads_the_twilio_variables(
    monkeypatch: pytest.MonkeyPatch, wire: responses.RequestsMock
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", CALLER)
    monkeypatch.setenv("TWILIO_STATUS_CALLBACK", "https://hooks.example.com/twilio/status")
    monkeypatch.setenv("TWILIO_VOICE_STATUS_CALLBACK", "https://hooks.example.com/twilio/calls")
    monkeypatch.setenv("TWILIO_BASE_URL", "http://127.0.0.1:8080")
    wire.post(f"http://127.0.0.1:8080{PATH}", json=PLACED, status=201)

    TwilioVoiceDrop.from_env().send(POINT, Content(body=SCRIPT), CONTEXT)

    sent = wire.calls[0].request
    assert sent.headers["Authorization"] == BASIC
    assert form(sent.body)["StatusCallback"] == ["https://hooks.example.com/twilio/calls"]


def test_from_env_names_the_missing_caller_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("TWILIO_FROM_NUMBER", raising=False)

    with pytest.raises(ConfigurationError, match="TWILIO_FROM_NUMBER is not set") as raised:
        TwilioVoiceDrop.from_env()

    assert TOKEN not in str(raised.value)


# The contract every adapter owes the dispatcher.


ANSWERS: dict[FailureKind, tuple[int, dict[str, object]]] = {
    "transient": (429, twilio_error(20429, 429, "Too Many Requests")),
    "permanent": (400, twilio_error(21217, 400, "Phone number does not appear to be valid")),
    "opted_out": (400, twilio_error(21610, 400, "Attempt to send to unsubscribed recipient")),
    "provider": (401, twilio_error(20003, 401, "Authenticate")),
}


class TestTwilioVoiceDropContract(AdapterContract):
    """Sync calls meet `responses`; async calls meet a real server on 127.0.0.1."""

    @pytest.fixture(autouse=True)
    def _wire(self, httpserver_ipv4: HTTPServer) -> Iterator[None]:
        self.server = httpserver_ipv4
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self.mock = mock
            yield

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def make_adapter(self) -> TwilioVoiceDrop:
        return voice(base_url=self.base_url)

    def make_point(self) -> ContactPoint:
        return POINT

    def secrets(self) -> list[str]:
        return [TOKEN, base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()]

    def _answer(self, status: int, body: dict[str, object]) -> None:
        self.mock.reset()
        self.mock.post(f"{self.base_url}{PATH}", json=body, status=status)
        self.server.clear_all_handlers()
        self.server.expect_request(PATH, method="POST").respond_with_json(body, status=status)

    def arrange_accept(self, point: ContactPoint) -> None:
        self._answer(201, PLACED)

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        self._answer(*ANSWERS[kind])
