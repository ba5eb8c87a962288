"""SMTPEmail against real SMTP servers on 127.0.0.1.

aiosmtpd plays a well-behaved server (plain, STARTTLS with a certificate made at
test time, implicit TLS, AUTH); a scripted socket server plays the replies
aiosmtpd will not give (a refusing greeting, a broken EHLO, a dropped line).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from multichannel import (
    Attachment,
    ConfigurationError,
    ContactPoint,
    Content,
    DeliveryError,
    PermanentError,
    ProviderError,
    SendContext,
    TransientError,
)
from multichannel.adapters.smtp import SMTPEmail
from multichannel.testing import AdapterContract, FailureKind

USERNAME = "relay-user"
PASSWORD = "correct-horse-battery-staple"
SENDER = "Clinic Reminders <reminders@clinic.example.com>"
POINT = ContactPoint(channel="email", address="dana.ruiz@example.org")
CTX = SendContext(dispatch_id="dsp_0001", contact_id="dana")


# A certificate for 127.0.0.1, made once per module.


@dataclass(frozen=True)
class Certificate:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "multichannel test")])
    start = datetime(2020, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return Certificate(server=server, client=ssl.create_default_context(cafile=str(cert_file)))


# aiosmtpd: a mail room that records what it takes and refuses as told.


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Mailroom:
    received: list[Received] = field(default_factory=list)
    mail_reply: str | None = None
    rcpt_reply: str | None = None
    data_reply: str | None = None
    auth_reply: str | None = None

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        # What the server stores, read back with the line ends a local mailbox uses.
        wire = envelope.original_content.replace(b"\r\n", b"\n")
        message = message_from_bytes(wire, policy=policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if session.auth_data else None
        tls = session.ssl is not None
        self.received.append(Received(envelope.mail_from, envelope.rcpt_tos, message, tls, login))
        return "250 2.0.0 Ok: queued"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.auth_reply:
            return AuthResult(success=False, handled=False, message=self.auth_reply)
        valid = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USERNAME.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=valid, handled=False, auth_data=auth_data)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


StartServer = Callable[..., tuple[Mailroom, int]]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start an aiosmtpd server on 127.0.0.1 with the given SMTP options."""
    running: list[Controller] = []

    def start(**options: Any) -> tuple[Mailroom, int]:
        mailroom, port = Mailroom(), free_port()
        if options.pop("auth", False):
            options.update(authenticator=mailroom.authenticate, auth_required=True)
        controller = Controller(mailroom, hostname="127.0.0.1", port=port, **options)
        controller.start()
        running.append(controller)
        return mailroom, port

    yield start
    for controller in running:
        controller.stop()


def plain(port: int, **settings: Any) -> SMTPEmail:
    arguments: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "from_email": SENDER,
        "starttls": False,
        "timeout": 5,
    }
    arguments.update(settings)
    return SMTPEmail(**arguments)


def secured(port: int, certificate: Certificate, **settings: Any) -> SMTPEmail:
    arguments: dict[str, Any] = {
        "username": USERNAME,
        "password": PASSWORD,
        "starttls": True,
        "tls_context": certificate.client,
    }
    arguments.update(settings)
    return plain(port, **arguments)


# What reaches the server.


