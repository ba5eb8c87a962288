"""TwilioSMS against Twilio's wire format: requests, answers, limits, settings and the contract."""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from urllib.parse import parse_qs

import pytest
import responses
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    Dispatcher,
    ManualClock,
    Message,
    OptedOut,
    Outbox,
    Outcome,
    PermanentError,
    Preferences,
    Registry,
    SendContext,
    Status,
    TransientError,
)
from multichannel.adapters.twilio_sms import TwilioSMS, sms_segments
from multichannel.testing import AdapterContract, FailureKind

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "token-that-must-never-show"
SENDER = "+15005550006"
NUMBER = "+17345550100"
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
MESSAGES = f"https://api.twilio.com{PATH}"
BASIC = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
POINT = ContactPoint(channel="sms", address=NUMBER)
CONTEXT = SendContext(dispatch_id="d-1", contact_id="c-1")
ACCEPTED = {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}
TWILIO_ENV = (
    "ACCOUNT_SID",
    "AUTH_TOKEN",
    "FROM_NUMBER",
    "MESSAGING_SERVICE_SID",
    "STATUS_CALLBACK",
    "BASE_URL",
    "EDGE",
    "REGION",
)


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


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in TWILIO_ENV:
        monkeypatch.delenv(f"TWILIO_{name}", raising=False)
    return monkeypatch


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers, to prove requests time out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def sms(**settings: object) -> TwilioSMS:
    options: dict[str, object] = {"account_sid": SID, "auth_token": TOKEN, "from_number": SENDER}
    options.update(settings)
    return TwilioSMS(**options)  # type: ignore[arg-type]


