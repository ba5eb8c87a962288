"""Local stand-ins of the provider endpoints, so the real adapters can be watched at work.

`run_standins` starts, on 127.0.0.1 and ephemeral ports, HTTP servers that
answer like Twilio (Messages and Calls), SendGrid (v3 mail/send) and Telnyx
(Programmable Fax), and an SMTP server when aiosmtpd is installed. The real
adapters and SDKs talk to them through ``base_url`` (SMTP through host and
port), so ``multichannel demo --providers local`` shows real traffic without
an account. Credentials are required to be present, never checked, and never
recorded: `Received.auth` keeps the scheme and the user name only.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from multichannel.cli.demo.answers import (
    Answer,
    Request,
    Respond,
    as_number,
    sendgrid,
    telnyx,
    twilio,
)

__all__ = ["Received", "Standins", "read_request", "run_standins", "write_answer"]

HOST = "127.0.0.1"
_SMTP_MISSING = "no SMTP stand-in: it needs aiosmtpd (pip install aiosmtpd)"

_SMTP_REPLIES: dict[int, str] = {
    450: "4.2.1 <{to}>: Mailbox temporarily unavailable, try again later",
    451: "4.3.0 <{to}>: Temporary local problem, try again later",
    452: "4.2.2 <{to}>: Mailbox full, try again later",
    550: "5.1.1 <{to}>: Recipient address rejected: User unknown",
    552: "5.2.2 <{to}>: Mailbox full",
    553: "5.1.3 <{to}>: Mailbox name not allowed",
    554: "5.7.1 <{to}>: Relay access denied",
}


@dataclass(frozen=True)
class Received:
    """One request a stand-in answered: who, what, the parsed body and the answer's status.

    ``provider`` is ``twilio``, ``sendgrid``, ``telnyx`` or ``smtp``. For SMTP,
    ``method`` is the command (``RCPT`` for a refused recipient, ``DATA`` for an
    accepted message) and ``path`` the envelope sender. ``auth`` is the scheme
    and user name with the secret replaced by ``***``, or None.
    """

    provider: str
    method: str
    path: str
    body: Mapping[str, Any]
    status: int
    auth: str | None = None


@dataclass
class _Book:
    """What every stand-in shares: the requests seen and the addresses to refuse."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[Received] = field(default_factory=list)
    refused: dict[str, int | str | None] = field(default_factory=dict)

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def refusal(self, address: str) -> tuple[bool, int | str | None]:
        with self.lock:
            key = _key(address)
            return key in self.refused, self.refused.get(key)


def _key(address: str) -> str:
    return address.strip().lower()


class Standins:
    """Running stand-ins: where they listen, what they received, whom they refuse.

    ``twilio_url``, ``sendgrid_url`` and ``telnyx_url`` are origins to pass as
    an adapter's ``base_url``; ``smtp_host`` and ``smtp_port`` are None when
    aiosmtpd is missing, and ``smtp_problem`` then says so.
    """

    def __init__(
        self,
        *,
        book: _Book,
        twilio_url: str,
        sendgrid_url: str,
        telnyx_url: str,
        smtp_port: int | None,
        smtp_problem: str | None,
    ) -> None:
        self._book = book
        self.twilio_url = twilio_url
        self.sendgrid_url = sendgrid_url
        self.telnyx_url = telnyx_url
        self.smtp_host: str | None = None if smtp_port is None else HOST
        self.smtp_port = smtp_port
        self.smtp_problem = smtp_problem

    @property
    def received(self) -> list[Received]:
        """A copy of every request answered so far, oldest first."""
        with self._book.lock:
            return list(self._book.received)

    def reject(self, address: str, code: int | str | None = None) -> None:
        """Refuse every later send to ``address`` (a phone number or an email address).

        ``code`` is read in the vocabulary of each stand-in that sees the
        address: a Twilio error code (21211, 21610, 21614, 20429, ...), a
        SendGrid HTTP status (400, 401, 429, 500, ...), a Telnyx error code
        ("10002", "10011", ...) or an SMTP reply code (450, 550, ...). A stand-in
        that does not know the code refuses with its invalid-recipient answer:
        Twilio 21211, SendGrid 400, Telnyx 10002, SMTP 550.
        """
        with self._book.lock:
            self._book.refused[_key(address)] = code

    def __repr__(self) -> str:
        smtp = f"{HOST}:{self.smtp_port}" if self.smtp_port else "off"
        return (
            f"Standins(twilio={self.twilio_url}, sendgrid={self.sendgrid_url}, "
            f"telnyx={self.telnyx_url}, smtp={smtp})"
        )


