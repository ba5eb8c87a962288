"""The HTTP adapters' kept connections and native async path, seen from the server's side.

A small HTTP/1.1 server on 127.0.0.1 stands in for Twilio, SendGrid and Telnyx
at once (and for a proxy): it counts the TCP connections it is opened and the
ones the client closes, and keeps every request. Each adapter's ``send``
(requests) and ``asend`` (aiohttp) meet it, so both paths are compared on one
wire: the same requests, the same errors for the same answers, connections kept.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from multichannel import (
    ConfigurationError,
    ContactPoint,
    Content,
    DeliveryError,
    Outbox,
    SendContext,
    TransientError,
)
from multichannel.adapters.base import BaseAdapter
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.smtp import SMTPEmail
from multichannel.adapters.telnyx import TelnyxFax
from multichannel.adapters.twilio_sms import TwilioSMS
from multichannel.adapters.twilio_voice import TwilioVoiceDrop

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-token-never-shown"
SENDGRID_KEY = "SG.speedpaths-key.never-shown-0123456789"
TELNYX_KEY = "KEY0190telnyxSPEEDPATHSsecret"
CTX = SendContext(dispatch_id="d-1", contact_id="c-1")
TEXT = Content(body="Your table is ready ☕", subject="Table")
FAX = Content(body="", media_url="https://files.example.com/referral.pdf")
KINDS = ["twilio-sms", "twilio-voice", "sendgrid", "telnyx-fax"]


@dataclass(frozen=True)
class Seen:
    """One request as the server read it."""

    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def accepted(path: str) -> Answer:
    """The acceptance each provider sends for a request to ``path``."""
    if path.endswith("/Messages.json"):
        return Answer(201, json.dumps({"sid": "SM" + "1" * 32, "status": "queued"}).encode())
    if path.endswith("/Calls.json"):
        return Answer(201, json.dumps({"sid": "CA" + "2" * 32, "status": "queued"}).encode())
    if path == "/v3/mail/send":
        return Answer(202, b"", {"X-Message-Id": "sg-message-1"})
    if path == "/v2/faxes":
        return Answer(202, json.dumps({"data": {"id": "fax-1", "status": "queued"}}).encode())
    return Answer(404, b"{}")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.opened = 0
        self.closed = 0
        self.seen: list[Seen] = []
        self.answer: Callable[[str], Answer] = accepted

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def all_closed(self) -> bool:
        """True once every connection opened has been closed by the client (waits a little)."""
        deadline = time.monotonic() + 5  # a safety bound, not a timing assertion
        while time.monotonic() < deadline:
            with self.lock:
                if self.opened == self.closed:
                    return True
            time.sleep(0.01)
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that kept connections show
    disable_nagle_algorithm = True
    server: Server

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.opened += 1

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.closed += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = Seen(self.path, dict(self.headers.items()), body)
        with self.server.lock:
            self.server.seen.append(seen)
        answer = self.server.answer(seen.path)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join()


def make(kind: str, base_url: str, **settings: Any) -> BaseAdapter:
    """An adapter of ``kind`` sending to ``base_url``."""
    if kind == "twilio-sms":
        return TwilioSMS(
            account_sid=SID,
            auth_token=TOKEN,
            from_number="+15005550006",
            base_url=base_url,
            **settings,
        )
    if kind == "twilio-voice":
        return TwilioVoiceDrop(
            account_sid=SID,
            auth_token=TOKEN,
            from_number="+15005550006",
            base_url=base_url,
            **settings,
        )
    if kind == "sendgrid":
        return SendGridEmail(
            api_key=SENDGRID_KEY,
            from_email="Clinic <clinic@example.com>",
            base_url=base_url,
            **settings,
        )
    return TelnyxFax(
        api_key=TELNYX_KEY,
        connection_id="1684641123236054244",
        from_number="+13125790015",
        base_url=base_url,
        **settings,
    )


def point(kind: str) -> ContactPoint:
    if kind == "sendgrid":
        return ContactPoint(channel="email", address="ada@example.com")
    channel = {"twilio-sms": "sms", "twilio-voice": "voice"}.get(kind, "fax")
    return ContactPoint(channel=channel, address="+17345550100")


def content(kind: str) -> Content:
    return FAX if kind == "telnyx-fax" else TEXT


def secrets(kind: str) -> list[str]:
    if kind.startswith("twilio"):
        return [TOKEN, base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()]
    return [SENDGRID_KEY if kind == "sendgrid" else TELNYX_KEY]


def send(adapter: BaseAdapter, kind: str) -> Any:
    return adapter.send(point(kind), content(kind), CTX)


async def asend(adapter: BaseAdapter, kind: str) -> Any:
    return await adapter.asend(point(kind), content(kind), CTX)


def outcome(call: Callable[[], object]) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        call()
    return caught.value


# Kept connections.


@pytest.mark.parametrize("kind", KINDS)
def test_sync_sends_reuse_one_connection_until_closed(kind: str, server: Server) -> None:
    adapter = make(kind, server.origin)

    receipts = [send(adapter, kind) for _ in range(3)]

    assert all(receipt.provider_id for receipt in receipts)
    assert (len(server.seen), server.opened) == (3, 1)
    adapter.close()
    assert server.all_closed()
    send(adapter, kind)  # a closed adapter opens a new connection when used again
    assert server.opened == 2


@pytest.mark.parametrize("kind", KINDS)
def test_async_sends_reuse_one_connection_until_aclose(kind: str, server: Server) -> None:
    adapter = make(kind, server.origin)

    async def main() -> tuple[int, int]:
        for _ in range(3):
            await asend(adapter, kind)
        before = server.opened
        await adapter.aclose()
        await asend(adapter, kind)
        await adapter.aclose()
        return before, server.opened

    assert asyncio.run(main()) == (1, 2)
    assert len(server.seen) == 4
    assert server.all_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_async_sends_share_the_pool(kind: str, server: Server) -> None:
    adapter = make(kind, server.origin, max_connections=4)

    async def main() -> None:
        async with adapter:
            for _ in range(3):
                await asyncio.gather(*(asend(adapter, kind) for _ in range(8)))

    asyncio.run(main())

    assert len(server.seen) == 24
    assert server.opened <= 4, "no more connections than max_connections, and they are reused"
    assert server.all_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_a_session_never_closed_is_closed_when_its_event_loop_ends(
    kind: str, server: Server
) -> None:
    adapter = make(kind, server.origin)

    asyncio.run(asend(adapter, kind))  # no aclose(): asyncio.run's shutdown closes it
    asyncio.run(asend(adapter, kind))  # a new loop gets its own session

    assert (len(server.seen), server.opened) == (2, 2)
    assert server.all_closed()


@pytest.mark.parametrize("kind", KINDS)
def test_with_and_async_with_close_the_connections(kind: str, server: Server) -> None:
    with make(kind, server.origin) as adapter:
        send(adapter, kind)

    async def main() -> None:
        async with make(kind, server.origin) as other:
            await asend(other, kind)

    asyncio.run(main())

    assert server.opened == 2
    assert server.all_closed()


def test_an_adapter_without_connections_closes_as_a_no_op() -> None:
    outbox = Outbox()

    async def main() -> None:
        async with outbox:
            await outbox.asend(point("sendgrid"), TEXT, CTX)

    with outbox:
        outbox.send(point("sendgrid"), TEXT, CTX)
    asyncio.run(main())

    assert len(outbox.sent) == 2


# The same request, the same errors, sync or async.


@pytest.mark.parametrize("kind", KINDS)
def test_async_puts_the_same_request_on_the_wire_as_sync(kind: str, server: Server) -> None:
    adapter = make(kind, server.origin)

    send(adapter, kind)
    asyncio.run(asend(adapter, kind))

    sync, async_ = server.seen
    assert async_.path == sync.path
    assert async_.body == sync.body
    for header in ("Content-Type", "Authorization", "Accept", "User-Agent"):
        assert async_.headers.get(header) == sync.headers.get(header), header
    assert sync.headers.get("Authorization")
    if kind == "sendgrid":
        payload = json.loads(sync.body)
        assert payload["custom_args"] == {"dispatch_id": "d-1"}
        assert payload["from"] == {"name": "Clinic", "email": "clinic@example.com"}


def refusal(kind: str, status: int) -> bytes:
    """An error body as ``kind``'s provider writes one for ``status``."""
    if kind.startswith("twilio"):
        code = {400: 21211, 401: 20003, 429: 20429, 500: 20500, 503: 20503}[status]
        return json.dumps({"code": code, "message": "refused", "status": status}).encode()
    if kind == "sendgrid":
        return json.dumps({"errors": [{"message": "refused", "field": "from"}]}).encode()
    error = {"code": "10002", "title": "Refused", "detail": "refused", "source": {"pointer": "/to"}}
    return json.dumps({"errors": [error]}).encode()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (400, {}),
        (401, {}),
        (429, {"Retry-After": "7"}),
        (500, {}),
        (503, {"Retry-After": "30"}),
    ],
)
def test_async_maps_each_answer_exactly_as_sync_does(
    kind: str, status: int, headers: dict[str, str], server: Server
) -> None:
    server.answer = lambda path: Answer(status, refusal(kind, status), headers)
    adapter = make(kind, server.origin)

    sync = outcome(lambda: send(adapter, kind))
    async_ = outcome(lambda: asyncio.run(asend(adapter, kind)))

    assert type(async_) is type(sync)
    assert (async_.status, async_.code, str(async_)) == (sync.status, sync.code, str(sync))
    assert async_.status == status
    if status in (429, 503):
        assert isinstance(sync, TransientError)
        assert isinstance(async_, TransientError)
        assert async_.retry_after == sync.retry_after
        assert sync.retry_after is not None
        assert sync.retry_after.total_seconds() == int(headers["Retry-After"])
    elif status == 500:
        assert isinstance(async_, TransientError)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("kind", KINDS)
