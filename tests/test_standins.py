"""The local provider stand-ins: plain HTTP and SMTP clients first, then the real adapters."""

from __future__ import annotations

import json
import smtplib
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from multichannel import (
    Adapter,
    Contact,
    ContactPoint,
    Content,
    DeliveryError,
    Dispatcher,
    ManualClock,
    Message,
    OptedOut,
    PermanentError,
    Preferences,
    SendContext,
    Status,
    TransientError,
)
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.smtp import SMTPEmail
from multichannel.adapters.telnyx import TelnyxFax
from multichannel.adapters.twilio_sms import TwilioSMS
from multichannel.adapters.twilio_voice import TwilioVoiceDrop
from multichannel.cli.demo.standins import Received, Standins, run_standins

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-SECRET-5b8e"
SENDGRID_KEY = "SG.sendgrid-SECRET-key.7Qx"
TELNYX_KEY = "KEY0190TELNYX-SECRET-key"
SMTP_PASSWORD = "smtp-SECRET-password"
MOBILE = "+17345550100"
OFFICE = "+13125550100"
FAX = "+13127367276"
FROM = "+13125790015"


@pytest.fixture(scope="module")
def standins() -> Iterator[Standins]:
    with run_standins() as running:
        yield running


def last(standins: Standins, provider: str) -> Received:
    return [item for item in standins.received if item.provider == provider][-1]


def twilio_post(standins: Standins, resource: str, form: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{standins.twilio_url}/2010-04-01/Accounts/{ACCOUNT}/{resource}",
        data=form,
        auth=(ACCOUNT, TOKEN),
        timeout=5,
    )


def sendgrid_mail(to: str) -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": to}], "custom_args": {"dispatch_id": "d-1"}}],
        "from": {"email": "clinic@example.com"},
        "subject": "Your appointment",
        "content": [{"type": "text/plain", "value": "See you Monday at 9."}],
    }