def _auth(header: str | None) -> str | None:
    """The scheme and user of an Authorization header, never its secret."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(credentials, validate=True).decode().partition(":")[0]
        except ValueError:
            user = "?"
        return f"Basic {user}:***"
    return f"{scheme} ***"


def read_request(handler: BaseHTTPRequestHandler) -> Request:
    """The request ``handler`` is serving, its body read whole."""
    length = int(handler.headers.get("Content-Length") or 0)
    return Request(
        method=handler.command,
        path=urlsplit(handler.path).path,
        headers={name.lower(): value for name, value in handler.headers.items()},
        body=handler.rfile.read(length),
    )


def write_answer(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    """Send ``answer`` as the response: its status, headers and JSON payload."""
    body = b"" if answer.payload is None else json.dumps(answer.payload).encode()
    handler.send_response(answer.status)
    if body:
        handler.send_header("Content-Type", "application/json")
    for name, value in answer.headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _handler(provider: str, respond: Respond, book: _Book) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"multichannel-standin-{provider}"

        def do_POST(self) -> None:
            request = read_request(self)
            answer, parsed = respond(request, book.refusal)
            auth = _auth(self.headers.get("Authorization"))
            book.record(Received(provider, self.command, request.path, parsed, answer.status, auth))
            write_answer(self, answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the caller reads `Standins.received` instead of a log."""

    return Handler


class _SMTPHandler:
    """aiosmtpd hooks: refuse recipients the book says to refuse, record every message."""

    def __init__(self, book: _Book) -> None:
        self.book = book

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refused, code = self.book.refusal(address)
        if not refused:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        reply = as_number(code) if 400 <= as_number(code) < 600 else 550
        default = ("4" if reply < 500 else "5") + ".0.0 <{to}>: Recipient refused"
        text = _SMTP_REPLIES.get(reply, default).format(to=address)
        body = {"mail_from": envelope.mail_from, "rcpt_to": address}
        self.book.record(
            Received("smtp", "RCPT", str(envelope.mail_from), body, reply, _smtp_auth(session))
        )
        return f"{reply} {text}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content or b""
        message = message_from_bytes(raw if isinstance(raw, bytes) else raw.encode())
        body = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "subject": message.get("Subject"),
            "message_id": message.get("Message-ID"),
            "content_type": message.get_content_type(),
        }
        self.book.record(
            Received("smtp", "DATA", str(envelope.mail_from), body, 250, _smtp_auth(session))
        )
        return "250 Message accepted for delivery"


def _smtp_auth(session: Any) -> str | None:
    login = getattr(session, "auth_data", None)
    return None if login is None else f"LOGIN {login}:***"


def _accept_any_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    user = getattr(data, "login", b"")
    return AuthResult(success=True, auth_data=user.decode() if isinstance(user, bytes) else user)


class _DropLoginDataWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def _free_port() -> int:
    # aiosmtpd's Controller must be told a port before it binds, so ask the OS
    # for an unused one; the gap before aiosmtpd binds it is a few microseconds.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _serve_http(stack: ExitStack, provider: str, respond: Respond, book: _Book) -> str:
    server = ThreadingHTTPServer((HOST, 0), _handler(provider, respond, book))
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"multichannel-standin-{provider}",
        daemon=True,
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    stack.callback(stop)
    return f"http://{HOST}:{server.server_address[1]}"


def _serve_smtp(stack: ExitStack, book: _Book) -> int | None:
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        return None
    port = _free_port()
    controller = Controller(
        _SMTPHandler(book),
        hostname=HOST,
        port=port,
        authenticator=_accept_any_login,
        auth_require_tls=False,
    )
    # aiosmtpd logs a warning about its own deprecated Session.login_data on
    # every AUTH; it says nothing about the client, so it is kept out of the demo.
    quiet = _DropLoginDataWarning()
    logging.getLogger("mail.log").addFilter(quiet)
    stack.callback(logging.getLogger("mail.log").removeFilter, quiet)
    controller.start()
    stack.callback(controller.stop)
    return port


@contextmanager
def run_standins(*, smtp: bool = True) -> Iterator[Standins]:
    """Run the provider stand-ins on 127.0.0.1 while the block runs; stop them all after.

    ``smtp=False`` skips the SMTP stand-in. Without aiosmtpd it is skipped too,
    and `Standins.smtp_problem` says why. Raises OSError if a port cannot be bound.
    """
    book = _Book()
    with ExitStack() as stack:
        twilio_url = _serve_http(stack, "twilio", twilio, book)
        sendgrid_url = _serve_http(stack, "sendgrid", sendgrid, book)
        telnyx_url = _serve_http(stack, "telnyx", telnyx, book)
        smtp_port = _serve_smtp(stack, book) if smtp else None
        problem = None if smtp_port is not None or not smtp else _SMTP_MISSING
        yield Standins(
            book=book,
            twilio_url=twilio_url,
            sendgrid_url=sendgrid_url,
            telnyx_url=telnyx_url,
            smtp_port=smtp_port,
            smtp_problem=problem,
        )
