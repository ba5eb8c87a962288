"""The webhook app under hostile or unlucky conditions: huge or deep bodies, a busy store,
proxies in front of it, and the health probe a load balancer calls."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import os
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from click.testing import Result
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from twilio.request_validator import RequestValidator
from typer.testing import CliRunner

from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    Dispatcher,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
    Preferences,
    Registry,
    Status,
)
from multichannel.cli import app as cli
from multichannel.cli.serve import webhook_app
from multichannel.webhooks import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "twilio-auth-token-for-hardening-SECRET"
NUMBER = "+17345550100"
MASKED = "+1734***0100"
MIB = 1024 * 1024
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
STOP = {"MessageSid": "SM900", "From": NUMBER, "To": "+13125790015", "Body": "STOP"}
ANN = Contact(
    id="ann",
    points=[
        ContactPoint(channel="sms", address=NUMBER),
        ContactPoint(channel="email", address="ann@example.com"),
    ],
    preferences=Preferences(channels=["sms", "email"]),
)

# What each route needs to be taken for signed: (path, header names).
SIGNED_ROUTES = [
    ("/twilio/status", ("X-Twilio-Signature",)),
    (
        "/sendgrid/events",
        ("X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"),
    ),
    ("/telnyx/fax", ("telnyx-signature-ed25519", "telnyx-timestamp")),
]


def every_route(dispatcher: Dispatcher, **settings: Any) -> Starlette:
    return create_app(
        dispatcher,
        twilio_auth_token=TOKEN,
        sendgrid_public_key=SENDGRID_PUBLIC,
        telnyx_public_key=TELNYX_PUBLIC,
        **settings,
    )


@pytest.fixture
def dispatcher(clock: ManualClock, outbox: Outbox) -> Dispatcher:
    return Dispatcher(adapters=[outbox], clock=clock)


def twilio_headers(url: str, form: dict[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form),
    }


def sendgrid_headers(clock: ManualClock, body: bytes) -> dict[str, str]:
    timestamp = str(int(clock.now().timestamp()))
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def telnyx_headers(clock: ManualClock, body: bytes) -> dict[str, str]:
    timestamp = str(int(clock.now().timestamp()))
    signature = TELNYX_KEY.sign(timestamp.encode() + b"|" + body)
    return {
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": timestamp,
    }


def post_stop(client: TestClient) -> httpx.Response:
    url = "http://testserver/twilio/inbound"
    return client.post(
        "/twilio/inbound", content=urlencode(STOP), headers=twilio_headers(url, STOP)
    )


class Upload:
    """An ASGI request body that counts how much of it the app asked for."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        chunk = next(self._chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}


