"""``multichannel serve``: the webhook app it builds, its start-up report, and a real uvicorn."""

from __future__ import annotations

import os
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from click.testing import Result
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from twilio.request_validator import RequestValidator
from typer.testing import CliRunner

from multichannel import (
    Contact,
    ContactPoint,
    Dispatcher,
    ManualClock,
    Message,
    Outbox,
    Preferences,
    Registry,
    SQLStore,
    Status,
)
from multichannel.cli import app
from multichannel.cli.serve import WebhookApp, uvicorn_server, webhook_app

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 and warns when its test client falls back on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "twilio-auth-token-for-serve-SECRET"
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
ANN = Contact(
    id="ann",
    points=[ContactPoint(channel="sms", address="+17345550100")],
    preferences=Preferences(channels=["sms"]),
)
ASK = Message(body="Reply YES to confirm.", expects_response=True)
TWILIO_ROUTES = ("/twilio/status", "/twilio/inbound", "/twilio/calls")


def invoke(*args: str, env: dict[str, str | None]) -> Result:
    base: dict[str, str | None] = {"COLUMNS": "400", "NO_COLOR": "1", "MULTICHANNEL_STORE": None}
    return CliRunner().invoke(app, list(args), env=base | env)


def one_line_error(result: Result, expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dispatch.db'}"


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("TWILIO", "SENDGRID", "SMTP", "TELNYX", "MULTICHANNEL")):
            monkeypatch.delenv(name)


@pytest.fixture
def waiting(url: str) -> str:
    """A dispatch in the store, waiting for ann to answer her text."""
    store = SQLStore(url)
    dispatcher = Dispatcher(adapters=[Outbox()], clock=ManualClock(MONDAY), store=store)
    dispatch_id = dispatcher.send(ANN, ASK).id
    store.close()
    return dispatch_id


@pytest.fixture
def built(url: str, waiting: str) -> Iterator[WebhookApp]:
    made = webhook_app(
        registry=Registry([Outbox()]),
        store=url,
        environ={"TWILIO_AUTH_TOKEN": TOKEN, "SENDGRID_WEBHOOK_PUBLIC_KEY": "  "},
        clock=ManualClock(MONDAY),
    )
    yield made
    made.store.close()


def signed(url: str, form: dict[str, str]) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, form),
    }


REPLY = {"MessageSid": "SM1", "From": "+17345550100", "To": "+13125790015", "Body": "See you then"}


def test_the_app_serves_the_configured_providers_and_404s_the_others(
    built: WebhookApp, url: str, waiting: str
) -> None:
    client = TestClient(built.app)

    assert built.live == TWILIO_ROUTES
    assert built.dark == (
        ("/sendgrid/events", "SENDGRID_WEBHOOK_PUBLIC_KEY"),
        ("/telnyx/fax", "TELNYX_PUBLIC_KEY"),
    )
    assert client.post("/sendgrid/events", content=b"[]").status_code == 404
    assert client.post("/telnyx/fax", content=b"{}").status_code == 404
    forged = {**signed("http://testserver/twilio/inbound", REPLY), "X-Twilio-Signature": "x"}
    assert (
        client.post("/twilio/inbound", content=urlencode(REPLY), headers=forged).status_code == 403
    )
    assert SQLStore(url, migrate=False).get(waiting).status is Status.AWAITING_RESPONSE

    answer = client.post(
        "/twilio/inbound",
        content=urlencode(REPLY),
        headers=signed("http://testserver/twilio/inbound", REPLY),
    )

    assert answer.status_code == 200
    assert SQLStore(url, migrate=False).get(waiting).status is Status.RESPONDED


def test_the_app_needs_at_least_one_secret(url: str) -> None:
    from multichannel.cli.files import InputError

    with pytest.raises(InputError, match="no webhook secret is set: set TWILIO_AUTH_TOKEN"):
        webhook_app(registry=Registry([Outbox()]), store=url, environ={})


@dataclass
class FakeServer:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, app: Any, *, host: str, port: int, trust_forwarded: bool) -> FakeServer:
        self.calls.append(
            {"app": app, "host": host, "port": port, "trust_forwarded": trust_forwarded}
        )
        return self

    def run(self) -> None:
        self.calls[-1]["ran"] = True


@pytest.mark.usefixtures("no_secrets")
def test_serve_reports_which_routes_are_live_then_runs_uvicorn(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeServer()
    monkeypatch.setattr("multichannel.cli.serve.uvicorn_server", server)

    result = invoke(
        *("serve", "--outbox", "--store", url, "--port", "8123", "--trust-forwarded"),
        env={"TWILIO_AUTH_TOKEN": TOKEN},
    )

    assert result.exit_code == 0, result.output
    [call] = server.calls
    assert isinstance(call["app"], Starlette)
    assert (call["host"], call["port"], call["trust_forwarded"]) == ("127.0.0.1", 8123, True)
    assert call["ran"] is True
    lines = result.stderr.splitlines()
    assert lines[0] == f"webhooks for {url} on http://127.0.0.1:8123"
    assert [line.split()[-1] for line in lines if line.lstrip().startswith("live")] == list(
        TWILIO_ROUTES
    )
    assert "404   POST /sendgrid/events (set SENDGRID_WEBHOOK_PUBLIC_KEY)" in result.stderr
    assert "404   POST /telnyx/fax (set TELNYX_PUBLIC_KEY)" in result.stderr
    assert TOKEN not in result.output


@pytest.mark.usefixtures("no_secrets")
@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        ([], {}, "no webhook secret is set: set TWILIO_AUTH_TOKEN, SENDGRID_WEBHOOK_PUBLIC_KEY"),
        (["--public-url", "ftp://example.com"], {"TWILIO_AUTH_TOKEN": TOKEN}, "public_url"),
        (["--port", "70000"], {"TWILIO_AUTH_TOKEN": TOKEN}, "--port must be between 0 and 65535"),
        ([], {"TELNYX_PUBLIC_KEY": "not a key"}, "the Telnyx public key is neither base64 nor PEM"),
        (["--store", "mysql+nothing://x"], {"TWILIO_AUTH_TOKEN": TOKEN}, "no database is known"),
    ],
)
def test_bad_serve_settings_are_one_line_errors(
    url: str, options: list[str], env: dict[str, str | None], expected: str
) -> None:
    result = invoke("serve", "--outbox", "--store", url, *options, env=env)

    one_line_error(result, expected)
    assert TOKEN not in result.output


@pytest.mark.usefixtures("no_secrets")
def test_serve_without_adapters_says_how_to_configure(url: str) -> None:
    result = invoke("serve", "--store", url, env={"TWILIO_AUTH_TOKEN": TOKEN})

    one_line_error(result, "no adapters are configured")


def test_serve_without_uvicorn_names_the_extra(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)

    result = invoke("serve", "--outbox", "--store", url, env={"TWILIO_AUTH_TOKEN": TOKEN})

    one_line_error(result, "pip install 'multichannel[webhooks]'")


def test_uvicorn_serves_the_app_on_a_real_socket(built: WebhookApp, url: str, waiting: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn_server(built.app, host="127.0.0.1", port=port, trust_forwarded=False)
    # The socket already listens, so the request waits in its backlog until uvicorn serves.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        address = f"http://127.0.0.1:{port}/twilio/inbound"
        answer = httpx.post(
            address, content=urlencode(REPLY), headers=signed(address, REPLY), timeout=30
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert not thread.is_alive()
    assert SQLStore(url, migrate=False).get(waiting).status is Status.RESPONDED