def test_delivers_text_html_and_attachments_with_the_ids(start_server: StartServer) -> None:
    mailroom, port = start_server()
    adapter = plain(port, reply_to="front-desk@clinic.example.com")
    calendar = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    content = Content(
        body="Your appointment is on Tuesday at 9:00.",
        subject="Appointment reminder",
        html="<p>Your appointment is on <b>Tuesday</b>.</p>",
        attachments=(
            Attachment(filename="visit.ics", data=calendar, content_type="text/calendar"),
            Attachment(filename="map.png", data=bytes(range(256)), content_type="image/png"),
            Attachment(filename="notes.bin", data=b"\x00\x01", content_type="nonsense"),
        ),
    )

    receipt = adapter.send(POINT, content, CTX)

    (received,) = mailroom.received
    message = received.message
    assert received.mail_from == "reminders@clinic.example.com"
    assert received.rcpt_tos == ["dana.ruiz@example.org"]
    assert receipt.provider_id is not None
    assert receipt.provider_id == message["Message-ID"]
    assert receipt.provider_id.startswith("<")
    assert receipt.provider_id.endswith("@clinic.example.com>")
    assert message["From"] == SENDER
    assert message["To"] == "dana.ruiz@example.org"
    assert message["Subject"] == "Appointment reminder"
    assert message["Reply-To"] == "front-desk@clinic.example.com"
    assert message["X-Multichannel-Dispatch"] == "dsp_0001"
    assert message["Date"]
    assert message.get_content_type() == "multipart/mixed"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Your appointment is on Tuesday at 9:00."
    assert html.get_content().strip() == "<p>Your appointment is on <b>Tuesday</b>.</p>"
    parts = [
        (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        for part in message.iter_attachments()
    ]
    assert parts == [
        ("visit.ics", "text/calendar", calendar),
        ("map.png", "image/png", bytes(range(256))),
        ("notes.bin", "application/octet-stream", b"\x00\x01"),
    ]


def test_text_only_content_is_a_single_plain_part(start_server: StartServer) -> None:
    mailroom, port = start_server()

    plain(port).send(POINT, Content(body="Line one\nLine two"), CTX)

    message = mailroom.received[0].message
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Line one\nLine two\n"
    assert message["Subject"] == "Line one"
    assert "Reply-To" not in message


def test_subject_line_breaks_cannot_inject_headers(start_server: StartServer) -> None:
    mailroom, port = start_server()
    content = Content(body="hi", subject="Hello\r\nBcc: everyone@example.net")

    plain(port).send(POINT, content, CTX)

    message = mailroom.received[0].message
    assert message["Subject"] == "Hello Bcc: everyone@example.net"
    assert "Bcc" not in message


def test_blank_body_gets_a_placeholder_subject(start_server: StartServer) -> None:
    mailroom, port = start_server()
    plain(port).send(POINT, Content(body="  \n"), CTX)
    assert mailroom.received[0].message["Subject"] == "(no subject)"


def test_each_send_gets_a_new_message_id(start_server: StartServer) -> None:
    _, port = start_server()
    adapter = plain(port)
    first = adapter.send(POINT, Content(body="one"), CTX)
    second = adapter.send(POINT, Content(body="two"), CTX)
    assert first.provider_id != second.provider_id


def test_asend_delivers_the_same_way(start_server: StartServer) -> None:
    mailroom, port = start_server()
    receipt = asyncio.run(plain(port).asend(POINT, Content(body="async"), CTX))
    assert receipt.provider_id == mailroom.received[0].message["Message-ID"]


# TLS and login.


def test_starttls_with_a_custom_ca_and_login(
    start_server: StartServer, certificate: Certificate
) -> None:
    mailroom, port = start_server(tls_context=certificate.server, require_starttls=True, auth=True)

    secured(port, certificate).send(POINT, Content(body="over TLS"), CTX)

    (received,) = mailroom.received
    assert received.tls
    assert received.login == USERNAME.encode()


def test_implicit_tls(start_server: StartServer, certificate: Certificate) -> None:
    mailroom, port = start_server(ssl_context=certificate.server)
    adapter = plain(port, ssl=True, tls_context=certificate.client)

    adapter.send(POINT, Content(body="implicit TLS"), CTX)

    assert mailroom.received[0].message.get_content().strip() == "implicit TLS"


def test_an_untrusted_certificate_is_a_provider_error(
    start_server: StartServer, certificate: Certificate
) -> None:
    mailroom, port = start_server(tls_context=certificate.server, require_starttls=True)
    with pytest.raises(ProviderError, match="TLS with the server failed"):
        plain(port, starttls=True).send(POINT, Content(body="hi"), CTX)
    assert mailroom.received == []


def test_a_server_without_starttls_is_a_provider_error(start_server: StartServer) -> None:
    mailroom, port = start_server()
    with pytest.raises(ProviderError, match="lacks a needed feature"):
        plain(port, starttls=True).send(POINT, Content(body="hi"), CTX)
    assert mailroom.received == []


def test_implicit_tls_against_a_plain_server_is_a_provider_error(
    start_server: StartServer, certificate: Certificate
) -> None:
    _, port = start_server()
    with pytest.raises(ProviderError, match="TLS"):
        plain(port, ssl=True, tls_context=certificate.client).send(POINT, Content(body="hi"), CTX)


# The reply table, one case per row.


def test_a_refused_login_is_a_provider_error_without_the_password(
    start_server: StartServer, certificate: Certificate
) -> None:
    _, port = start_server(tls_context=certificate.server, auth=True)
    adapter = secured(port, certificate, password="wrong-" + PASSWORD)
    with pytest.raises(ProviderError) as caught:
        adapter.send(POINT, Content(body="hi"), CTX)
    assert caught.value.status == 535
    assert caught.value.code == "5.7.8"
    assert "refused the login" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value.__cause__)


