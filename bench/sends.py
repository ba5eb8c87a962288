"""How fast the library sends, next to the raw SDKs and bare HTTP, in one run.

Run it with ``python bench/sends.py`` (or ``make bench``). Everything talks to a
stand-in of Twilio and SendGrid on 127.0.0.1 (`standin.py`); nothing reaches
the internet. It prints one table, with the machine at the top:

1. Twilio SMS, one message after another: bare HTTP (a ``requests.Session``
   posting the form Twilio expects, the ceiling), the raw ``twilio`` SDK's
   ``client.messages.create``, and ``Dispatcher.send`` through `TwilioSMS`;
   then the ratios of the dispatcher to the SDK and to bare HTTP;
2. the same for SendGrid: bare HTTP, the raw ``sendgrid`` SDK's ``send`` and
   ``Dispatcher.send`` through `SendGridEmail`;
3. ``Dispatcher.send_many`` with an `Outbox` and the default `MemoryStore`, no
   network: dispatches per second;
4. ``FallbackStrategy.decide`` with the first choice open and inside quiet
   hours, and ``Schedule.next_open`` for schedules already seen (the cases of
   ``bench/strategy.py``, reused);
5. the peak memory of the process (maxrss).

Each figure stands next to its reference (main before the speed work) and the
goal of the speed work. A ratio is the library's rate divided by the other
one: 1.0 means the library adds nothing. Figures depend on the machine;
compare runs on the same, quiet one. A full run takes about half a minute.

``--quick`` runs each measure a tiny, fixed number of times (whole run in a few
seconds): it checks that the bench still runs, its figures mean nothing.
``--latency MS`` makes the stand-in wait before each answer, as a distant API
would; the references and goals are for zero latency.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import sendgrid
from sendgrid.helpers.mail import Mail
from standin import ACCOUNT_SID, SENDGRID_PATH, TOKEN, TWILIO_PATH, Origins, serve
from strategy import MONDAY, campaign, decide_cases, schedule_cases
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

import multichannel
from multichannel import (
    Contact,
    ContactPoint,
    Dispatcher,
    ManualClock,
    Message,
    Preferences,
    Status,
)
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.twilio_sms import TwilioSMS

FROM_NUMBER = "+13125790015"
TO_NUMBER = "+17345550123"
FROM_EMAIL = "clinic@example.com"
TO_EMAIL = "person@example.com"
BODY = "Your order has shipped."
SUBJECT = "Your order"

SECONDS = {"http": 1.0, "cpu": 0.5}  # how long one round of a rate is timed, full run
ROUNDS = 3  # rounds of each rate in a full run; the best is shown
QUICK_CALLS = 5  # calls of each rate with --quick
CAMPAIGN = {"full": 3_000, "quick": 20}

# Main before the speed work (the speed issue's figures), and what the work aims for.
REFERENCE: dict[str, str] = {
    "twilio.bare": "",
    "twilio.sdk": "~640/s",
    "twilio.dispatcher": "~290/s",
    "twilio.vs_sdk": "0.45",
    "twilio.vs_bare": "",
    "sendgrid.bare": "",
    "sendgrid.sdk": "",
    "sendgrid.dispatcher": "",
    "sendgrid.vs_sdk": "0.5",
    "sendgrid.vs_bare": "",
    "send_many": "355-900/s",
    "decide.open": "36,000/s",
    "decide.quiet": "4,000-6,000/s",
    "next_open.simple": "740-4,500/s",
    "next_open.multi": "740-4,500/s",
    "memory": "",
}
GOAL: dict[str, str] = {
    "twilio.bare": "ceiling",
    "twilio.sdk": "",
    "twilio.dispatcher": "",
    "twilio.vs_sdk": ">= 0.90",
    "twilio.vs_bare": "",
    "sendgrid.bare": "ceiling",
    "sendgrid.sdk": "",
    "sendgrid.dispatcher": "",
    "sendgrid.vs_sdk": ">= 0.90",
    "sendgrid.vs_bare": "",
    "send_many": ">= 20,000/s",
    "decide.open": ">= 50,000/s",
    "decide.quiet": ">= 50,000/s",
    "next_open.simple": ">= 50,000/s",
    "next_open.multi": ">= 50,000/s",
    "memory": "flat",
}
LABELS: dict[str, str] = {
    "twilio.bare": "Twilio SMS: bare HTTP (requests.Session)",
    "twilio.sdk": "Twilio SMS: raw SDK messages.create",
    "twilio.dispatcher": "Twilio SMS: Dispatcher.send via TwilioSMS",
    "twilio.vs_sdk": "Twilio SMS: ratio Dispatcher / raw SDK",
    "twilio.vs_bare": "Twilio SMS: ratio Dispatcher / bare HTTP",
    "sendgrid.bare": "SendGrid: bare HTTP (requests.Session)",
    "sendgrid.sdk": "SendGrid: raw SDK send",
    "sendgrid.dispatcher": "SendGrid: Dispatcher.send via SendGridEmail",
    "sendgrid.vs_sdk": "SendGrid: ratio Dispatcher / raw SDK",
    "sendgrid.vs_bare": "SendGrid: ratio Dispatcher / bare HTTP",
    "send_many": "send_many, Outbox + MemoryStore, no network",
    "decide.open": "FallbackStrategy.decide, first choice open",
    "decide.quiet": "FallbackStrategy.decide, inside quiet hours",
    "next_open.simple": "Schedule.next_open, seen, nights",
    "next_open.multi": "Schedule.next_open, seen, multi-window",
    "memory": "peak memory of the run (maxrss)",
}


@dataclass(frozen=True)
class Settings:
    quick: bool
    latency: float


def rate(call: Callable[[], object], settings: Settings, kind: str) -> float:
    """Calls per second of ``call``: the best of ROUNDS timed rounds, or QUICK_CALLS calls."""
    call()  # warm: connections, caches, lazy imports
    if settings.quick:
        started = time.perf_counter()
        for _ in range(QUICK_CALLS):
            call()
        return QUICK_CALLS / (time.perf_counter() - started)
    best = 0.0
    for _ in range(ROUNDS):
        calls, started = 0, time.perf_counter()
        deadline = started + SECONDS[kind]
        while True:
            call()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - started))
    return best


def expect(what: str, got: object, wanted: object) -> None:
    """Stop the bench when a send did not go through: its rate would mean nothing."""
    if got != wanted:
        sys.exit(f"{what}: expected {wanted!r}, got {got!r}")


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """The SDK's own requests-based client, sent to the stand-in instead of api.twilio.com."""

    def __init__(self, origin: str) -> None:
        super().__init__()
        self._origin = origin

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("://", 1)[1].partition("/")[2]
        return super().request(method, f"{self._origin}/{path}", *args, **kwargs)


