"""One message after another: Dispatcher.send next to the raw SDKs and bare HTTP.

For Twilio SMS and SendGrid, each against the in-process stand-in
(`standin.serve`): a ``requests.Session`` posting the body the provider expects
(the ceiling), the provider's own SDK in a loop (what a user without this
library gets), and ``Dispatcher.send`` through the library's adapter. The
ratios divide the dispatcher's rate by the others': 1.0 means the library adds
nothing. The same call builders serve `concurrency.py` for its sequential SDK
loops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
import sendgrid
from common import (
    ACCOUNT_SID,
    BODY,
    FROM_EMAIL,
    FROM_NUMBER,
    SUBJECT,
    TO_EMAIL,
    TO_NUMBER,
    TOKEN,
    Row,
    Settings,
    expect,
    one_point_contact,
    per_second,
    progress,
    rate,
    ratio,
)
from sendgrid.helpers.mail import Mail
from standin import SENDGRID_PATH, TWILIO_PATH, Origins
from strategy import MONDAY
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from multichannel import (
    Dispatcher,
    ManualClock,
    Message,
    Status,
)
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.twilio_sms import TwilioSMS


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's own requests-based client, sent to the stand-in instead of api.twilio.com."""

    def __init__(self, origin: str) -> None:
        super().__init__()
        self._origin = origin

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("://", 1)[1].partition("/")[2]
        return super().request(method, f"{self._origin}/{path}", *args, **kwargs)


def twilio_sdk(origin: str) -> Callable[[], object]:
    """One ``client.messages.create`` of the raw twilio SDK."""
    client = Client(ACCOUNT_SID, TOKEN, http_client=RebasedHttpClient(origin))
    client.edge = client.region = None

    def sdk() -> None:
        message = client.messages.create(to=TO_NUMBER, from_=FROM_NUMBER, body=BODY)
        expect("raw Twilio SDK", message.status, "queued")

    return sdk


def sendgrid_sdk(origin: str) -> Callable[[], object]:
    """One ``SendGridAPIClient.send`` of the raw sendgrid SDK (a new connection each time)."""
    client = sendgrid.SendGridAPIClient(api_key=TOKEN, host=origin)

    def sdk() -> None:
        mail = Mail(
            from_email=FROM_EMAIL, to_emails=TO_EMAIL, subject=SUBJECT, plain_text_content=BODY
        )
        expect("raw SendGrid SDK", client.send(mail).status_code, 202)

    return sdk


def twilio_adapter(origin: str) -> TwilioSMS:
    return TwilioSMS(
        account_sid=ACCOUNT_SID, auth_token=TOKEN, from_number=FROM_NUMBER, base_url=origin
    )


def sendgrid_adapter(origin: str) -> SendGridEmail:
    return SendGridEmail(api_key=TOKEN, from_email=FROM_EMAIL, base_url=origin)


def bare_session() -> requests.Session:
    """A requests session that does nothing but HTTP: the ceiling for one after another."""
    session = requests.Session()
    # Not trust_env: it looks up proxy and CA settings in the environment on every
    # request, which the adapters look up once; a ceiling must not pay it each time.
    session.trust_env = False
    return session


def twilio_calls(origin: str) -> dict[str, Callable[[], object]]:
    session = bare_session()
    form = {"To": TO_NUMBER, "From": FROM_NUMBER, "Body": BODY}

    def bare() -> None:
        answer = session.post(origin + TWILIO_PATH, data=form, auth=(ACCOUNT_SID, TOKEN))
        expect("bare Twilio", answer.status_code, 201)
        answer.json()

    return {
        "bare": bare,
        "sdk": twilio_sdk(origin),
        "dispatcher": dispatcher_call(twilio_adapter(origin), "sms", TO_NUMBER),
    }


def sendgrid_calls(origin: str) -> dict[str, Callable[[], object]]:
    session = bare_session()
    payload = {
        "personalizations": [{"to": [{"email": TO_EMAIL}]}],
        "from": {"email": FROM_EMAIL},
        "subject": SUBJECT,
        "content": [{"type": "text/plain", "value": BODY}],
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def bare() -> None:
        answer = session.post(origin + SENDGRID_PATH, json=payload, headers=headers)
        expect("bare SendGrid", answer.status_code, 202)

    return {
        "bare": bare,
        "sdk": sendgrid_sdk(origin),
        "dispatcher": dispatcher_call(sendgrid_adapter(origin), "email", TO_EMAIL),
    }


def dispatcher_call(adapter: Any, channel: str, address: str) -> Callable[[], object]:
    """``Dispatcher.send`` of one message through ``adapter``, on a working Monday morning."""
    dispatcher = Dispatcher(adapters=[adapter], clock=ManualClock(MONDAY))
    contact = one_point_contact(channel, address)
    message = Message(body=BODY, subject=SUBJECT)

    def send() -> None:
        expect(
            f"Dispatcher.send ({channel})",
            dispatcher.send(contact, message).status,
            Status.ACCEPTED,
        )

    return send


# Provider: its label, and main's figures before the speed work (rates, then ratios).
PROVIDERS = {
    "twilio": (
        "Twilio SMS",
        {"sdk": "~640/s", "dispatcher": "~290/s", "vs_sdk": "0.45"},
        "messages.create",
        "TwilioSMS",
    ),
    "sendgrid": ("SendGrid", {"vs_sdk": "0.5"}, "send", "SendGridEmail"),
}


def rows(origins: Origins, settings: Settings) -> list[Row]:
    """Bare HTTP, raw SDK and Dispatcher.send, one after another, for Twilio and SendGrid."""
    table: list[Row] = []
    for provider, calls in (
        ("twilio", twilio_calls(origins.twilio)),
        ("sendgrid", sendgrid_calls(origins.sendgrid)),
    ):
        name, reference, sdk_call, adapter = PROVIDERS[provider]
        progress(f"{name}, one message after another")
        figures = {key: rate(call, settings, "http") for key, call in calls.items()}
        mine = figures["dispatcher"]
        table += [
            Row(
                f"{name}: bare HTTP (requests.Session)", per_second(figures["bare"]), goal="ceiling"
            ),
            Row(
                f"{name}: raw SDK {sdk_call}",
                per_second(figures["sdk"]),
                reference.get("sdk", "-"),
            ),
            Row(
                f"{name}: Dispatcher.send via {adapter}",
                per_second(mine),
                reference.get("dispatcher", "-"),
            ),
            Row(
                f"{name}: ratio Dispatcher / raw SDK",
                ratio(mine / figures["sdk"]),
                reference["vs_sdk"],
                ">= 0.90",
            ),
            Row(f"{name}: ratio Dispatcher / bare HTTP", ratio(mine / figures["bare"])),
        ]
    return table
