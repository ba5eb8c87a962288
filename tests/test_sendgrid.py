"""SendGridEmail against a stand-in of SendGrid's v3 mail/send on 127.0.0.1.

The adapter posts with requests (send) and aiohttp (asend); the stand-in is a
real HTTP server, so both meet one wire and the tests read exactly what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib.metadata import entry_points
from typing import ClassVar

import pytest
from pytest_httpserver import HTTPServer

from multichannel import (
    Attachment,
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    DeliveryError,
    Dispatcher,
    ManualClock,
    Message,
    PermanentError,
    ProviderError,
    SendContext,
    Status,
    TransientError,
)
from multichannel.adapters import sendgrid
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.smtp import SMTPEmail
from multichannel.testing import AdapterContract, FailureKind

API_KEY = "SG.abcdefghijklmnop.qrstuvwxyz0123456789"
SEND_PATH = "/v3/mail/send"
POINT = ContactPoint(channel="email", address="dana.ruiz@example.org")
CTX = SendContext(dispatch_id="dsp_0001", contact_id="dana")
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

# Error bodies as SendGrid returns them (nginx's HTML for a 413 from its edge).
BAD_ADDRESS = {
    "errors": [
        {
            "message": "Does not contain a valid address.",
            "field": "personalizations.0.to.0.email",
            "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
            "#message.personalizations.to",
        }
    ]
}
BAD_KEY = {
    "errors": [
        {
            "message": "The provided authorization grant is invalid, expired, or revoked",
            "field": None,
            "help": None,
        }
    ]
}
UNVERIFIED_SENDER = {
    "errors": [
        {
            "message": "The from address does not match a verified Sender Identity. Mail cannot "
            "be sent until this error is resolved. Visit https://sendgrid.com/docs/for-developers"
            "/sending-email/sender-identity/ to see the Sender Identity requirements",
            "field": "from",
            "help": None,
        }
    ]
}
TOO_MANY = {"errors": [{"field": None, "message": "too many requests"}]}
SERVER_ERROR = {"errors": [{"field": None, "message": "An internal server error occurred."}]}
NGINX_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def adapter_for(server: HTTPServer, **overrides: object) -> SendGridEmail:
    settings: dict[str, object] = {
        "api_key": API_KEY,
        "from_email": "Clinic Reminders <reminders@clinic.example.com>",
        "base_url": server.url_for("/").rstrip("/"),
        "timeout": 5,
        "clock": ManualClock(NOW),
    }
    settings.update(overrides)
    return SendGridEmail(**settings)  # type: ignore[arg-type]


def accept(server: HTTPServer, message_id: str = "Xh4q2rYhQ5uTQZ9rM1yJ2w") -> None:
    server.expect_oneshot_request(SEND_PATH, method="POST").respond_with_data(
        "", status=202, headers={"X-Message-Id": message_id}
    )


def refuse(
    server: HTTPServer, status: int, body: object, headers: dict[str, str] | None = None
) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    content_type = "text/html" if isinstance(body, str) else "application/json"
    server.expect_oneshot_request(SEND_PATH, method="POST").respond_with_data(
        text, status=status, headers=headers, content_type=content_type
    )


def sent_request(server: HTTPServer) -> tuple[dict[str, object], dict[str, str]]:
    assert len(server.log) == 1
    request, _ = server.log[0]
    return json.loads(request.get_data()), dict(request.headers)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The wire format.


def test_posts_the_exact_v3_payload_with_the_bearer_key(httpserver_ipv4: HTTPServer) -> None:
    accept(httpserver_ipv4, "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0")
    adapter = adapter_for(httpserver_ipv4, reply_to="front-desk@clinic.example.com")
    content = Content(
        body="Your appointment is on Tuesday at 9:00.",
        subject="Appointment reminder",
        html="<p>Your appointment is on <b>Tuesday</b> at 9:00.</p>",
        attachments=(
            Attachment(
                filename="visit.ics", data=b"BEGIN:VCALENDAR\r\n", content_type="text/calendar"
            ),
            Attachment(filename="map.png", data=bytes(range(256)), content_type="image/png"),
        ),
    )

    receipt = adapter.send(POINT, content, CTX)

    assert receipt.provider_id == "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    assert receipt.status == "accepted"
    payload, headers = sent_request(httpserver_ipv4)
    assert payload == {
        "from": {"name": "Clinic Reminders", "email": "reminders@clinic.example.com"},
        "subject": "Appointment reminder",
        "personalizations": [{"to": [{"email": "dana.ruiz@example.org"}]}],
        "content": [
            {"type": "text/plain", "value": "Your appointment is on Tuesday at 9:00."},
            {"type": "text/html", "value": "<p>Your appointment is on <b>Tuesday</b> at 9:00.</p>"},
        ],
        "attachments": [
            {
                "content": base64.b64encode(b"BEGIN:VCALENDAR\r\n").decode(),
                "type": "text/calendar",
                "filename": "visit.ics",
                "disposition": "attachment",
            },
            {
                "content": base64.b64encode(bytes(range(256))).decode(),
                "type": "image/png",
                "filename": "map.png",
                "disposition": "attachment",
            },
        ],
        "custom_args": {"dispatch_id": "dsp_0001"},
        "reply_to": {"email": "front-desk@clinic.example.com"},
    }
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert headers["Content-Type"] == "application/json"


def test_text_only_content_sends_one_plain_part_and_derives_a_subject(
    httpserver_ipv4: HTTPServer,
) -> None:
    accept(httpserver_ipv4)
    body = "\n  Your prescription is ready for pickup at the Main Street pharmacy counter today.\n"

    adapter_for(httpserver_ipv4).send(POINT, Content(body=body), CTX)

    payload, _ = sent_request(httpserver_ipv4)
    assert payload["content"] == [{"type": "text/plain", "value": body}]
    assert payload["subject"] == (
        "Your prescription is ready for pickup at the Main Street pharmacy counter…"
    )
    assert "reply_to" not in payload
    assert "attachments" not in payload


def test_html_only_content_sends_no_empty_text_part(httpserver_ipv4: HTTPServer) -> None:
    accept(httpserver_ipv4)

    adapter_for(httpserver_ipv4).send(POINT, Content(body="", html="<p>Hi</p>", subject="Hi"), CTX)

    payload, _ = sent_request(httpserver_ipv4)
    assert payload["content"] == [{"type": "text/html", "value": "<p>Hi</p>"}]


def test_sandbox_acceptance_without_a_message_id_gives_a_receipt_without_id(
    httpserver_ipv4: HTTPServer,
) -> None:
    httpserver_ipv4.expect_oneshot_request(SEND_PATH, method="POST").respond_with_data(
        "", status=200
    )

    receipt = adapter_for(httpserver_ipv4).send(POINT, Content(body="hi"), CTX)

    assert receipt.provider_id is None
    assert receipt.status == "accepted"


def test_asend_posts_the_same_request(httpserver_ipv4: HTTPServer) -> None:
    accept(httpserver_ipv4, "async-id")

    receipt = asyncio.run(adapter_for(httpserver_ipv4).asend(POINT, Content(body="hi"), CTX))

    assert receipt.provider_id == "async-id"
    payload, _ = sent_request(httpserver_ipv4)
    assert payload["custom_args"] == {"dispatch_id": "dsp_0001"}


# Refusals before any request.


def test_empty_content_is_refused_before_any_request(httpserver_ipv4: HTTPServer) -> None:
    with pytest.raises(PermanentError, match="neither text nor html"):
        adapter_for(httpserver_ipv4).send(POINT, Content(body=""), CTX)
    assert httpserver_ipv4.log == []


def test_content_that_looks_like_a_sendgrid_key_is_refused(httpserver_ipv4: HTTPServer) -> None:
    content = Content(body="SG.aaaaaaaaaaaa.bbbbbbbbbbbbbbbb is the key")
    with pytest.raises(PermanentError, match="SDK refused") as caught:
        adapter_for(httpserver_ipv4).send(POINT, content, CTX)
    assert "SG.aaaa" not in str(caught.value)
    assert httpserver_ipv4.log == []


def test_a_payload_over_30_mb_is_refused_before_any_request(httpserver_ipv4: HTTPServer) -> None:
    big = Attachment(filename="scan.pdf", data=bytes(23_000_000), content_type="application/pdf")
    with pytest.raises(PermanentError, match="30 MB"):
        adapter_for(httpserver_ipv4).send(POINT, Content(body="scan", attachments=(big,)), CTX)
    assert httpserver_ipv4.log == []


# The error table, one case per row.

ERROR_ROWS = [
    pytest.param(400, BAD_ADDRESS, PermanentError, "Does not contain a valid address.", id="400"),
    pytest.param(401, BAD_KEY, ProviderError, "authorization grant is invalid", id="401"),
    pytest.param(403, UNVERIFIED_SENDER, ProviderError, "verified Sender Identity", id="403"),
    pytest.param(404, {"errors": [{"message": "not found"}]}, ProviderError, "base_url", id="404"),
    pytest.param(405, {"errors": [{"message": "no"}]}, ProviderError, "base_url", id="405"),
    pytest.param(413, NGINX_413, PermanentError, "larger than SendGrid accepts", id="413"),
    pytest.param(415, {"errors": [{"message": "bad type"}]}, ProviderError, "format", id="415"),
    pytest.param(429, TOO_MANY, TransientError, "too many requests", id="429"),
    pytest.param(451, {"errors": [{"message": "eu"}]}, ProviderError, "residency", id="451"),
    pytest.param(422, {"errors": [{"message": "odd"}]}, PermanentError, "odd", id="other-4xx"),
    pytest.param(500, SERVER_ERROR, TransientError, "internal server error", id="500"),
    pytest.param(502, "<html>bad gateway</html>", TransientError, "failed to take", id="502"),
    pytest.param(503, {"errors": []}, TransientError, "failed to take", id="503"),
    pytest.param(
        504, {"message": "upstream timed out"}, TransientError, "GATEWAY TIMEOUT", id="504"
    ),
    pytest.param(300, "", ProviderError, "unexpectedly", id="other"),
]


@pytest.mark.parametrize(("status", "body", "expected", "words"), ERROR_ROWS)
def test_each_status_maps_to_its_error(
    httpserver_ipv4: HTTPServer,
    status: int,
    body: object,
    expected: type[DeliveryError],
    words: str,
) -> None:
    refuse(httpserver_ipv4, status, body)

    with pytest.raises(DeliveryError) as caught:
        adapter_for(httpserver_ipv4).send(POINT, Content(body="hi"), CTX)

    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.provider == "sendgrid"
    assert words in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_every_table_row_has_a_case() -> None:
    def row_read(status: int) -> int | str:
        if status in sendgrid._ERRORS:
            return status
        status_class = f"{status // 100}xx"
        return status_class if status_class in sendgrid._ERRORS else sendgrid._OTHER

    # No answer and TLS have tests of their own below.
    walked: set[int | str] = {sendgrid._NO_ANSWER, sendgrid._TLS}
    for row in ERROR_ROWS:
        status, _, expected, _ = row.values
        assert isinstance(status, int)
        walked.add(row_read(status))
        assert sendgrid._ERRORS[row_read(status)].kind is expected
    assert walked == set(sendgrid._ERRORS)


def test_a_bad_address_error_names_the_field(httpserver_ipv4: HTTPServer) -> None:
    refuse(httpserver_ipv4, 400, BAD_ADDRESS)
    with pytest.raises(PermanentError) as caught:
        adapter_for(httpserver_ipv4).send(POINT, Content(body="hi"), CTX)
    assert caught.value.message == (
        "SendGrid refused the message: Does not contain a valid address. "
        "(field personalizations.0.to.0.email)"
    )


def test_every_error_message_in_the_body_is_kept(httpserver_ipv4: HTTPServer) -> None:
    body = {
        "errors": [
            {"field": "personalizations", "help": None},
            {"message": "The subject is required.", "field": "subject"},
            {"message": "The content value must be a string.", "field": "content.0.value"},
        ]
    }
    refuse(httpserver_ipv4, 400, body)
    with pytest.raises(PermanentError) as caught:
        adapter_for(httpserver_ipv4).send(POINT, Content(body="hi"), CTX)
    assert "The subject is required. (field subject); The content value" in str(caught.value)


def answer_once(status: str, headers: dict[str, str], body: bytes) -> tuple[str, threading.Thread]:
    """A bare HTTP server on 127.0.0.1 that gives exactly this answer to one request.

    Unlike werkzeug it adds no Date header of its own, so the tests fix SendGrid's clock.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    lines = [f"HTTP/1.1 {status}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    answer = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def serve() -> None:
        with listener, listener.accept()[0] as connection:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, payload = request.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            while length and len(payload) < int(length.group(1)):
                payload += connection.recv(65536)
            connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", thread