def twilio_calls(origin: str) -> dict[str, Callable[[], object]]:
    session = requests.Session()
    form = {"To": TO_NUMBER, "From": FROM_NUMBER, "Body": BODY}

    def bare() -> None:
        answer = session.post(origin + TWILIO_PATH, data=form, auth=(ACCOUNT_SID, TOKEN))
        expect("bare Twilio", answer.status_code, 201)
        answer.json()

    client = Client(ACCOUNT_SID, TOKEN, http_client=RebasedHttpClient(origin))
    client.edge = client.region = None

    def sdk() -> None:
        message = client.messages.create(to=TO_NUMBER, from_=FROM_NUMBER, body=BODY)
        expect("raw Twilio SDK", message.status, "queued")

    adapter = TwilioSMS(
        account_sid=ACCOUNT_SID, auth_token=TOKEN, from_number=FROM_NUMBER, base_url=origin
    )
    return {"bare": bare, "sdk": sdk, "dispatcher": dispatcher_call(adapter, "sms", TO_NUMBER)}


def sendgrid_calls(origin: str) -> dict[str, Callable[[], object]]:
    session = requests.Session()
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

    client = sendgrid.SendGridAPIClient(api_key=TOKEN, host=origin)

    def sdk() -> None:
        mail = Mail(
            from_email=FROM_EMAIL, to_emails=TO_EMAIL, subject=SUBJECT, plain_text_content=BODY
        )
        expect("raw SendGrid SDK", client.send(mail).status_code, 202)

    adapter = SendGridEmail(api_key=TOKEN, from_email=FROM_EMAIL, base_url=origin)
    return {"bare": bare, "sdk": sdk, "dispatcher": dispatcher_call(adapter, "email", TO_EMAIL)}