def sendgrid_post(
    standins: Standins, mail: Any, key: str | None = SENDGRID_KEY
) -> tuple[int, dict[str, str], bytes]:
    """POST with urllib, the way the sendgrid SDK does: status, headers, body."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{standins.sendgrid_url}/v3/mail/send",
        data=json.dumps(mail).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, dict(refused.headers), refused.read()


def telnyx_post(standins: Standins, to: str, key: str | None = TELNYX_KEY) -> requests.Response:
    return requests.post(
        f"{standins.telnyx_url}/v2/faxes",
        json={"connection_id": "c-1", "to": to, "from": FROM, "media_url": "https://x.test/a.pdf"},
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=5,
    )


# The stand-ins themselves


def test_they_listen_on_loopback_ephemeral_ports(standins: Standins) -> None:
    urls = {standins.twilio_url, standins.sendgrid_url, standins.telnyx_url}
    assert len(urls) == 3
    assert all(url.startswith("http://127.0.0.1:") for url in urls)
    assert standins.smtp_host == "127.0.0.1"
    assert standins.smtp_port
    assert standins.smtp_problem is None
    assert "twilio=http://127.0.0.1:" in repr(standins)


def test_twilio_messages_answer_like_twilio(standins: Standins) -> None:
    answer = twilio_post(
        standins, "Messages.json", {"To": MOBILE, "From": FROM, "Body": "Running late"}
    )
    assert answer.status_code == 201
    message = answer.json()
    assert message["sid"].startswith("SM")
    assert len(message["sid"]) == 34
    assert message["status"] == "queued"
    assert message["to"] == MOBILE
    assert message["from"] == FROM
    assert message["account_sid"] == ACCOUNT
    assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message['sid']}.json"
    assert message["error_code"] is None
    assert message["date_created"].endswith("+0000")

    seen = last(standins, "twilio")
    assert (seen.method, seen.path, seen.status) == (
        "POST",
        f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        201,
    )
    assert seen.body == {"To": MOBILE, "From": FROM, "Body": "Running late"}
    assert seen.auth == f"Basic {ACCOUNT}:***"


def test_twilio_accepts_a_messaging_service(standins: Standins) -> None:
    service = "MG" + "f" * 32
    answer = twilio_post(
        standins, "Messages.json", {"To": MOBILE, "MessagingServiceSid": service, "Body": "Hi"}
    )
    assert answer.status_code == 201
    assert answer.json()["messaging_service_sid"] == service
    assert answer.json()["status"] == "accepted"


def test_twilio_calls_answer_like_twilio(standins: Standins) -> None:
    form = {"To": OFFICE, "From": FROM, "Twiml": "<Response><Say>Hello</Say></Response>"}
    answer = twilio_post(standins, "Calls.json", form)
    assert answer.status_code == 201
    call = answer.json()
    assert call["sid"].startswith("CA")
    assert call["status"] == "queued"
    assert call["answered_by"] is None
    assert last(standins, "twilio").body["Twiml"] == form["Twiml"]


@pytest.mark.parametrize(
    ("code", "status", "said"),
    [
        (21610, 400, "unsubscribed recipient"),
        ("21610", 400, "unsubscribed recipient"),
        (21211, 400, "is not a valid phone number"),
        (21614, 400, "not a valid mobile number"),
        (20429, 429, "Too Many Requests"),
        (99999, 400, "is not a valid phone number"),
        (None, 400, "is not a valid phone number"),
    ],
)
def test_twilio_refuses_rejected_numbers_with_its_error_body(
    code: int | str | None, status: int, said: str
) -> None:
    with run_standins(smtp=False) as standins:
        standins.reject(MOBILE, code)
        answer = twilio_post(standins, "Messages.json", {"To": MOBILE, "From": FROM, "Body": "x"})
    assert answer.status_code == status
    error = answer.json()
    assert error["code"] == (
        int(code) if str(code) in ("21610", "21211", "21614", "20429") else 21211
    )
    assert said in error["message"]
    assert error["more_info"] == f"https://www.twilio.com/docs/errors/{error['code']}"
    assert error["status"] == status


def test_twilio_needs_credentials_a_known_path_and_a_to(standins: Standins) -> None:
    anonymous = requests.post(
        f"{standins.twilio_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data={"To": MOBILE, "From": FROM, "Body": "x"},
        timeout=5,
    )
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 20003)
    assert last(standins, "twilio").auth is None
    unknown = twilio_post(standins, "Faxes.json", {"To": FAX, "From": FROM})
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    no_to = twilio_post(standins, "Messages.json", {"From": FROM, "Body": "x"})
    assert (no_to.status_code, no_to.json()["code"]) == (400, 21604)
    no_from = twilio_post(standins, "Messages.json", {"To": MOBILE, "Body": "x"})
    assert (no_from.status_code, no_from.json()["code"]) == (400, 21603)


def test_sendgrid_accepts_with_a_message_id(standins: Standins) -> None:
    status, headers, body = sendgrid_post(standins, sendgrid_mail("ana@example.com"))
    assert status == 202
    assert body == b""
    assert len(headers["X-Message-Id"]) == 22
    seen = last(standins, "sendgrid")
    assert (seen.path, seen.status, seen.auth) == ("/v3/mail/send", 202, "Bearer ***")
    assert seen.body["personalizations"][0]["custom_args"] == {"dispatch_id": "d-1"}


@pytest.mark.parametrize(
    ("code", "status", "field"),
    [
        (None, 400, "personalizations.0.to.0.email"),
        (400, 400, "personalizations.0.to.0.email"),
        (429, 429, None),
        (500, 500, None),
        (21610, 400, "personalizations.0.to.0.email"),
    ],
)
def test_sendgrid_refuses_rejected_addresses_with_its_error_body(
    code: int | None, status: int, field: str | None
) -> None:
    with run_standins(smtp=False) as standins:
        standins.reject("Bounce@Example.com", code)
        answered, _, body = sendgrid_post(standins, sendgrid_mail("bounce@example.com"))
    assert answered == status
    errors = json.loads(body)["errors"]
    assert errors[0]["field"] == field
    assert errors[0]["message"]
    assert set(errors[0]) == {"message", "field", "help"}


def test_sendgrid_needs_a_bearer_key_and_json(standins: Standins) -> None:
    anonymous, _, _ = sendgrid_post(standins, sendgrid_mail("ana@example.com"), key=None)
    assert anonymous == 401
    assert last(standins, "sendgrid").auth is None
    assert sendgrid_post(standins, ["not", "a", "mail"])[0] == 400


def test_telnyx_accepts_a_fax_with_its_id(standins: Standins) -> None:
    answer = telnyx_post(standins, FAX)
    assert answer.status_code == 202
    fax = answer.json()["data"]
    assert fax["record_type"] == "fax"
    assert fax["status"] == "queued"
    assert fax["to"] == FAX
    assert len(fax["id"]) == 36
    seen = last(standins, "telnyx")
    assert (seen.path, seen.status, seen.auth) == ("/v2/faxes", 202, "Bearer ***")
    assert seen.body["media_url"] == "https://x.test/a.pdf"


@pytest.mark.parametrize(
    ("code", "status", "pointer"),
    [
        (None, 422, "/to"),
        ("10016", 422, "/to"),
        ("10011", 429, None),
        ("10010", 403, None),
        (21610, 422, "/to"),
    ],
)
def test_telnyx_refuses_rejected_numbers_with_its_error_body(
    code: str | int | None, status: int, pointer: str | None
) -> None:
    with run_standins(smtp=False) as standins:
        standins.reject(FAX, code)
        answer = telnyx_post(standins, FAX)
    assert answer.status_code == status
    (error,) = answer.json()["errors"]
    assert error["code"] == (code if code in ("10016", "10011", "10010") else "10002")
    assert error.get("source", {}).get("pointer") == pointer
    assert error["meta"]["url"].endswith(error["code"])
    if status == 429:
        assert answer.headers["Retry-After"] == "1"


def test_telnyx_needs_a_key_and_every_field(standins: Standins) -> None:
    assert telnyx_post(standins, FAX, key=None).status_code == 401
    partial = requests.post(
        f"{standins.telnyx_url}/v2/faxes",
        json={"connection_id": "c-1", "to": FAX, "from": FROM},
        headers={"Authorization": f"Bearer {TELNYX_KEY}"},
        timeout=5,
    )
    assert partial.status_code == 422
    assert partial.json()["errors"][0]["source"] == {"pointer": "/media_url"}


def test_unknown_paths_and_bodies_get_the_providers_errors(standins: Standins) -> None:
    bearer = {"Authorization": f"Bearer {TELNYX_KEY}", "Content-Type": "application/json"}
    wrong_path = requests.post(f"{standins.sendgrid_url}/v3/mail/sned", json={}, timeout=5)
    assert wrong_path.status_code == 404
    assert wrong_path.json()["errors"][0]["message"]
    garbage = requests.post(
        f"{standins.sendgrid_url}/v3/mail/send", data=b"{not json", headers=bearer, timeout=5
    )
    assert garbage.status_code == 400
    assert last(standins, "sendgrid").body == {}
    fax_path = requests.post(f"{standins.telnyx_url}/v2/fax", json={}, headers=bearer, timeout=5)
    assert (fax_path.status_code, fax_path.json()["errors"][0]["code"]) == (422, "10005")
    fax_garbage = requests.post(
        f"{standins.telnyx_url}/v2/faxes", data=b"[", headers=bearer, timeout=5
    )
    assert fax_garbage.json()["errors"][0]["code"] == "10015"


def test_a_malformed_basic_header_is_recorded_without_a_user(standins: Standins) -> None:
    answer = requests.post(
        f"{standins.twilio_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data={"To": MOBILE, "From": FROM, "Body": "x"},
        headers={"Authorization": "Basic %%%not-base64"},
        timeout=5,
    )
    assert answer.status_code == 201
    assert last(standins, "twilio").auth == "Basic ?:***"


def test_smtp_accepts_and_records_a_message(standins: Standins) -> None:
    message = EmailMessage()
    message["From"] = "clinic@example.com"
    message["To"] = "ana@example.com"
    message["Subject"] = "Your appointment"
    message["Message-ID"] = "<d-1@clinic.example.com>"
    message.set_content("See you Monday at 9.")
    assert standins.smtp_host is not None
    assert standins.smtp_port is not None
    with smtplib.SMTP(standins.smtp_host, standins.smtp_port, timeout=5) as client:
        client.login("clinic", SMTP_PASSWORD)
        refused = client.send_message(message)
    assert refused == {}
    seen = last(standins, "smtp")
    assert (seen.method, seen.path, seen.status) == ("DATA", "clinic@example.com", 250)
    assert seen.body["rcpt_tos"] == ["ana@example.com"]
    assert seen.body["subject"] == "Your appointment"
    assert seen.body["message_id"] == "<d-1@clinic.example.com>"
    assert seen.auth == "LOGIN clinic:***"


@pytest.mark.parametrize(
    ("code", "reply"),
    [(None, 550), (550, 550), ("450", 450), (554, 554), (421, 421), (250, 550), ("10002", 550)],
)
def test_smtp_refuses_rejected_recipients(code: int | str | None, reply: int) -> None:
    with run_standins() as standins:
        standins.reject("gone@example.com", code)
        assert standins.smtp_host is not None
        assert standins.smtp_port is not None
        with (
            smtplib.SMTP(standins.smtp_host, standins.smtp_port, timeout=5) as client,
            pytest.raises(smtplib.SMTPRecipientsRefused) as caught,
        ):
            client.sendmail("clinic@example.com", ["gone@example.com"], b"Subject: x\r\n\r\nx")
        seen = last(standins, "smtp")
    assert caught.value.recipients["gone@example.com"][0] == reply
    assert (seen.method, seen.status, seen.body["rcpt_to"]) == ("RCPT", reply, "gone@example.com")


def test_without_aiosmtpd_the_smtp_stand_in_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosmtpd.controller", None)
    with run_standins() as standins:
        assert standins.smtp_host is None
        assert standins.smtp_port is None
        assert standins.smtp_problem is not None
        assert "pip install aiosmtpd" in standins.smtp_problem
        assert "smtp=off" in repr(standins)
        assert telnyx_post(standins, FAX).status_code == 202


def test_smtp_can_be_left_out() -> None:
    with run_standins(smtp=False) as standins:
        assert standins.smtp_port is None
        assert standins.smtp_problem is None


def test_everything_stops_on_exit() -> None:
    with run_standins() as standins:
        urls = [standins.twilio_url, standins.sendgrid_url, standins.telnyx_url]
        smtp = (standins.smtp_host, standins.smtp_port)
    for url in urls:
        with pytest.raises(requests.ConnectionError):
            requests.post(f"{url}/v2/faxes", timeout=5)
    with pytest.raises(OSError):  # noqa: PT011 - refused connections vary by platform
        smtplib.SMTP(smtp[0], smtp[1], timeout=5)


def test_received_is_a_copy_and_holds_no_secret(standins: Standins) -> None:
    twilio_post(standins, "Messages.json", {"To": MOBILE, "From": FROM, "Body": "x"})
    telnyx_post(standins, FAX)
    snapshot = standins.received
    snapshot.clear()
    assert standins.received
    shown = repr(standins.received)
    for secret in (TOKEN, SENDGRID_KEY, TELNYX_KEY, SMTP_PASSWORD):
        assert secret not in shown


# The real adapters and SDKs, pointed at the stand-ins

CTX = SendContext(dispatch_id="d-1", contact_id="c-1")
sms_point = ContactPoint(channel="sms", address=MOBILE)
voice_point = ContactPoint(channel="voice", address=OFFICE)
email_point = ContactPoint(channel="email", address="ana@example.com")
fax_point = ContactPoint(channel="fax", address=FAX)
note = Content(body="Your test results are ready.", subject="Results")
document = Content(body="Referral", media_url="https://files.example.com/referral.pdf")


def real_adapters(standins: Standins) -> dict[str, Adapter]:
    assert standins.smtp_host is not None
    assert standins.smtp_port is not None
    return {
        "sms": TwilioSMS(
            account_sid=ACCOUNT, auth_token=TOKEN, from_number=FROM, base_url=standins.twilio_url
        ),
        "voice": TwilioVoiceDrop(
            account_sid=ACCOUNT, auth_token=TOKEN, from_number=FROM, base_url=standins.twilio_url
        ),
        "sendgrid": SendGridEmail(
            api_key=SENDGRID_KEY, from_email="clinic@example.com", base_url=standins.sendgrid_url
        ),
        "smtp": SMTPEmail(
            host=standins.smtp_host,
            port=standins.smtp_port,
            from_email="clinic@example.com",
            username="clinic",
            password=SMTP_PASSWORD,
            starttls=False,
        ),
        "fax": TelnyxFax(
            api_key=TELNYX_KEY,
            connection_id="1684641123236054244",
            from_number=FROM,
            base_url=standins.telnyx_url,
        ),
    }


def test_the_real_adapters_send_through_the_standins(standins: Standins) -> None:
    adapters = real_adapters(standins)

    sms = adapters["sms"].send(sms_point, note, CTX)
    assert sms.provider_id is not None
    assert sms.provider_id.startswith("SM")
    assert last(standins, "twilio").body["Body"] == note.body

    call = adapters["voice"].send(voice_point, note, CTX)
    assert call.provider_id is not None
    assert call.provider_id.startswith("CA")
    twiml = last(standins, "twilio").body["Twiml"]
    assert "<Say" in twiml
    assert note.body in twiml

    mail = adapters["sendgrid"].send(email_point, note, CTX)
    seen = last(standins, "sendgrid")
    assert mail.provider_id
    assert seen.body["personalizations"][0]["to"] == [{"email": "ana@example.com"}]

    smtp = adapters["smtp"].send(email_point, note, CTX)
    seen = last(standins, "smtp")
    assert seen.body["message_id"] == smtp.provider_id
    assert seen.body["subject"] == "Results"
    assert seen.auth == "LOGIN clinic:***"

    fax = adapters["fax"].send(fax_point, document, CTX)
    seen = last(standins, "telnyx")
    assert fax.provider_id is not None
    assert seen.body["media_url"] == document.media_url
    assert seen.body["to"] == FAX

    shown = repr(standins.received)
    for secret in (TOKEN, SENDGRID_KEY, TELNYX_KEY, SMTP_PASSWORD):
        assert secret not in shown


@pytest.mark.parametrize(
    ("adapter", "point", "code", "expected"),
    [
        ("sms", sms_point, 21610, OptedOut),
        ("sms", sms_point, 21211, PermanentError),
        ("sms", sms_point, 20429, TransientError),
        ("voice", voice_point, 21217, PermanentError),
        ("sendgrid", email_point, 400, PermanentError),
        ("sendgrid", email_point, 429, TransientError),
        ("smtp", email_point, 550, PermanentError),
        ("smtp", email_point, 450, TransientError),
        ("fax", fax_point, "10002", PermanentError),
        ("fax", fax_point, "10011", TransientError),
    ],
)
def test_the_real_adapters_map_the_standins_refusals(
    adapter: str, point: ContactPoint, code: int | str, expected: type[DeliveryError]
) -> None:
    with run_standins() as standins:
        standins.reject(point.address, code)
        content = document if adapter == "fax" else note
        with pytest.raises(DeliveryError) as caught:
            real_adapters(standins)[adapter].send(point, content, CTX)
    assert type(caught.value) is expected


def test_a_dispatch_falls_back_across_real_providers(clock: ManualClock) -> None:
    contact = Contact(
        id="ana",
        timezone="America/Detroit",
        points=(sms_point, email_point),
        preferences=Preferences(channels=("sms", "email")),
    )
    with run_standins() as standins:
        standins.reject(MOBILE, 21610)
        adapters = real_adapters(standins)
        dispatcher = Dispatcher(adapters=[adapters["sms"], adapters["sendgrid"]], clock=clock)
        dispatch = dispatcher.send(contact, Message(body=note.body, subject="Results"))
        traffic = [(item.provider, item.status) for item in standins.received]

    assert traffic == [("twilio", 400), ("sendgrid", 202)]
    assert dispatch.status is Status.ACCEPTED
    assert [attempt.provider for attempt in dispatch.attempts] == ["twilio-sms", "sendgrid"]
    assert dispatcher.store.opted_out([("sms", MOBILE)]) == {("sms", MOBILE)}