# SendGrid's clock, an hour ahead of the adapter's clock: waits are read against its Date.
ANSWERED_AT = NOW + timedelta(hours=1)
ANSWER_DATE = format_datetime(ANSWERED_AT, usegmt=True)


def epoch(moment: datetime) -> str:
    return str(int(moment.timestamp()))


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        pytest.param(
            {"Date": ANSWER_DATE, "X-RateLimit-Reset": epoch(ANSWERED_AT + timedelta(seconds=42))},
            42,
            id="reset-against-the-answer-date",
        ),
        pytest.param(
            {"X-RateLimit-Reset": epoch(NOW + timedelta(seconds=42))},
            42,
            id="reset-against-the-adapter-clock",
        ),
        pytest.param(
            {"Retry-After": "7", "X-RateLimit-Reset": epoch(ANSWERED_AT + timedelta(seconds=42))},
            7,
            id="retry-after-wins",
        ),
        pytest.param(
            {
                "Date": ANSWER_DATE,
                "Retry-After": format_datetime(ANSWERED_AT + timedelta(minutes=2), usegmt=True),
            },
            120,
            id="retry-after-date",
        ),
        pytest.param(
            {"Date": ANSWER_DATE, "X-RateLimit-Reset": epoch(ANSWERED_AT - timedelta(seconds=5))},
            0,
            id="reset-passed",
        ),
        pytest.param({"Date": ANSWER_DATE}, None, id="none"),
        pytest.param({"Date": "yesterday", "Retry-After": "soon"}, None, id="unreadable"),
        pytest.param({"X-RateLimit-Reset": "never"}, None, id="unreadable-reset"),
    ],
)
def test_429_carries_sendgrids_retry_hint(headers: dict[str, str], wait: int | None) -> None:
    body = json.dumps(TOO_MANY).encode()
    origin, server = answer_once("429 Too Many Requests", headers, body)
    adapter = SendGridEmail(
        api_key=API_KEY, from_email="a@clinic.example.com", base_url=origin, clock=ManualClock(NOW)
    )
    with pytest.raises(TransientError, match="too many requests") as caught:
        adapter.send(POINT, Content(body="hi"), CTX)
    server.join(timeout=5)
    expected = None if wait is None else timedelta(seconds=wait)
    assert caught.value.retry_after == expected