async def call(
    app: Starlette, path: str, headers: dict[str, str], upload: Upload
) -> tuple[int, dict[str, str], bytes]:
    """One POST straight through ASGI, so the test sees exactly how much body was read."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, upload.receive, send)
    [start] = [message for message in sent if message["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], answer_headers, body


# Bodies.


@pytest.mark.parametrize(("path", "names"), SIGNED_ROUTES)
async def test_a_declared_gibibyte_is_refused_before_a_byte_of_it_is_read(
    dispatcher: Dispatcher, path: str, names: tuple[str, ...]
) -> None:
    upload = Upload(itertools.repeat(b"x" * 65536))
    headers = dict.fromkeys(names, "c2lnbmVk") | {"Content-Length": str(1024 * MIB)}

    status, answer, body = await call(every_route(dispatcher), path, headers, upload)

    assert (status, upload.read) == (413, 0)
    assert body == b"the body is longer than 1048576 bytes\n"
    assert answer["connection"] == "close"


@pytest.mark.parametrize(("path", "names"), SIGNED_ROUTES)
async def test_an_undeclared_body_is_cut_off_as_soon_as_it_passes_the_limit(
    dispatcher: Dispatcher, path: str, names: tuple[str, ...]
) -> None:
    chunk = 65536
    upload = Upload(itertools.repeat(b"x" * chunk))  # endless, as a hostile client would send

    status, _, _ = await call(
        every_route(dispatcher), path, dict.fromkeys(names, "c2lnbmVk"), upload
    )

    assert status == 413
    assert upload.read == MIB + chunk


@pytest.mark.parametrize(("path", "names"), SIGNED_ROUTES)
async def test_an_unsigned_request_is_refused_before_its_body_is_read(
    dispatcher: Dispatcher, path: str, names: tuple[str, ...]
) -> None:
    upload = Upload(itertools.repeat(b"x" * 65536))
    headers = dict.fromkeys(names[1:], "c2lnbmVk") | {"Content-Length": str(1024 * MIB)}

    status, _, body = await call(every_route(dispatcher), path, headers, upload)

    assert (status, body, upload.read) == (403, b"signature missing\n", 0)


def test_the_limit_is_configurable_and_a_body_just_at_it_is_read(
    dispatcher: Dispatcher, clock: ManualClock
) -> None:
    body = json.dumps([{"event": "delivered", "email": "ann@example.com"}]).encode()
    headers = sendgrid_headers(clock, body)
    exact = TestClient(
        create_app(dispatcher, sendgrid_public_key=SENDGRID_PUBLIC, max_body=len(body))
    )
    short = TestClient(
        create_app(dispatcher, sendgrid_public_key=SENDGRID_PUBLIC, max_body=len(body) - 1)
    )

    assert exact.post("/sendgrid/events", content=body, headers=headers).status_code == 200
    refused = short.post("/sendgrid/events", content=body, headers=headers)
    assert refused.status_code == 413


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"max_body": 0}, "max_body"),
        ({"max_body": -1}, "max_body"),
        ({"max_body": True}, "max_body"),
        ({"health_path": "healthz"}, "health_path"),
        ({"health_path": "/health?check=1"}, "health_path"),
    ],
)
def test_bad_limits_and_health_paths_are_configuration_errors(
    dispatcher: Dispatcher, settings: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigurationError, match=words):
        create_app(dispatcher, twilio_auth_token=TOKEN, **settings)


def _nested(depth: int) -> list[bytes]:
    return [b"[" * depth + b"]" * depth, b'{"data":' * depth + b"{}" + b"}" * depth]


@pytest.mark.parametrize("body", _nested(100_000), ids=["arrays", "objects"])
@pytest.mark.parametrize("provider", ["sendgrid", "telnyx"])
def test_json_nested_a_hundred_thousand_deep_is_answered_400(
    dispatcher: Dispatcher, clock: ManualClock, provider: str, body: bytes
) -> None:
    client = TestClient(every_route(dispatcher))
    if provider == "sendgrid":
        answer = client.post(
            "/sendgrid/events", content=body, headers=sendgrid_headers(clock, body)
        )
    else:
        answer = client.post("/telnyx/fax", content=body, headers=telnyx_headers(clock, body))

    assert answer.status_code == 400
    assert answer.text == "the body's JSON is nested too deeply\n"


# A busy store.


class LockedStore(MemoryStore):
    """Refuses opt-out writes as a SQLite file held by another writer does, while ``locked``."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times
        self.refused = 0

    def add_opt_out(self, channel: str, address: str) -> None:
        if self.refused < self.times:
            self.refused += 1
            raise sqlite3.OperationalError(f"database is locked (writing {address})")
        super().add_opt_out(channel, address)


def test_a_stop_outlasts_a_store_locked_twice(
    clock: ManualClock, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="multichannel.webhooks")
    store = LockedStore(times=2)
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    before = clock.now()

    answer = post_stop(TestClient(create_app(dispatcher, twilio_auth_token=TOKEN)))

    assert answer.status_code == 200
    assert store.opted_out([("sms", NUMBER)])
    assert store.refused == 2
    # The waits between tries were taken on the dispatcher's clock, never on the wall's.
    assert clock.now() > before
    retries = [r for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retries) == 2
    assert "sqlite3.OperationalError" in retries[0].getMessage()
    assert NUMBER not in caplog.text
    assert TOKEN not in caplog.text