def test_a_temporary_login_failure_is_transient(
    start_server: StartServer, certificate: Certificate
) -> None:
    mailroom, port = start_server(tls_context=certificate.server, auth=True)
    mailroom.auth_reply = "454 4.7.0 Temporary authentication failure"
    with pytest.raises(TransientError, match="login failed for now") as caught:
        secured(port, certificate).send(POINT, Content(body="hi"), CTX)
    assert caught.value.status == 454


def test_a_server_requiring_login_refuses_the_sender_as_a_provider_error(
    start_server: StartServer, certificate: Certificate
) -> None:
    _, port = start_server(tls_context=certificate.server, auth=True)
    adapter = plain(port, starttls=True, tls_context=certificate.client)
    with pytest.raises(ProviderError, match="refused the sender") as caught:
        adapter.send(POINT, Content(body="hi"), CTX)
    assert caught.value.status == 530


SERVER_REPLIES = [
    pytest.param(
        "rcpt_reply",
        "550 5.1.1 <dana.ruiz@example.org>: Recipient address rejected: User unknown",
        PermanentError,
        550,
        "refused the recipient",
        id="rcpt-550",
    ),
    pytest.param(
        "rcpt_reply", "450 4.2.0 Greylisted, try later", TransientError, 450, "deferred", id="450"
    ),
    pytest.param("rcpt_reply", "451 4.3.0 Local error", TransientError, 451, "deferred", id="451"),
    pytest.param("rcpt_reply", "452 4.5.3 Too many", TransientError, 452, "deferred", id="452"),
    pytest.param("mail_reply", "451 4.3.0 Try later", TransientError, 451, "sender", id="mail-4xx"),
    pytest.param(
        "data_reply", "451 4.3.0 Queue full", TransientError, 451, "the message", id="data-4xx"
    ),
    pytest.param(
        "data_reply", "554 5.7.1 Spam detected", PermanentError, 554, "the message", id="data-5xx"
    ),
]


@pytest.mark.parametrize(("stage", "reply", "expected", "status", "words"), SERVER_REPLIES)
def test_each_server_reply_maps_to_its_error(
    start_server: StartServer,
    stage: str,
    reply: str,
    expected: type[DeliveryError],
    status: int,
    words: str,
) -> None:
    mailroom, port = start_server()
    setattr(mailroom, stage, reply)

    with pytest.raises(DeliveryError) as caught:
        plain(port).send(POINT, Content(body="hi"), CTX)

    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.code == reply.split()[1]
    assert caught.value.provider == "smtp"
    assert words in str(caught.value)
    assert "dana.ruiz@example.org" not in str(caught.value), "addresses in replies are masked"
    assert mailroom.received == []


def test_a_refused_connection_is_transient() -> None:
    with pytest.raises(TransientError, match="could not be reached") as caught:
        plain(free_port()).send(POINT, Content(body="hi"), CTX)
    assert caught.value.status is None


def test_a_server_that_never_greets_times_out_as_transient() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        adapter = plain(silent.getsockname()[1], timeout=0.2)
        with pytest.raises(TransientError):
            adapter.send(POINT, Content(body="hi"), CTX)


# A scripted server for replies aiosmtpd does not give.


class Scripted:
    """Answers one connection: a greeting, then a reply per command (None hangs up)."""

    def __init__(self, greeting: str | None, replies: dict[str, str | None]) -> None:
        self.greeting = greeting
        self.replies: dict[str, str | None] = {
            "EHLO": "250 scripted",
            "DATA": "354 go on",
            ".": "250 queued",
        }
        self.replies.update(replies)
        self.commands: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        connection.settimeout(5)
        with connection, connection.makefile("rb") as lines:
            if self.greeting is None:
                return
            connection.sendall(self.greeting.encode() + b"\r\n")
            in_data = False
            for raw in lines:
                line = raw.decode().rstrip("\r\n")
                if in_data and line != ".":
                    continue
                verb = "." if in_data else line.split(" ", 1)[0].upper()
                in_data = False
                self.commands.append(verb)
                reply = self.replies.get(verb, "250 ok")
                if reply is None:
                    return
                connection.sendall(reply.encode() + b"\r\n")
                in_data = verb == "DATA" and reply.startswith("354")

    def close(self) -> None:
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(greeting: str | None = "220 scripted ESMTP", **replies: str | None) -> Scripted:
        server = Scripted(greeting, replies)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