def test_no_answer_is_transient_on_both_paths(
    kind: str, closed_port: int, silent_port: int
) -> None:
    refused = make(kind, f"http://127.0.0.1:{closed_port}")
    silent = make(kind, f"http://127.0.0.1:{silent_port}", timeout=0.2)

    for adapter in (refused, silent):
        sync = outcome(lambda adapter=adapter: send(adapter, kind))  # type: ignore[misc]
        async_ = outcome(lambda adapter=adapter: asyncio.run(asend(adapter, kind)))  # type: ignore[misc]
        assert isinstance(sync, TransientError)
        assert type(async_) is type(sync)
        assert str(async_).split(":")[0] == str(sync).split(":")[0]


@pytest.mark.parametrize("kind", KINDS)
def test_secrets_stay_out_of_errors_and_logs_on_the_async_path(
    kind: str, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.answer = lambda path: Answer(401, refusal(kind, 401))
    adapter = make(kind, server.origin)
    caplog.set_level(logging.DEBUG)  # aiohttp's and urllib3's loggers too

    error = outcome(lambda: asyncio.run(asend(adapter, kind)))

    shown = [repr(adapter), str(error), repr(error), caplog.text]
    cause = error.__cause__
    while cause is not None:
        shown += [str(cause), repr(cause)]
        cause = cause.__cause__
    for secret in secrets(kind):
        for text in shown:
            assert secret not in text


# Settings.


@pytest.mark.parametrize("kind", [*KINDS, "smtp"])
@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "8"])
def test_max_connections_must_be_a_whole_number_of_at_least_one(kind: str, bad: object) -> None:
    def build() -> object:
        if kind == "smtp":
            return SMTPEmail(host="127.0.0.1", from_email="a@example.com", max_connections=bad)  # type: ignore[arg-type]
        return make(kind, "http://127.0.0.1:9", max_connections=bad)

    with pytest.raises(ConfigurationError, match="max_connections"):
        build()


