"""Many messages at once against a distant provider: send_many and asend_many at concurrency 64.

The stand-in runs in a process of its own (`standin.serve_apart`) and waits 50
ms (``--concurrent-latency``) before each answer, as a distant API would. For
Twilio and SendGrid in turn this measures:

- the ceiling: a bare aiohttp client posting the same requests, 64 at once, to
  the same stand-in; the ceiling is the lower of its rate and 64 ÷ latency;
- the raw SDK in a plain loop, one message after another: what a user without
  this library gets without writing concurrent code;
- the library at concurrency 64: ``send_many`` (threads) and ``asend_many``
  (the adapter's ``asend``) through `TwilioSMS`, ``asend_many`` through
  `SendGridEmail`, with the default `MemoryStore`.

Each library rate is then divided by the ceiling (1.0: the library adds
nothing) and by the sequential SDK (64x at most: what concurrency buys).
A full run times each rate for a few seconds; ``--quick`` sends 2 x 64.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from itertools import count
from urllib.parse import urlencode

import aiohttp
from common import (
    ACCOUNT_SID,
    BODY,
    FROM_EMAIL,
    FROM_NUMBER,
    SUBJECT,
    TO_EMAIL,
    TOKEN,
    Row,
    Settings,
    expect,
    one_point_contact,
    per_second,
    progress,
    rate,
    ratio,
    times,
    until,
)
from sequential import (
    sendgrid_adapter,
    sendgrid_sdk,
    twilio_adapter,
    twilio_sdk,
)
from standin import SENDGRID_PATH, TWILIO_PATH, serve_apart
from strategy import MONDAY

from multichannel import BatchResult, Contact, Dispatcher, ManualClock, Message, Status

CONCURRENCY = 64
SECONDS = 2.0  # how long each concurrent rate is timed, full run
QUICK_SENDS = 2 * CONCURRENCY  # sends of each concurrent rate with --quick
POOL = 1_000  # distinct contacts, built before timing and cycled through

Post = Callable[[], Awaitable[None]]


def _bare_twilio(session: aiohttp.ClientSession, origin: str) -> Post:
    url = origin + TWILIO_PATH
    numbers = count()
    secret = base64.b64encode(f"{ACCOUNT_SID}:{TOKEN}".encode()).decode()
    headers = {
        "Authorization": f"Basic {secret}",
        "Content-Type": "application/x-www-form-urlencoded",
    }

    async def post() -> None:
        form = {"To": f"+1734555{next(numbers) % 10_000:04d}", "From": FROM_NUMBER, "Body": BODY}
        async with session.post(url, data=urlencode(form), headers=headers) as answer:
            expect("bare Twilio (aiohttp)", answer.status, 201)
            json.loads(await answer.read())

    return post


def _bare_sendgrid(session: aiohttp.ClientSession, origin: str) -> Post:
    url = origin + SENDGRID_PATH
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def post() -> None:
        payload = {
            "personalizations": [{"to": [{"email": TO_EMAIL}]}],
            "from": {"email": FROM_EMAIL},
            "subject": SUBJECT,
            "content": [{"type": "text/plain", "value": BODY}],
        }
        async with session.post(url, data=json.dumps(payload), headers=headers) as answer:
            expect("bare SendGrid (aiohttp)", answer.status, 202)
            await answer.read()

    return post


async def _bare_rate(provider: str, origin: str, settings: Settings) -> float:
    """Posts per second of a bare aiohttp client, CONCURRENCY at once."""
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        post = (_bare_twilio if provider == "twilio" else _bare_sendgrid)(session, origin)
        await asyncio.gather(*(post() for _ in range(CONCURRENCY)))  # warm: open connections
        # One shared supply of turns: each connection posts while there are any left.
        turns = until(*_bounds(settings), range(CONCURRENCY))

        async def one_connection() -> int:
            posted = 0
            for _ in turns:
                await post()
                posted += 1
            return posted

        started = time.perf_counter()
        posted = await asyncio.gather(*(one_connection() for _ in range(CONCURRENCY)))
        return sum(posted) / (time.perf_counter() - started)


def _contacts(channel: str) -> list[Contact]:
    if channel == "sms":
        return [one_point_contact("sms", f"+1734555{n:04d}", n) for n in range(POOL)]
    return [one_point_contact("email", f"person{n}@example.com", n) for n in range(POOL)]


def _bounds(settings: Settings) -> tuple[float | None, int | None]:
    if settings.quick:
        return None, QUICK_SENDS
    return time.perf_counter() + SECONDS, None


def _check(results: list[BatchResult]) -> int:
    """How many sends were accepted: all of them, or the bench stops."""
    accepted = sum(r.dispatch is not None and r.dispatch.status is Status.ACCEPTED for r in results)
    expect(f"sends accepted at concurrency {CONCURRENCY}", accepted, len(results))
    return accepted


def _send_many_rate(dispatcher: Dispatcher, channel: str, settings: Settings) -> float:
    contacts, message = _contacts(channel), Message(body=BODY, subject=SUBJECT)
    _check(list(dispatcher.send_many(contacts[:CONCURRENCY], message, concurrency=CONCURRENCY)))
    deadline, limit = _bounds(settings)
    started = time.perf_counter()
    results = dispatcher.send_many(
        until(deadline, limit, contacts), message, concurrency=CONCURRENCY
    )
    done = _check(list(results))
    return done / (time.perf_counter() - started)


async def _asend_many_rate(dispatcher: Dispatcher, channel: str, settings: Settings) -> float:
    contacts, message = _contacts(channel), Message(body=BODY, subject=SUBJECT)

    async def run(batch: Iterable[Contact]) -> int:
        stream = dispatcher.asend_many(batch, message, concurrency=CONCURRENCY)
        return _check([result async for result in stream])

    await run(contacts[:CONCURRENCY])  # warm
    deadline, limit = _bounds(settings)
    started = time.perf_counter()
    done = await run(until(deadline, limit, contacts))
    return done / (time.perf_counter() - started)


def _library(provider: str, origin: str, settings: Settings) -> dict[str, float]:
    """The library's rates at concurrency 64, each with a dispatcher and adapter of its own."""

    def dispatcher() -> Dispatcher:
        adapter = twilio_adapter(origin) if provider == "twilio" else sendgrid_adapter(origin)
        return Dispatcher(adapters=[adapter], clock=ManualClock(MONDAY))

    if provider == "twilio":
        return {
            "send_many via TwilioSMS": _send_many_rate(dispatcher(), "sms", settings),
            "asend_many via TwilioSMS": asyncio.run(
                _asend_many_rate(dispatcher(), "sms", settings)
            ),
        }
    return {
        "asend_many via SendGridEmail": asyncio.run(
            _asend_many_rate(dispatcher(), "email", settings)
        )
    }