def test_a_503_carries_its_retry_after(httpserver_ipv4: HTTPServer) -> None:
    refuse(httpserver_ipv4, 503, SERVER_ERROR, {"Retry-After": "30"})
    with pytest.raises(TransientError) as caught:
        adapter_for(httpserver_ipv4).send(POINT, Content(body="hi"), CTX)
    assert caught.value.retry_after == timedelta(seconds=30)


def test_a_refused_connection_is_transient() -> None:
    adapter = SendGridEmail(
        api_key=API_KEY,
        from_email="a@clinic.example.com",
        base_url=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(TransientError, match="could not be reached") as caught:
        adapter.send(POINT, Content(body="hi"), CTX)
    assert caught.value.status is None


def test_a_server_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        adapter = SendGridEmail(
            api_key=API_KEY,
            from_email="a@clinic.example.com",
            base_url=f"http://127.0.0.1:{port}",
            timeout=0.2,
        )
        with pytest.raises(TransientError, match="timed out"):
            adapter.send(POINT, Content(body="hi"), CTX)


def test_tls_failure_is_a_provider_error(httpserver_ipv4: HTTPServer) -> None:
    plain = httpserver_ipv4.url_for("/").rstrip("/").replace("http://", "https://")
    with pytest.raises(ProviderError, match="TLS"):
        adapter_for(httpserver_ipv4, base_url=plain).send(POINT, Content(body="hi"), CTX)


# Secrets and logs.


def test_the_key_stays_out_of_the_repr_and_every_debug_log(
    httpserver_ipv4: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    accept(httpserver_ipv4)
    adapter = adapter_for(httpserver_ipv4)
    caplog.set_level(logging.DEBUG)  # the HTTP client's own loggers (urllib3) too

    adapter.send(POINT, Content(body="Your results are in", subject="Results"), CTX)

    assert API_KEY not in repr(adapter)
    assert "urllib3" in caplog.text, "the HTTP client's debug log was captured"
    assert API_KEY not in caplog.text
    assert "Bearer" not in caplog.text
    assert "dana.ruiz@example.org" not in caplog.text
    assert "Your results are in" not in caplog.text
    assert "d***@example.org" in caplog.text


# Configuration.


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"api_key": " "}, "api_key is empty"),
        ({"from_email": "reminders"}, "from_email 'reminders' is not an email address"),
        ({"reply_to": "desk"}, "reply_to 'desk' is not an email address"),
        ({"timeout": 0}, "timeout"),
        ({"base_url": "ftp://api.sendgrid.com"}, "not an http"),
        ({"base_url": "api.sendgrid.com"}, "not an http"),
        ({"base_url": "http://sendgrid-proxy.internal"}, "unencrypted; use https"),
    ],
)
def test_bad_settings_are_configuration_errors(settings: dict[str, object], words: str) -> None:
    arguments: dict[str, object] = {"api_key": API_KEY, "from_email": "a@clinic.example.com"}
    arguments.update(settings)
    with pytest.raises(ConfigurationError, match=words):
        SendGridEmail(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:8025", "http://localhost:8025", "http://[::1]:8025", "http://sg.localhost"],
)
def test_plain_http_is_allowed_to_this_machine_only(origin: str) -> None:
    adapter = SendGridEmail(api_key=API_KEY, from_email="a@clinic.example.com", base_url=origin)
    assert f"base_url={origin!r}" in repr(adapter)