@pytest.fixture
def clean_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("kind", KINDS)
def test_the_environment_proxy_is_read_once_when_the_adapter_is_built(
    kind: str, server: Server, clean_proxies: pytest.MonkeyPatch
) -> None:
    port = server.server_address[1]
    clean_proxies.setenv("HTTP_PROXY", f"http://agent:s%40fe@127.0.0.1:{port}")
    adapter = make(kind, "http://localhost:9")  # only reachable through the proxy
    clean_proxies.delenv("HTTP_PROXY")  # read already: changing it now changes nothing

    send(adapter, kind)
    asyncio.run(asend(adapter, kind))

    credentials = "Basic " + base64.b64encode(b"agent:s@fe").decode()
    for seen in server.seen:
        assert seen.target.startswith("http://localhost:9/")
        assert seen.headers.get("Proxy-Authorization") == credentials
    assert len(server.seen) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_no_proxy_keeps_requests_direct(
    kind: str, server: Server, clean_proxies: pytest.MonkeyPatch
) -> None:
    clean_proxies.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    clean_proxies.setenv("NO_PROXY", "127.0.0.1")
    adapter = make(kind, server.origin)

    send(adapter, kind)
    asyncio.run(asend(adapter, kind))

    assert [seen.target.startswith("/") for seen in server.seen] == [True, True]


# SMTP: smtplib has no async client, so asend runs on the adapter's own threads.


class Withheld:
    """A mail server that greets nobody until ``expected`` connections are open at once.

    Then it answers every one with 421 (busy), so each send ends as a
    TransientError. If that many never arrive together (a thread pool too
    small to hold them), it gives up after a safety bound and says so.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.reached = False
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(expected + 8)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        held: list[socket.socket] = []
        deadline = time.monotonic() + 20  # a safety bound, not a timing assertion
        while len(held) < self.expected and time.monotonic() < deadline:
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            held.append(connection)
        self.reached = len(held) >= self.expected
        for connection in held:
            connection.sendall(b"421 4.3.2 busy, try again later\r\n")
            connection.close()
        self._listener.close()

    def join(self) -> None:
        self._thread.join()


def test_smtp_asend_runs_more_sends_at_once_than_the_default_thread_pool() -> None:
    # asyncio.to_thread's default pool holds min(32, cores + 4) threads.
    expected = 40
    server = Withheld(expected)
    adapter = SMTPEmail(
        host="127.0.0.1", port=server.port, from_email="a@example.com", starttls=False
    )

    async def main() -> list[BaseException | Any]:
        async with adapter:
            sends = (adapter.asend(point("sendgrid"), TEXT, CTX) for _ in range(expected))
            return await asyncio.gather(*sends, return_exceptions=True)

    results = asyncio.run(main())
    server.join()

    assert server.reached, f"{expected} sends were never in flight at once"
    assert all(isinstance(result, TransientError) for result in results)