def test_a_store_that_stays_locked_is_answered_503_and_the_redelivery_lands(
    clock: ManualClock, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="multichannel.webhooks")
    store = LockedStore(times=1_000)
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN))

    refused = post_stop(client)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert not store.opted_out([("sms", NUMBER)])
    [final] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "answered 503" in final.getMessage()
    assert NUMBER not in caplog.text

    store.times = store.refused  # the other writer lets go; the provider sends it again
    assert post_stop(client).status_code == 200
    assert store.opted_out([("sms", NUMBER)])


class SlowStore(MemoryStore):
    """An opt-out write that takes as long as the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.finish = threading.Event()

    def add_opt_out(self, channel: str, address: str) -> None:
        self.writing.set()
        if not self.finish.wait(timeout=10):
            # Blocking the event loop would land here: fail once, and let the retry through.
            self.finish.set()
            raise TimeoutError("the test never let the write finish")
        super().add_opt_out(channel, address)


async def test_a_slow_store_write_does_not_hold_up_other_requests(
    clock: ManualClock, outbox: Outbox
) -> None:
    store = SlowStore()
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    transport = httpx.ASGITransport(app=create_app(dispatcher, twilio_auth_token=TOKEN))
    url = "http://testserver/twilio/inbound"
    status = {"MessageSid": "SM901", "MessageStatus": "delivered"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        stop = asyncio.create_task(
            client.post(
                "/twilio/inbound", content=urlencode(STOP), headers=twilio_headers(url, STOP)
            )
        )
        try:
            assert await asyncio.to_thread(store.writing.wait, 10)
            health = await asyncio.wait_for(client.get("/healthz"), 10)
            delivered = await asyncio.wait_for(
                client.post(
                    "/twilio/status",
                    content=urlencode(status),
                    headers=twilio_headers("http://testserver/twilio/status", status),
                ),
                10,
            )
            assert (health.status_code, delivered.status_code) == (200, 200)
            assert not stop.done()
        finally:
            store.finish.set()
        assert (await asyncio.wait_for(stop, 10)).status_code == 200
    assert store.opted_out([("sms", NUMBER)])


# Behind a proxy.


@pytest.mark.parametrize(
    ("forwarded", "signed_url"),
    [
        (
            {"Forwarded": "for=192.0.2.60;proto=https;host=hooks.example.org"},
            "https://hooks.example.org/twilio/status",
        ),
        (
            {
                "Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https;'
                'host="hooks.example.org:8443"'
            },
            "https://hooks.example.org:8443/twilio/status",
        ),
        (
            {"Forwarded": "proto=https;host=outer.example, proto=http;host=inner.internal"},
            "https://outer.example/twilio/status",
        ),
        (
            {"Forwarded": 'For="_a\\",b";Host=outer.example;PROTO=HTTPS, host=inner.internal'},
            "https://outer.example/twilio/status",
        ),
        (
            {"Forwarded": "for=192.0.2.60", "X-Forwarded-Proto": "https"},
            "https://testserver/twilio/status",
        ),
        (
            {"Forwarded": "host=a.example", "X-Forwarded-Host": "b.example"},
            "http://a.example/twilio/status",
        ),
        (
            {"Forwarded": "host=a.example;;garbage", "X-Forwarded-Host": "b.example"},
            "http://b.example/twilio/status",
        ),
        (
            {"Forwarded": 'host="evil.example/twilio/status?"'},
            "http://testserver/twilio/status",
        ),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "hooks.example.org",
                "X-Forwarded-Port": "8443",
            },
            "https://hooks.example.org:8443/twilio/status",
        ),
        (
            {"X-Forwarded-Host": "hooks.example.org:9000", "X-Forwarded-Port": "8080, 80"},
            "http://hooks.example.org:8080/twilio/status",
        ),
        (
            {"X-Forwarded-Host": "[2001:db8::1]:9000", "X-Forwarded-Port": "8080"},
            "http://[2001:db8::1]:8080/twilio/status",
        ),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"},
            "https://testserver/twilio/status",
        ),
        ({"X-Forwarded-Port": "not-a-port"}, "http://testserver/twilio/status"),
    ],
)
def test_trusted_forwarded_headers_give_the_url_twilio_signed(
    dispatcher: Dispatcher, forwarded: dict[str, str], signed_url: str
) -> None:
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN, trust_forwarded=True))
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}

    answer = client.post(
        "/twilio/status",
        content=urlencode(form),
        headers=twilio_headers(signed_url, form) | forwarded,
    )

    assert answer.status_code == 200


def test_the_forwarded_header_is_ignored_unless_trusted(dispatcher: Dispatcher) -> None:
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN))
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}
    signed = twilio_headers("https://hooks.example.org/twilio/status", form)

    answer = client.post(
        "/twilio/status",
        content=urlencode(form),
        headers=signed | {"Forwarded": "proto=https;host=hooks.example.org"},
    )

    assert answer.status_code == 403


# The health probe.


def test_the_health_probe_needs_no_signature(dispatcher: Dispatcher) -> None:
    client = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN))

    answer = client.get("/healthz")

    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert answer.headers["cache-control"] == "no-store"
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


class UnreachableStore(MemoryStore):
    def get(self, dispatch_id: str) -> Any:
        raise sqlite3.OperationalError("unable to open database file /secret/path/store.db")


def test_the_health_probe_answers_503_when_the_store_does_not(
    clock: ManualClock, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="multichannel.webhooks")
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=UnreachableStore())

    answer = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN)).get("/healthz")

    assert (answer.status_code, answer.text) == (503, "store unavailable\n")
    assert "sqlite3.OperationalError" in caplog.text
    assert "/secret/path" not in caplog.text


def test_the_health_probe_can_move_or_be_left_out(dispatcher: Dispatcher) -> None:
    moved = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN, health_path="/live"))
    absent = TestClient(create_app(dispatcher, twilio_auth_token=TOKEN, health_path=None))

    assert moved.get("/live").status_code == 200
    assert moved.get("/healthz").status_code == 404
    assert absent.get("/healthz").status_code == 404


# multichannel serve.


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dispatch.db'}"


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")):
            monkeypatch.delenv(name)


def serve(url: str, *options: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Result, list[Any]]:
    apps: list[Any] = []

    class Server:
        def run(self) -> None:
            pass

    def server(app: Any, **_: Any) -> Server:
        apps.append(app)
        return Server()

    monkeypatch.setattr("multichannel.cli.serve.uvicorn_server", server)
    env = {"COLUMNS": "400", "NO_COLOR": "1", "TWILIO_AUTH_TOKEN": TOKEN}
    result = CliRunner().invoke(cli, ["serve", "--outbox", "--store", url, *options], env=env)
    return result, apps


@pytest.mark.usefixtures("no_secrets")
def test_serve_reports_the_probe_and_applies_max_body(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, [app] = serve(url, "--max-body", "1KiB", monkeypatch=monkeypatch)

    assert result.exit_code == 0, result.output
    assert "  probe GET  /healthz" in result.stderr
    form = {"MessageSid": "SM1", "MessageStatus": "sent", "Padding": "x" * 1024}
    headers = twilio_headers("http://testserver/twilio/status", form)
    answer = TestClient(app).post("/twilio/status", content=urlencode(form), headers=headers)
    assert answer.status_code == 413


@pytest.mark.usefixtures("no_secrets")
@pytest.mark.parametrize("size", ["0", "lots", "1GB", "0.5MiB"])
def test_a_max_body_that_is_not_a_size_is_a_one_line_error(
    url: str, size: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, apps = serve(url, "--max-body", size, monkeypatch=monkeypatch)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --max-body must be a size such as 1MiB")
    assert result.stderr.count("\n") == 1
    assert apps == []


def test_the_served_app_probes_its_sql_store(url: str, clock: ManualClock) -> None:
    built = webhook_app(
        registry=Registry([Outbox()]), store=url, environ={"TWILIO_AUTH_TOKEN": TOKEN}, clock=clock
    )
    try:
        client = TestClient(built.app)
        assert client.get("/healthz").status_code == 200
        dispatch = built.dispatcher.send(ANN, Message(body="Your appointment is at 10."))
        assert post_stop(client).status_code == 200
        assert built.dispatcher.get(dispatch.id).status is Status.CANCELLED
    finally:
        built.store.close()