SCRIPTED_ROWS = [
    pytest.param({"greeting": "421 4.3.2 Busy"}, TransientError, "not taking mail", id="greet-4xx"),
    pytest.param(
        {"greeting": "554 5.7.1 No"}, ProviderError, "refused the connection", id="greet-5"
    ),
    pytest.param(
        {"EHLO": "500 no", "HELO": "421 4.3.0 Busy"}, TransientError, "greeting", id="helo-4xx"
    ),
    pytest.param({"EHLO": "500 no", "HELO": "550 no"}, ProviderError, "greeting", id="helo-5xx"),
    pytest.param({"greeting": None}, TransientError, "hung up", id="hang-up"),
    pytest.param({"RCPT": None}, TransientError, "hung up", id="hang-up-mid-way"),
    pytest.param({"DATA": "250 what"}, ProviderError, "SMTP exchange failed", id="odd-reply"),
]


@pytest.mark.parametrize(("script", "expected", "words"), SCRIPTED_ROWS)
def test_each_scripted_reply_maps_to_its_error(
    scripted: Callable[..., Scripted],
    script: dict[str, str | None],
    expected: type[DeliveryError],
    words: str,
) -> None:
    server = scripted(**script)
    with pytest.raises(DeliveryError) as caught:
        plain(server.port).send(POINT, Content(body="hi"), CTX)
    assert type(caught.value) is expected
    assert words in str(caught.value)


def test_no_common_login_mechanism_is_a_provider_error(scripted: Callable[..., Scripted]) -> None:
    server = scripted(EHLO="250-scripted\r\n250 AUTH XOAUTH2")
    adapter = plain(server.port, username=USERNAME, password=PASSWORD)
    with pytest.raises(ProviderError, match="SMTP exchange failed"):
        adapter.send(POINT, Content(body="hi"), CTX)


def test_a_server_without_auth_is_a_provider_error(scripted: Callable[..., Scripted]) -> None:
    server = scripted()
    adapter = plain(server.port, username=USERNAME, password=PASSWORD)
    with pytest.raises(ProviderError, match="lacks a needed feature"):
        adapter.send(POINT, Content(body="hi"), CTX)


def test_a_hang_up_after_the_message_was_queued_still_counts(
    scripted: Callable[..., Scripted],
) -> None:
    server = scripted(QUIT=None)
    receipt = plain(server.port).send(POINT, Content(body="hi"), CTX)
    assert receipt.provider_id
    server.close()
    assert server.commands == ["EHLO", "MAIL", "RCPT", "DATA", ".", "QUIT"]


# Secrets and logs.


def test_the_password_stays_out_of_reprs_and_logs(
    start_server: StartServer, certificate: Certificate, caplog: pytest.LogCaptureFixture
) -> None:
    mailroom, port = start_server(tls_context=certificate.server, auth=True)
    mailroom.rcpt_reply = "550 5.1.1 <dana.ruiz@example.org>: unknown"
    adapter = secured(port, certificate)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PermanentError):
        adapter.send(POINT, Content(body="hi"), CTX)

    # The stand-in server's own log ("mail.log") is not the library's.
    ours = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.")
    )
    assert PASSWORD not in repr(adapter)
    assert USERNAME in repr(adapter)
    assert PASSWORD not in ours
    assert "dana.ruiz@example.org" not in ours
    assert "d***@example.org" in ours


# Configuration.


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"starttls": True, "ssl": True}, "starttls and ssl are both on"),
        ({"username": USERNAME}, "username and password go together"),
        ({"password": PASSWORD}, "username and password go together"),
        ({"port": 0}, "not a TCP port"),
        ({"timeout": 0}, "timeout"),
        ({"host": " "}, "host is empty"),
        ({"from_email": "Clinic"}, "from_email 'Clinic' is not an email address"),
        ({"from_email": "a@b.example\r\nBcc: x@y.example"}, "not an email address"),
        ({"reply_to": "desk"}, "reply_to 'desk' is not an email address"),
        (
            {"username": USERNAME, "password": PASSWORD, "starttls": False},
            "would cross the network to smtp.example.com unencrypted",
        ),
    ],
)
def test_bad_settings_are_configuration_errors(settings: dict[str, Any], words: str) -> None:
    arguments: dict[str, Any] = {"host": "smtp.example.com", "from_email": SENDER}
    arguments.update(settings)
    with pytest.raises(ConfigurationError, match=words) as caught:
        SMTPEmail(**arguments)
    assert PASSWORD not in str(caught.value)