def dispatcher_call(adapter: Any, channel: str, address: str) -> Callable[[], object]:
    """``Dispatcher.send`` of one message through ``adapter``, on a working Monday morning."""
    dispatcher = Dispatcher(adapters=[adapter], clock=ManualClock(MONDAY))
    contact = Contact(
        id="person",
        timezone="America/Detroit",
        points=[ContactPoint(channel=channel, address=address)],
        preferences=Preferences(channels=[channel]),
    )
    message = Message(body=BODY, subject=SUBJECT)

    def send() -> None:
        expect(
            f"Dispatcher.send ({channel})",
            dispatcher.send(contact, message).status,
            Status.ACCEPTED,
        )

    return send


def http_rows(origins: Origins, settings: Settings) -> dict[str, float]:
    figures: dict[str, float] = {}
    for provider, calls in (
        ("twilio", twilio_calls(origins.twilio)),
        ("sendgrid", sendgrid_calls(origins.sendgrid)),
    ):
        for name, call in calls.items():
            figures[f"{provider}.{name}"] = rate(call, settings, "http")
        mine = figures[f"{provider}.dispatcher"]
        figures[f"{provider}.vs_sdk"] = mine / figures[f"{provider}.sdk"]
        figures[f"{provider}.vs_bare"] = mine / figures[f"{provider}.bare"]
    return figures


def local_rows(settings: Settings) -> dict[str, float]:
    figures: dict[str, float] = {}
    count = CAMPAIGN["quick" if settings.quick else "full"]
    campaign(min(count, 20), keep=True)  # warm
    made, seconds = campaign(count, keep=True)
    expect("send_many dispatches", made, count)
    figures["send_many"] = made / seconds
    decide = decide_cases()
    figures["decide.open"] = rate(decide[0][1], settings, "cpu")
    figures["decide.quiet"] = rate(decide[2][1], settings, "cpu")
    schedules = schedule_cases()
    figures["next_open.simple"] = rate(schedules[0][1], settings, "cpu")
    figures["next_open.multi"] = rate(schedules[1][1], settings, "cpu")
    return figures


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes / KiB


def shown(key: str, value: float) -> str:
    if key == "memory":
        return f"{value:,.0f} MiB"
    if ".vs_" in key:
        return f"{value:.2f}"
    return f"{value:,.0f}/s"


def table(figures: dict[str, float]) -> list[str]:
    width = max(map(len, LABELS.values()))
    lines = [
        f"| {'measure':<{width}} | {'this run':>12} | {'main (ref)':>14} | {'goal':>12} |",
        f"|{'-' * (width + 2)}|{'-' * 13}:|{'-' * 15}:|{'-' * 13}:|",
    ]
    for key, label in LABELS.items():
        reference = REFERENCE[key] or "-"
        goal = GOAL[key] or "-"
        lines.append(
            f"| {label:<{width}} | {shown(key, figures[key]):>12} | {reference:>14} | {goal:>12} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few calls each: does it run?")
    parser.add_argument("--latency", type=float, default=0.0, help="stand-in delay, ms")
    args = parser.parse_args(argv)
    settings = Settings(quick=args.quick, latency=args.latency / 1000)
    began = time.perf_counter()
    print(
        f"multichannel {multichannel.__version__}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()} {sys.platform}; stand-in latency {args.latency:g} ms"
        + ("; --quick: figures mean nothing" if args.quick else "")
    )
    with serve(settings.latency) as origins:
        figures = http_rows(origins, settings)
    figures |= local_rows(settings)
    figures["memory"] = peak_rss_mib()
    print()
    print("\n".join(table(figures)))
    print(f"\ndone in {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