# Counting segments.


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 0),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("^{}\\[~]|" * 10, 1),
        ("^{}\\[~]|" * 10 + "a", 2),
        ("a" * 152 + "€" + "a" * 152, 3),
        ("ş" * 70, 1),
        ("ş" * 71, 2),
        ("ş" * 134, 2),
        ("ş" * 135, 3),
        ("a" * 69 + "ş", 1),
        ("a" * 70 + "ş", 2),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
        ("ş" * 66 + "😀" + "ş" * 66, 3),
        ("Café à 10:00, £5 ÆØÅ ¿Qué? ñü" + "a" * 131, 1),
        ("Café à 10:00, £5 ÆØÅ ¿Qué? ñü" + "a" * 132, 2),
        ("It's ready" + "a" * 150, 1),
        ("It\u2019s ready" + "a" * 150, 3),
    ],
)
def test_sms_segments_counts_as_carriers_bill(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


@given(st.text(max_size=400), st.integers(min_value=0, max_value=400))
def test_a_longer_text_never_needs_fewer_segments(text: str, cut: int) -> None:
    assert sms_segments(text[:cut]) <= sms_segments(text)


# Construction and settings.


@pytest.mark.parametrize(
    "settings",
    [
        {"from_number": None},
        {"messaging_service_sid": "MG0123456789abcdef0123456789abcdef"},
        {"max_segments": 0},
        {"max_segments": 2.5},
        {"account_sid": "  "},
        {"auth_token": ""},
        {"from_number": " "},
        {"base_url": "ftp://127.0.0.1"},
        {"base_url": "127.0.0.1:8080"},
        {"base_url": "http://127.0.0.1:8080/?a=1"},
        {"timeout": 0},
    ],
)
def test_bad_settings_are_a_configuration_error(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="twilio-sms"):
        sms(**settings)


def test_a_missing_sdk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = [name for name in sys.modules if name.split(".")[0] == "twilio"]
    for module in {"twilio", *loaded}:
        monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(ConfigurationError, match=r"pip install 'multichannel\[twilio\]'"):
        sms()


def test_the_library_and_the_adapter_modules_import_without_the_sdk() -> None:
    script = (
        "import sys; sys.modules['twilio'] = None\n"
        "import multichannel\n"
        "from multichannel.adapters.twilio_sms import sms_segments\n"
        "from multichannel.adapters.twilio_voice import spoken_length\n"
        "print(sms_segments('hello'), spoken_length('one two').total_seconds())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "0.8"]


def test_repr_masks_the_account_and_never_shows_the_token() -> None:
    adapter = sms(base_url="http://127.0.0.1:8080")

    shown = repr(adapter)

    assert TOKEN not in shown
    assert SID not in shown
    assert "AC01***cdef" in shown
    assert "http://127.0.0.1:8080" in shown
    assert TOKEN not in str(adapter)


def test_from_env_reads_the_twilio_variables(
    clean_env: pytest.MonkeyPatch, wire: responses.RequestsMock
) -> None:
    clean_env.setenv("TWILIO_ACCOUNT_SID", SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    clean_env.setenv("TWILIO_FROM_NUMBER", SENDER)
    clean_env.setenv("TWILIO_STATUS_CALLBACK", "https://hooks.example.com/twilio/status")
    clean_env.setenv("TWILIO_BASE_URL", "http://127.0.0.1:8080")
    wire.post(f"http://127.0.0.1:8080{PATH}", json=ACCEPTED, status=201)

    TwilioSMS.from_env().send(POINT, Content(body="Hi"), CONTEXT)

    sent = wire.calls[0].request
    assert sent.headers["Authorization"] == BASIC
    assert form(sent.body) == {
        "To": [NUMBER],
        "From": [SENDER],
        "Body": ["Hi"],
        "StatusCallback": ["https://hooks.example.com/twilio/status"],
    }


def test_from_env_prefers_the_messaging_service_when_both_are_set(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("TWILIO_ACCOUNT_SID", SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    clean_env.setenv("TWILIO_FROM_NUMBER", SENDER)
    clean_env.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG0123456789abcdef0123456789abcdef")

    adapter = TwilioSMS.from_env()

    assert (adapter.messaging_service_sid, adapter.from_number) == (
        "MG0123456789abcdef0123456789abcdef",
        None,
    )


@pytest.mark.parametrize(
    ("present", "named"),
    [
        ({"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": SENDER}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_FROM_NUMBER": SENDER}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}, "TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": ""}, "FROM"),
    ],
)
def test_from_env_names_the_missing_variable(
    present: dict[str, str], named: str, clean_env: pytest.MonkeyPatch
) -> None:
    for name, value in present.items():
        clean_env.setenv(name, value)

    with pytest.raises(ConfigurationError, match=named) as raised:
        TwilioSMS.from_env()

    assert TOKEN not in str(raised.value)


def test_the_entry_point_builds_the_adapter_from_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("TWILIO_ACCOUNT_SID", SID)
    clean_env.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    clean_env.setenv("TWILIO_FROM_NUMBER", SENDER)
    (point,) = entry_points(group="multichannel.adapters", name="twilio-sms")

    assert point.load() == TwilioSMS.from_env
    found = {item.name: item for item in Registry.discover()}
    assert isinstance(found["twilio-sms"].adapter, TwilioSMS)


# Sending, sync, on the wire.


def test_send_posts_the_message_with_basic_auth(wire: responses.RequestsMock) -> None:
    wire.post(MESSAGES, json=ACCEPTED, status=201)

    receipt = sms().send(POINT, Content(body="Your table is ready"), CONTEXT)

    assert (receipt.provider_id, receipt.status) == (ACCEPTED["sid"], "queued")
    (call,) = wire.calls
    assert call.request.method == "POST"
    assert call.request.url == MESSAGES
    assert call.request.headers["Authorization"] == BASIC
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(call.request.body) == {
        "To": [NUMBER],
        "From": [SENDER],
        "Body": ["Your table is ready"],
    }


def test_send_through_a_messaging_service_with_a_status_callback(
    wire: responses.RequestsMock,
) -> None:
    wire.post(MESSAGES, json=ACCEPTED, status=201)
    adapter = sms(
        from_number=None,
        messaging_service_sid="MG0123456789abcdef0123456789abcdef",
        status_callback="https://hooks.example.com/twilio/status",
    )

    adapter.send(POINT, Content(body="Hi"), CONTEXT)

    assert form(wire.calls[0].request.body) == {
        "To": [NUMBER],
        "MessagingServiceSid": ["MG0123456789abcdef0123456789abcdef"],
        "Body": ["Hi"],
        "StatusCallback": ["https://hooks.example.com/twilio/status"],
    }


@pytest.mark.parametrize(
    ("base_url", "sent_to"),
    [
        ("http://127.0.0.1:8080", f"http://127.0.0.1:8080{PATH}"),
        ("http://127.0.0.1:8080/", f"http://127.0.0.1:8080{PATH}"),
        ("https://proxy.example.com/twilio/", f"https://proxy.example.com/twilio{PATH}"),
    ],
)
def test_base_url_sends_the_same_request_elsewhere(
    base_url: str, sent_to: str, wire: responses.RequestsMock
) -> None:
    wire.post(sent_to, json=ACCEPTED, status=201)

    sms(base_url=base_url).send(POINT, Content(body="Hi"), CONTEXT)

    assert wire.calls[0].request.url == sent_to
    assert wire.calls[0].request.headers["Authorization"] == BASIC


def test_the_sdk_edge_and_region_variables_do_not_move_requests(
    clean_env: pytest.MonkeyPatch, wire: responses.RequestsMock
) -> None:
    clean_env.setenv("TWILIO_EDGE", "sydney")
    clean_env.setenv("TWILIO_REGION", "au1")
    wire.post(MESSAGES, json=ACCEPTED, status=201)

    sms().send(POINT, Content(body="Hi"), CONTEXT)

    assert wire.calls[0].request.url == MESSAGES


def test_a_text_over_the_segment_limit_is_refused_before_any_request(
    wire: responses.RequestsMock,
) -> None:
    text = "Ваш столик готов. " * 10  # Cyrillic: UCS-2, 180 units, 3 segments

    with pytest.raises(PermanentError) as raised:
        sms(max_segments=2).send(POINT, Content(body=text), CONTEXT)

    assert len(wire.calls) == 0
    message = str(raised.value)
    assert "needs 3 SMS segments" in message
    assert "the limit is 2" in message
    assert "UCS-2, because of '\u0412'" in message


def test_a_text_at_the_segment_limit_is_sent(wire: responses.RequestsMock) -> None:
    wire.post(MESSAGES, json=ACCEPTED, status=201)

    sms(max_segments=2).send(POINT, Content(body="a" * 306), CONTEXT)

    assert form(wire.calls[0].request.body)["Body"] == ["a" * 306]


def test_an_empty_text_is_refused_before_any_request(wire: responses.RequestsMock) -> None:
    with pytest.raises(PermanentError, match="empty"):
        sms().send(POINT, Content(body=""), CONTEXT)

    assert len(wire.calls) == 0


def test_a_request_that_gets_no_answer_times_out(silent_port: int) -> None:
    adapter = sms(base_url=f"http://127.0.0.1:{silent_port}", timeout=0.2)

    with pytest.raises(TransientError, match="did not answer in time"):
        adapter.send(POINT, Content(body="Hi"), CONTEXT)


def test_logs_mask_the_number_and_never_show_the_token(
    wire: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    wire.post(MESSAGES, json=ACCEPTED, status=201)
    caplog.set_level(logging.DEBUG)

    sms().send(POINT, Content(body="Hi"), CONTEXT)

    assert "+1734***0100" in caplog.text
    assert NUMBER not in caplog.text
    assert TOKEN not in caplog.text
    assert base64.b64encode(f"{SID}:{TOKEN}".encode()).decode() not in caplog.text


# Sending, async, against a real HTTP server on 127.0.0.1.


async def test_asend_posts_the_same_request_with_aiohttp(httpserver_ipv4: HTTPServer) -> None:
    httpserver_ipv4.expect_request(PATH, method="POST").respond_with_json(ACCEPTED, status=201)
    adapter = sms(
        base_url=f"http://127.0.0.1:{httpserver_ipv4.port}",
        status_callback="https://h.example.com/s",
    )

    receipt = await adapter.asend(POINT, Content(body="Hi ☕"), CONTEXT)

    assert receipt.provider_id == ACCEPTED["sid"]
    ((request, _),) = httpserver_ipv4.log
    assert request.headers["Authorization"] == BASIC
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form(request.get_data()) == {
        "To": [NUMBER],
        "From": [SENDER],
        "Body": ["Hi ☕"],
        "StatusCallback": ["https://h.example.com/s"],
    }


async def test_asend_reads_twilio_errors_and_retry_after(httpserver_ipv4: HTTPServer) -> None:
    adapter = sms(base_url=f"http://127.0.0.1:{httpserver_ipv4.port}")
    httpserver_ipv4.expect_oneshot_request(PATH, method="POST").respond_with_json(
        twilio_error(20429, 429, "Too Many Requests"), status=429, headers={"Retry-After": "12"}
    )
    httpserver_ipv4.expect_oneshot_request(PATH, method="POST").respond_with_json(
        twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"), status=400
    )

    with pytest.raises(TransientError) as slowed:
        await adapter.asend(POINT, Content(body="Hi"), CONTEXT)
    with pytest.raises(OptedOut) as stopped:
        await adapter.asend(POINT, Content(body="Hi"), CONTEXT)

    assert slowed.value.retry_after is not None
    assert slowed.value.retry_after.total_seconds() == 12
    assert (stopped.value.code, stopped.value.status) == ("21610", 400)


async def test_asend_to_a_closed_port_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    adapter = sms(base_url=f"http://127.0.0.1:{closed}")

    with pytest.raises(TransientError, match="could not connect"):
        await adapter.asend(POINT, Content(body="Hi"), CONTEXT)


async def test_asend_times_out_when_no_answer_comes(silent_port: int) -> None:
    adapter = sms(base_url=f"http://127.0.0.1:{silent_port}", timeout=0.2)

    with pytest.raises(TransientError, match="did not answer in time"):
        await adapter.asend(POINT, Content(body="Hi"), CONTEXT)


async def test_asend_refuses_a_long_text_before_any_request(httpserver_ipv4: HTTPServer) -> None:
    adapter = sms(base_url=f"http://127.0.0.1:{httpserver_ipv4.port}", max_segments=1)

    with pytest.raises(PermanentError, match="needs 2 SMS segments"):
        await adapter.asend(POINT, Content(body="a" * 161), CONTEXT)

    assert httpserver_ipv4.log == []


# The dispatcher with Twilio: a STOP reply opts the point out and email is used instead.


def test_an_opted_out_number_falls_back_to_email(
    wire: responses.RequestsMock, clock: ManualClock, outbox: Outbox
) -> None:
    wire.post(
        MESSAGES,
        json=twilio_error(21610, 400, "Attempt to send to unsubscribed recipient"),
        status=400,
    )
    ada = Contact(
        id="ada",
        timezone="America/Detroit",
        points=[POINT, ContactPoint(channel="email", address="ada@example.com")],
        preferences=Preferences(channels=["sms", "email"]),
    )
    dispatcher = Dispatcher(adapters=[sms(), outbox], clock=clock)

    dispatch = dispatcher.send(ada, Message(body="Your table is ready", subject="Table"))

    assert len(wire.calls) == 1
    sms_attempt, email_attempt = dispatch.attempts
    assert (sms_attempt.provider, sms_attempt.outcome) == ("twilio-sms", Outcome.FAILED)
    assert "OptedOut" in (sms_attempt.error or "")
    assert dispatcher.store.opted_out([("sms", NUMBER)]) == {("sms", NUMBER)}
    assert (email_attempt.channel, email_attempt.outcome) == ("email", Outcome.ACCEPTED)
    assert [item.message.body for item in outbox.to("ada@example.com")] == ["Your table is ready"]
    assert dispatch.status is Status.ACCEPTED


# The contract every adapter owes the dispatcher.


ANSWERS: dict[FailureKind, tuple[int, dict[str, object]]] = {
    "transient": (503, twilio_error(20503, 503, "Service Unavailable")),
    "permanent": (400, twilio_error(21211, 400, "The 'To' number is not a valid phone number.")),
    "opted_out": (400, twilio_error(21610, 400, "Attempt to send to unsubscribed recipient")),
    "provider": (401, twilio_error(20003, 401, "Authenticate")),
}


class TestTwilioSMSContract(AdapterContract):
    """Sync sends meet `responses`; async sends meet a real server on 127.0.0.1."""

    @pytest.fixture(autouse=True)
    def _wire(self, httpserver_ipv4: HTTPServer) -> Iterator[None]:
        self.server = httpserver_ipv4
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self.mock = mock
            yield

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def make_adapter(self) -> TwilioSMS:
        return sms(base_url=self.base_url)

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
        self._answer(201, ACCEPTED)

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        self._answer(*ANSWERS[kind])