def test_from_env_through_the_entry_point(
    monkeypatch: pytest.MonkeyPatch, start_server: StartServer, certificate: Certificate
) -> None:
    mailroom, port = start_server()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_FROM", SENDER)
    monkeypatch.setenv("SMTP_PORT", str(port))
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("SMTP_TIMEOUT", "5")
    for name in ("SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_SSL", "SMTP_REPLY_TO"):
        monkeypatch.delenv(name, raising=False)

    (point,) = [item for item in entry_points(group="multichannel.adapters") if item.name == "smtp"]
    adapter = point.load()()

    assert isinstance(adapter, SMTPEmail)
    adapter.send(POINT, Content(body="from the environment"), CTX)
    assert mailroom.received[0].message["From"] == SENDER


def test_from_env_with_ssl_alone_means_implicit_tls_on_465(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SMTP_FROM", SENDER)
    monkeypatch.setenv("SMTP_SSL", "true")
    monkeypatch.setenv("SMTP_USERNAME", USERNAME)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    for name in ("SMTP_PORT", "SMTP_STARTTLS"):
        monkeypatch.delenv(name, raising=False)

    adapter = SMTPEmail.from_env()

    assert repr(adapter) == (
        f"SMTPEmail(name='smtp', host='smtp.example.com', port=465, ssl, from_email={SENDER!r}, "
        f"username='{USERNAME}')"
    )


def test_from_env_defaults_to_starttls_on_587(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SMTP_FROM", SENDER)
    for name in ("SMTP_PORT", "SMTP_STARTTLS", "SMTP_SSL", "SMTP_USERNAME", "SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    assert "port=587, starttls" in repr(SMTPEmail.from_env())


def test_from_env_refuses_a_password_without_a_username(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SMTP_FROM", SENDER)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    with pytest.raises(ConfigurationError, match="username and password go together") as caught:
        SMTPEmail.from_env()
    assert PASSWORD not in str(caught.value)


def test_from_env_names_missing_and_invalid_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_HOST", "SMTP_FROM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMTP_PORT", "submission")
    with pytest.raises(ConfigurationError) as caught:
        SMTPEmail.from_env()
    assert "SMTP_HOST is not set" in str(caught.value)
    assert "SMTP_FROM is not set" in str(caught.value)
    assert "SMTP_PORT is invalid" in str(caught.value)


# The contract every adapter owes the dispatcher, against a STARTTLS server with AUTH.


class TestSMTPContract(AdapterContract):
    failures: ClassVar[frozenset[FailureKind]] = frozenset({"transient", "permanent", "provider"})

    @pytest.fixture(autouse=True)
    def _server(self, start_server: StartServer, certificate: Certificate) -> None:
        self.certificate = certificate
        self.mailroom, self.port = start_server(
            tls_context=certificate.server, require_starttls=True, auth=True
        )

    def make_adapter(self) -> SMTPEmail:
        return secured(self.port, self.certificate)

    def make_point(self) -> ContactPoint:
        return POINT

    def arrange_accept(self, point: ContactPoint) -> None:
        self.mailroom.rcpt_reply = self.mailroom.auth_reply = None

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        self.arrange_accept(point)
        if kind == "transient":
            self.mailroom.rcpt_reply = "451 4.3.0 Try again later"
        elif kind == "permanent":
            self.mailroom.rcpt_reply = "550 5.1.1 No such user"
        else:
            self.mailroom.auth_reply = "535 5.7.8 Authentication credentials invalid"

    def secrets(self) -> Sequence[str]:
        return (PASSWORD,)

    def test_opt_out_is_opted_out(self) -> None:
        """SMTP has no opt-out reply; a server that takes the message gives a receipt."""
        self.arrange_accept(POINT)
        receipt = self._send(self.make_adapter(), POINT)
        assert receipt.provider_id == self.mailroom.received[0].message["Message-ID"]