# Main before the speed work: the library's rate, its ratio to the ceiling and to the SDK.
REFERENCE = {
    "twilio": ("200-400/s", "0.2-0.35", "~13x"),
    "sendgrid": ("101/s", "0.2-0.35", "~5x"),
}


def rows(settings: Settings) -> list[Row]:
    latency = settings.concurrent_latency
    ms = f"{latency * 1000:g} ms"
    table: list[Row] = []
    with serve_apart(latency) as origins:
        for provider, origin in (("twilio", origins.twilio), ("sendgrid", origins.sendgrid)):
            name = "Twilio SMS" if provider == "twilio" else "SendGrid"
            where = f"{name}, {CONCURRENCY} at once, {ms}"
            progress(f"{where}: bare aiohttp, the raw SDK one at a time, the library")
            bare = asyncio.run(_bare_rate(provider, origin, settings))
            ceiling = min(bare, CONCURRENCY / latency) if latency else bare
            sdk_call = twilio_sdk(origin) if provider == "twilio" else sendgrid_sdk(origin)
            sdk = rate(sdk_call, settings, "http")
            table += [
                Row(f"{where}: bare aiohttp client", per_second(bare), "~1,150/s"),
                Row(f"{where}: ceiling, min(bare, 64 / latency)", per_second(ceiling)),
                Row(f"{name}, {ms}: raw SDK one at a time", per_second(sdk)),
            ]
            main_rate, main_ceiling, main_sdk = REFERENCE[provider]
            for how, figure in _library(provider, origin, settings).items():
                table += [
                    Row(f"{where}: {how}", per_second(figure), main_rate),
                    Row(
                        f"{where}: {how} / ceiling",
                        ratio(figure / ceiling),
                        main_ceiling,
                        ">= 0.80",
                    ),
                    Row(
                        f"{where}: {how} / raw SDK one at a time",
                        times(figure / sdk),
                        main_sdk,
                        ">= 30x",
                    ),
                ]
    return table