def test_a_missing_sdk_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sendgrid", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'multichannel\[sendgrid\]'"):
        SendGridEmail(api_key=API_KEY, from_email="a@clinic.example.com")


def test_importing_the_module_does_not_import_the_sdk() -> None:
    script = (
        "import sys; sys.modules['sendgrid'] = None\n"
        "import multichannel, multichannel.adapters.sendgrid\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_from_env_reads_the_sendgrid_variables(
    monkeypatch: pytest.MonkeyPatch, httpserver_ipv4: HTTPServer
) -> None:
    accept(httpserver_ipv4)
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("SENDGRID_FROM", "Clinic <reminders@clinic.example.com>")
    monkeypatch.setenv("SENDGRID_BASE_URL", httpserver_ipv4.url_for("/"))
    monkeypatch.setenv("SENDGRID_REPLY_TO", "desk@clinic.example.com")

    (point,) = [
        item for item in entry_points(group="multichannel.adapters") if item.name == "sendgrid"
    ]
    adapter = point.load()()

    assert isinstance(adapter, SendGridEmail)
    adapter.send(POINT, Content(body="hi"), CTX)
    payload, headers = sent_request(httpserver_ipv4)
    assert payload["from"] == {"name": "Clinic", "email": "reminders@clinic.example.com"}
    assert payload["reply_to"] == {"email": "desk@clinic.example.com"}
    assert headers["Authorization"] == f"Bearer {API_KEY}"


