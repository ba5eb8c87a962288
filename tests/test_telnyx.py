"""TelnyxFax against Telnyx's wire format, replayed with `responses`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import requests
import responses
from pytest_httpserver import HTTPServer

from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    Content,
    DeliveryError,
    Dispatcher,
    ManualClock,
    Message,
    OptedOut,
    Outbox,
    PermanentError,
    Preferences,
    ProviderError,
    Receipt,
    SendContext,
    Status,
    TransientError,
)
from multichannel.adapters import telnyx
from multichannel.adapters.telnyx import TelnyxFax
from multichannel.testing import AdapterContract, FailureKind

KEY = "KEY0190SECRETtelnyxTESTkey_4vQ9"
CONNECTION = "1684641123236054244"
FROM = "+13125790015"
TO = "+13127367276"
DOCUMENT = "https://files.example.com/referral.pdf"
FAXES = "https://api.telnyx.com/v2/faxes"
FAX_ID = "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"
CTX = SendContext(dispatch_id="d-1", contact_id="c-1")


def make_fax(base_url: str | None = None) -> TelnyxFax:
    return TelnyxFax(api_key=KEY, connection_id=CONNECTION, from_number=FROM, base_url=base_url)


def accepted(to: str = TO) -> dict[str, Any]:
    return {
        "data": {
            "record_type": "fax",
            "id": FAX_ID,
            "connection_id": CONNECTION,
            "direction": "outbound",
            "from": FROM,
            "to": to,
            "media_url": DOCUMENT,
            "quality": "high",
            "status": "queued",
            "store_media": False,
            "webhook_url": "",
            "created_at": "2026-03-02T14:00:00.000000Z",
            "updated_at": "2026-03-02T14:00:00.000000Z",
        }
    }


def telnyx_error(code: str, title: str, detail: str, pointer: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "title": title,
        "detail": detail,
        "meta": {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"},
    }
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return {"errors": [error]}


def sent_json(request: requests.PreparedRequest) -> Any:
    assert isinstance(request.body, bytes | str)
    return json.loads(request.body)


fax_point = ContactPoint(channel="fax", address=TO)
document = Content(body="Referral letter", media_url=DOCUMENT)


@pytest.fixture
def wire() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# The request Telnyx receives


def test_posts_the_fax_as_json_with_a_bearer_key(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, json=accepted(), status=202)
    receipt = make_fax().send(fax_point, document, CTX)

    assert receipt == Receipt(provider_id=FAX_ID, status="queued")
    (call,) = wire.calls
    assert call.request.url == FAXES
    assert call.request.method == "POST"
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert call.request.headers["Content-Type"] == "application/json"
    assert sent_json(call.request) == {
        "connection_id": CONNECTION,
        "to": TO,
        "from": FROM,
        "media_url": DOCUMENT,
    }


def test_every_request_has_the_timeout(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, json=accepted(), status=202)
    adapter = TelnyxFax(api_key=KEY, connection_id=CONNECTION, from_number=FROM, timeout=12.5)
    adapter.send(fax_point, document, CTX)
    assert wire.calls[0].request.req_kwargs["timeout"] == 12.5  # type: ignore[attr-defined]


def test_base_url_sends_the_same_request_elsewhere(wire: responses.RequestsMock) -> None:
    wire.post("http://127.0.0.1:8099/v2/faxes", json=accepted(), status=200)
    receipt = make_fax("http://127.0.0.1:8099/").send(fax_point, document, CTX)
    assert receipt.provider_id == FAX_ID
    assert wire.calls[0].request.url == "http://127.0.0.1:8099/v2/faxes"


def test_the_document_comes_from_the_message_fax_variant(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, json=accepted(), status=202)
    message = Message(body="Your referral", variants={"fax": {"media_url": DOCUMENT}})
    make_fax().send(fax_point, message.content_for("fax"), CTX)
    assert sent_json(wire.calls[0].request)["media_url"] == DOCUMENT


def test_a_fax_without_a_document_is_refused_before_any_request(
    wire: responses.RequestsMock,
) -> None:
    with pytest.raises(PermanentError) as caught:
        make_fax().send(fax_point, Content(body="no document"), CTX)
    assert "variants={'fax': {'media_url'" in str(caught.value)
    assert caught.value.provider == "telnyx-fax"
    assert len(wire.calls) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"status": "queued"}},
        {"data": {"id": "", "status": "queued"}},
        {"something": "else"},
        ["not", "a", "fax"],
    ],
)
def test_an_acceptance_without_a_fax_id_blames_the_provider(
    wire: responses.RequestsMock, body: Any
) -> None:
    wire.post(FAXES, json=body, status=202)
    with pytest.raises(ProviderError, match="no fax id"):
        make_fax().send(fax_point, document, CTX)


def test_an_html_acceptance_blames_the_provider(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, body="<html>proxy login</html>", status=200, content_type="text/html")
    with pytest.raises(ProviderError, match="is base_url right"):
        make_fax().send(fax_point, document, CTX)


def test_a_missing_status_reads_as_queued(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, json={"data": {"id": FAX_ID}}, status=202)
    assert make_fax().send(fax_point, document, CTX).status == "queued"


# Every row of the error table, with the body Telnyx sends

ROWS: list[tuple[str, int, Any, dict[str, str], type[DeliveryError], str | None]] = [
    (
        "bad key",
        401,
        telnyx_error("10009", "Authentication failed", "Could not understand the credentials."),
        {},
        ProviderError,
        "10009",
    ),
    (
        "not permitted",
        403,
        telnyx_error("10010", "Authorization failed", "You do not have permission."),
        {},
        ProviderError,
        "10010",
    ),
    (
        "invalid to",
        422,
        telnyx_error("10002", "Invalid phone number", "The phone number is invalid.", "/to"),
        {},
        PermanentError,
        "10002",
    ),
    (
        "to not in E.164",
        400,
        telnyx_error("10016", "Phone number must be in +E.164 format", "Use +E.164.", "/to"),
        {},
        PermanentError,
        "10016",
    ),
    (
        "bad document url",
        422,
        telnyx_error("10003", "Invalid URL", "The URL provided was invalid.", "/media_url"),
        {},
        PermanentError,
        "10003",
    ),
    (
        "invalid from",
        422,
        telnyx_error("10002", "Invalid phone number", "The phone number is invalid.", "/from"),
        {},
        ProviderError,
        "10002",
    ),
    (
        "unknown connection",
        422,
        telnyx_error(
            "10017", "Associated resource does not exist", "No such connection.", "/connection_id"
        ),
        {},
        ProviderError,
        "10017",
    ),
    (
        "document url refused as a bad request",
        400,
        telnyx_error("10015", "Bad Request", "media_url is not a URL.", "/media_url"),
        {},
        PermanentError,
        "10015",
    ),
    (
        "from refused as a bad request",
        400,
        telnyx_error("10015", "Bad Request", "from is not a fax number.", "/from"),
        {},
        ProviderError,
        "10015",
    ),
    (
        "connection refused as a bad request",
        400,
        telnyx_error("10015", "Bad Request", "connection_id is malformed.", "/connection_id"),
        {},
        ProviderError,
        "10015",
    ),
    (
        "telnyx timed out",
        408,
        telnyx_error("10008", "Request timeout", "The request timed out."),
        {},
        TransientError,
        "10008",
    ),
    (
        "rate limited",
        429,
        telnyx_error("10011", "Too many requests", "You have exceeded the limit."),
        {"Retry-After": "7"},
        TransientError,
        "10011",
    ),
    (
        "telnyx failed",
        500,
        telnyx_error("10007", "Unexpected error", "An unexpected error occured."),
        {},
        TransientError,
        "10007",
    ),
    (
        "gateway down",
        503,
        "<html><body>503 Service Unavailable</body></html>",
        {},
        TransientError,
        None,
    ),
    (
        "wrong path",
        404,
        telnyx_error("10005", "Resource not found", "The requested resource was not found."),
        {},
        ProviderError,
        "10005",
    ),
    (
        "unattributed validation",
        422,
        telnyx_error("10015", "Bad Request", "The request failed because it was not well-formed."),
        {},
        ProviderError,
        "10015",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "code"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_telnyx_errors_map_to_library_errors(
    wire: responses.RequestsMock,
    status: int,
    body: Any,
    headers: dict[str, str],
    expected: type[DeliveryError],
    code: str | None,
) -> None:
    if isinstance(body, str):
        wire.post(FAXES, body=body, status=status, headers=headers, content_type="text/html")
    else:
        wire.post(FAXES, json=body, status=status, headers=headers)
    with pytest.raises(DeliveryError) as caught:
        make_fax().send(fax_point, document, CTX)

    error = caught.value
    assert type(error) is expected
    assert error.provider == "telnyx-fax"
    assert error.status == status
    assert error.code == code
    assert error.__cause__ is None, "a refusal is an answer read, not an exception wrapped"
    if not isinstance(body, str):
        assert body["errors"][0]["detail"] in str(error)
    assert KEY not in str(error)
    assert KEY not in repr(error.__cause__)


def test_every_table_row_has_a_case() -> None:
    def row_read(status: int, field: str | None) -> tuple[int | str, str | None] | None:
        for key in ((status, field), (status, None), (f"{status // 100}xx", None)):
            if key in telnyx._ERRORS:
                return key
        return None  # no row: the ProviderError for everything else

    def field_of(body: Any) -> str | None:
        if isinstance(body, str) or "source" not in body["errors"][0]:
            return None
        return str(body["errors"][0]["source"]["pointer"]).strip("/")

    walked = {row_read(row[1], field_of(row[2])) for row in ROWS}
    assert walked == {None, *telnyx._ERRORS}


def test_the_blamed_field_may_come_as_a_parameter(wire: responses.RequestsMock) -> None:
    body = telnyx_error("10002", "Invalid phone number", "Bad number.")
    body["errors"][0]["source"] = {"parameter": "to"}
    wire.post(FAXES, json=body, status=422)
    with pytest.raises(PermanentError):
        make_fax().send(fax_point, document, CTX)


def test_retry_after_seconds_are_the_hint(wire: responses.RequestsMock) -> None:
    body = telnyx_error("10011", "Too many requests", "Slow down.")
    wire.post(FAXES, json=body, status=429, headers={"Retry-After": "7"})
    with pytest.raises(TransientError) as caught:
        make_fax().send(fax_point, document, CTX)
    assert caught.value.retry_after == timedelta(seconds=7)


def test_retry_after_as_a_date_is_read_against_the_servers_date(
    wire: responses.RequestsMock,
) -> None:
    headers = {
        "Retry-After": "Mon, 02 Mar 2026 14:00:30 GMT",
        "Date": "Mon, 02 Mar 2026 14:00:00 GMT",
    }
    wire.post(FAXES, json={"errors": []}, status=429, headers=headers)
    with pytest.raises(TransientError) as caught:
        make_fax().send(fax_point, document, CTX)
    assert caught.value.retry_after == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        # A date without a zone is GMT, as every HTTP-date is.
        (
            {
                "Retry-After": "Mon, 02 Mar 2026 14:00:30 -0000",
                "Date": "Mon, 02 Mar 2026 14:00:00 GMT",
            },
            timedelta(seconds=30),
        ),
        ({"Retry-After": "Mon, 01 Jan 2001 00:00:00 GMT"}, timedelta(0)),
        ({"Retry-After": "Mon, 01 Jan 2001 00:00:00 GMT", "Date": "garbage"}, timedelta(0)),
    ],
    ids=["words", "empty", "date-without-zone", "past-date", "past-date-bad-server-date"],
)
def test_retry_after_edge_cases(
    wire: responses.RequestsMock, headers: dict[str, str], hint: timedelta | None
) -> None:
    wire.post(FAXES, json={}, status=503, headers=headers)
    with pytest.raises(TransientError) as caught:
        make_fax().send(fax_point, document, CTX)
    assert caught.value.retry_after == hint


@pytest.mark.parametrize(
    "body",
    [{"errors": ["Invalid phone number"]}, {"errors": []}, {"errors": "nope"}, [1, 2]],
    ids=["string-error", "no-errors", "errors-not-a-list", "not-an-object"],
)
def test_an_unreadable_error_body_still_maps_by_status(
    wire: responses.RequestsMock, body: Any
) -> None:
    wire.post(FAXES, json=body, status=422)
    with pytest.raises(ProviderError) as caught:
        make_fax().send(fax_point, document, CTX)
    assert caught.value.code is None
    assert str(caught.value).startswith("Telnyx refused the request")


def test_closing_keeps_the_adapter_usable(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, json=accepted(), status=202)
    adapter = make_fax()
    adapter.send(fax_point, document, CTX)
    adapter.close()
    assert adapter.send(fax_point, document, CTX).provider_id == FAX_ID
    assert len(wire.calls) == 2


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (requests.ConnectTimeout("connect timed out"), "did not answer within 30s"),
        (requests.ReadTimeout("read timed out"), "did not answer within 30s"),
        (requests.ConnectionError("refused"), "could not connect to https://api.telnyx.com"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(
    wire: responses.RequestsMock, failure: Exception, said: str
) -> None:
    wire.post(FAXES, body=failure)
    with pytest.raises(TransientError, match=said) as caught:
        make_fax().send(fax_point, document, CTX)
    assert caught.value.__cause__ is failure


def test_another_request_failure_blames_the_provider(wire: responses.RequestsMock) -> None:
    wire.post(FAXES, body=requests.TooManyRedirects("redirect loop"))
    # Named by type only: a request exception's text can quote the headers, key included.
    with pytest.raises(ProviderError, match="TooManyRedirects") as caught:
        make_fax().send(fax_point, document, CTX)
    assert "redirect loop" not in str(caught.value)


def test_a_rejected_destination_falls_back_to_the_next_channel(
    wire: responses.RequestsMock, clock: ManualClock
) -> None:
    wire.post(
        FAXES,
        json=telnyx_error("10002", "Invalid phone number", "Not a fax line.", "/to"),
        status=422,
    )
    outbox = Outbox()
    contact = Contact(
        id="dr-lee",
        timezone="America/Chicago",
        points=(fax_point, ContactPoint(channel="email", address="lee@clinic.example")),
        preferences=Preferences(channels=("fax", "email")),
    )
    dispatcher = Dispatcher(adapters=[make_fax(), outbox], clock=clock)
    message = Message(body="Referral attached", variants={"fax": {"media_url": DOCUMENT}})
    dispatch = dispatcher.send(contact, message)

    assert dispatch.attempts[0].provider == "telnyx-fax"
    assert dispatch.attempts[0].error is not None
    assert "Invalid phone number" in dispatch.attempts[0].error
    assert [sent.channel for sent in outbox.sent] == ["email"]
    assert dispatch.status is Status.ACCEPTED


# Construction and the environment


def test_repr_and_errors_never_show_the_key() -> None:
    adapter = make_fax()
    assert KEY not in repr(adapter)
    assert KEY not in str(adapter)
    assert "telnyx-fax" in repr(adapter)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"api_key": " "}, "api_key is empty"),
        ({"connection_id": ""}, "connection_id is empty"),
        ({"from_number": "3125790015"}, "from_number"),
        ({"from_number": "+1555"}, "from_number"),
        ({"base_url": "api.telnyx.com"}, "not an http(s) URL"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_settings_are_configuration_errors(overrides: dict[str, Any], said: str) -> None:
    settings: dict[str, Any] = {"api_key": KEY, "connection_id": CONNECTION, "from_number": FROM}
    settings.update(overrides)
    with pytest.raises(ConfigurationError, match=said.replace("(", r"\(").replace(")", r"\)")):
        TelnyxFax(**settings)


def test_without_requests_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "requests", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'multichannel\[telnyx\]'"):
        make_fax()


ENV = {
    "TELNYX_API_KEY": KEY,
    "TELNYX_CONNECTION_ID": CONNECTION,
    "TELNYX_FROM": FROM,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*ENV, "TELNYX_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_env_reads_the_telnyx_variables(
    clean_env: pytest.MonkeyPatch, wire: responses.RequestsMock
) -> None:
    for name, value in ENV.items():
        clean_env.setenv(name, value)
    clean_env.setenv("TELNYX_BASE_URL", "http://127.0.0.1:8099")
    wire.post("http://127.0.0.1:8099/v2/faxes", json=accepted(), status=202)

    adapter = TelnyxFax.from_env()
    adapter.send(fax_point, document, CTX)

    request = wire.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert sent_json(request)["connection_id"] == CONNECTION
    assert adapter.from_number == FROM


def test_from_env_defaults_to_the_telnyx_api(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        clean_env.setenv(name, value)
    assert TelnyxFax.from_env().base_url == "https://api.telnyx.com"


def test_from_env_names_every_missing_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TELNYX_CONNECTION_ID", CONNECTION)
    with pytest.raises(ConfigurationError) as caught:
        TelnyxFax.from_env()
    said = str(caught.value)
    assert "TELNYX_API_KEY is not set" in said
    assert "TELNYX_FROM is not set" in said
    assert "TELNYX_CONNECTION_ID" not in said


def test_from_env_refuses_an_empty_key_without_showing_values(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        clean_env.setenv(name, value)
    clean_env.setenv("TELNYX_API_KEY", "")
    clean_env.setenv("TELNYX_FROM", "not-a-number-" + KEY)
    with pytest.raises(ConfigurationError) as caught:
        TelnyxFax.from_env()
    assert "TELNYX_API_KEY is invalid" in str(caught.value)
    assert KEY not in str(caught.value)


# The contract every adapter owes the dispatcher


class TestTelnyxFaxContract(AdapterContract):
    """Sync sends meet `responses`; async sends (aiohttp) meet a real server on 127.0.0.1."""

    failures: ClassVar[frozenset[FailureKind]] = frozenset({"transient", "permanent", "provider"})

    @pytest.fixture(autouse=True)
    def _wire(self, httpserver_ipv4: HTTPServer) -> Iterator[None]:
        self.server = httpserver_ipv4
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            self.mock = mock
            yield

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def make_adapter(self) -> TelnyxFax:
        return make_fax(self.base_url)

    def make_point(self) -> ContactPoint:
        return fax_point

    def make_content(self) -> Content:
        return document

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        self.mock.reset()
        self.mock.post(f"{self.base_url}/v2/faxes", json=body, status=status)
        self.server.clear_all_handlers()
        self.server.expect_request("/v2/faxes", method="POST").respond_with_json(
            body, status=status
        )

    def arrange_accept(self, point: ContactPoint) -> None:
        self._answer(202, accepted(point.address))

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        answers: dict[FailureKind, tuple[int, dict[str, Any]]] = {
            "transient": (503, telnyx_error("10007", "Unexpected error", "Try again later.")),
            "permanent": (
                422,
                telnyx_error("10002", "Invalid phone number", "The number is invalid.", "/to"),
            ),
            "provider": (401, telnyx_error("10009", "Authentication failed", "Bad key.")),
        }
        self._answer(*answers[kind])

    def secrets(self) -> Sequence[str]:
        return [KEY]

    def test_opt_out_is_opted_out(self) -> None:
        # Fax has no opt-out: no Telnyx answer may be reported as one.
        for kind in sorted(self.failures):
            self.arrange_failure(fax_point, kind)
            with pytest.raises(DeliveryError) as caught:
                self.make_adapter().send(fax_point, document, CTX)
            assert not isinstance(caught.value, OptedOut)