def test_from_env_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SENDGRID_API_KEY", "SENDGRID_FROM", "SENDGRID_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as caught:
        SendGridEmail.from_env()
    assert "SENDGRID_API_KEY is not set" in str(caught.value)
    assert "SENDGRID_FROM is not set" in str(caught.value)


def test_from_env_defaults_to_sendgrids_own_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("SENDGRID_FROM", "reminders@clinic.example.com")
    monkeypatch.delenv("SENDGRID_BASE_URL", raising=False)
    assert "https://api.sendgrid.com" in repr(SendGridEmail.from_env())


# With the dispatcher: a provider failure falls through to SMTP on the same channel.


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.content)  # type: ignore[attr-defined]
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def inbox() -> Iterator[tuple[_Inbox, int]]:
    from aiosmtpd.controller import Controller

    handler, port = _Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_a_sendgrid_provider_failure_falls_through_to_smtp(
    httpserver_ipv4: HTTPServer, inbox: tuple[_Inbox, int], clock: ManualClock
) -> None:
    handler, port = inbox
    refuse(httpserver_ipv4, 401, BAD_KEY)
    dispatcher = Dispatcher(
        adapters=[
            adapter_for(httpserver_ipv4),
            SMTPEmail(
                host="127.0.0.1", port=port, from_email="a@clinic.example.com", starttls=False
            ),
        ],
        clock=clock,
    )
    contact = Contact(id="dana", timezone="America/Detroit", points=[POINT])

    dispatch = dispatcher.send(contact, Message(body="Your appointment is confirmed."))

    assert dispatch.status is Status.ACCEPTED
    (attempt,) = dispatch.attempts
    assert attempt.provider == "smtp"
    assert attempt.provider_id is not None
    assert attempt.provider_id.endswith("@clinic.example.com>")
    assert len(handler.messages) == 1
    assert b"Your appointment is confirmed." in handler.messages[0]
    assert any("sendgrid failed as a provider" in note.reason for note in dispatch.decisions)


# The contract every adapter owes the dispatcher.


class TestSendGridContract(AdapterContract):
    failures: ClassVar[frozenset[FailureKind]] = frozenset({"transient", "permanent", "provider"})

    @pytest.fixture(autouse=True)
    def _stand_in(self, httpserver_ipv4: HTTPServer) -> None:
        self.server = httpserver_ipv4

    def make_adapter(self) -> SendGridEmail:
        return adapter_for(self.server)

    def make_point(self) -> ContactPoint:
        return POINT

    def arrange_accept(self, point: ContactPoint) -> None:
        accept(self.server)

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        answers = {"transient": (503, SERVER_ERROR), "permanent": (400, BAD_ADDRESS)}
        status, body = answers.get(kind, (401, BAD_KEY))
        refuse(self.server, status, body)

    def secrets(self) -> Sequence[str]:
        return (API_KEY,)

    def test_opt_out_is_opted_out(self) -> None:
        """SendGrid never answers a send with an opt-out: it takes mail for a suppressed
        address (202) and reports the drop later as an event, so the adapter only accepts."""
        self.arrange_accept(POINT)
        receipt = self._send(self.make_adapter(), POINT)
        assert receipt.provider_id == "Xh4q2rYhQ5uTQZ9rM1yJ2w"
