"""Signed Twilio status callbacks through the webhook app under uvicorn, 16 at a time.

The app is the one ``multichannel serve`` runs (`multichannel.webhooks.create_app`),
under uvicorn on 127.0.0.1, in a process of its own so that the client firing
the callbacks takes none of its time. Run as ``python bench/webhooks.py
--store STORE --count N`` it is that process: it sends N messages through an
`Outbox` (a working Monday morning, so each is accepted with a provider id),
prints its port and those ids as one JSON line, serves until its stdin closes,
then prints how many dispatches ended delivered.

The bench process signs one ``delivered`` status callback per message, as
Twilio does (`twilio.request_validator.RequestValidator`, the app's own URL),
and posts them 16 at a time with aiohttp; every callback changes a dispatch
and is saved. The reference is the same app's health route (``GET /healthz``,
one store read), fired the same way: the ratio is what recording a callback
costs next to a request that does almost nothing. For the in-memory store and
SQLite (a file in a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from common import (
    ACCOUNT_SID,
    FROM_NUMBER,
    HOST,
    Row,
    Settings,
    expect,
    one_point_contact,
    per_second,
    progress,
    ratio,
    serving,
)
from strategy import MONDAY
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "bench-twilio-auth-token"
AT_ONCE = 16
COUNT = {"full": 1_000, "quick": 20}  # callbacks, one per dispatch


def serve(store_url: str, count: int) -> None:
    """The server process: dispatches to call back about, then the app under uvicorn."""
    import uvicorn

    from multichannel import Dispatcher, ManualClock, MemoryStore, Message, Outbox, SQLStore, Status
    from multichannel.webhooks import create_app

    store = MemoryStore() if store_url == "memory" else SQLStore(store_url)
    outbox = Outbox()
    dispatcher = Dispatcher(adapters=[outbox], clock=ManualClock(MONDAY), store=store)
    contacts = (
        one_point_contact("sms", f"+1734555{number:04d}", number) for number in range(count)
    )
    for result in dispatcher.send_many(contacts, Message(body="Your order has shipped.")):
        expect("dispatch accepted", result.dispatch and result.dispatch.status, Status.ACCEPTED)
    app = create_app(dispatcher, twilio_auth_token=AUTH_TOKEN, health_path="/healthz")
    listening = socket.socket()
    listening.bind((HOST, 0))
    listening.listen(AT_ONCE * 8)  # callers wait in the backlog until uvicorn accepts
    sent = [[message.provider_id, message.address] for message in outbox.sent]
    print(json.dumps({"port": listening.getsockname()[1], "sent": sent}), flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    server.run(sockets=[listening])
    delivered = sum(1 for _ in store.dispatches(Status.DELIVERED))
    print(json.dumps({"delivered": delivered}), flush=True)


# What the client sends: method, path, body and headers, prepared before timing.
Call = tuple[str, str, bytes, dict[str, str]]
PROBE: Call = ("GET", "/healthz", b"", {})


def _callbacks(port: int, sent: list[list[str]]) -> list[Call]:
    """One signed ``delivered`` status callback per message, as Twilio posts them."""
    url = f"http://{HOST}:{port}/twilio/status"
    validator = RequestValidator(AUTH_TOKEN)
    signed = []
    for sid, to in sent:
        form = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "From": FROM_NUMBER,
            "MessageSid": sid,
            "MessageStatus": "delivered",
            "SmsSid": sid,
            "SmsStatus": "delivered",
            "To": to,
        }
        headers = {
            "X-Twilio-Signature": validator.compute_signature(url, form),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        signed.append(("POST", "/twilio/status", urlencode(form).encode(), headers))
    return signed


async def _fire(port: int, callbacks: list[Call], probes: int) -> tuple[float, float]:
    """Requests per second: ``probes`` health probes, then every callback, AT_ONCE at a time."""
    origin = f"http://{HOST}:{port}"
    connector = aiohttp.TCPConnector(limit=AT_ONCE)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def timed(calls: list[Call]) -> float:
            queue = iter(calls)  # shared: each connection takes the next call when it is free

            async def one_connection() -> None:
                for method, path, body, headers in queue:
                    async with session.request(
                        method, origin + path, data=body, headers=headers
                    ) as answer:
                        expect(f"{method} {path}", answer.status, 200)
                        await answer.read()

            started = time.perf_counter()
            await asyncio.gather(*(one_connection() for _ in range(AT_ONCE)))
            return len(calls) / (time.perf_counter() - started)

        await timed([PROBE] * AT_ONCE)  # warm: open the connections
        return await timed([PROBE] * probes), await timed(callbacks)


def measure(store_url: str, count: int) -> tuple[float, float]:
    """(health route, status callbacks) per second against a server on ``store_url``."""
    argv = [str(Path(__file__).resolve()), "--store", store_url, "--count", str(count)]
    with serving(argv, "the webhook server") as (child, started):
        callbacks = _callbacks(started["port"], started["sent"])
        expect("dispatches to call back about", len(callbacks), count)
        health, recorded = asyncio.run(_fire(started["port"], callbacks, count))
    # Once stopped, the server reports what its store holds.
    assert child.stdout is not None
    report = child.stdout.readline()
    expect("dispatches delivered by the callbacks", json.loads(report)["delivered"], count)
    return health, recorded


def rows(settings: Settings) -> list[Row]:
    count = COUNT["quick" if settings.quick else "full"]
    table: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="multichannel-bench-") as folder:
        stores = {"MemoryStore": "memory", "SQLite": f"sqlite:///{folder}/webhooks.db"}
        reference = {
            "MemoryStore": ("922/s", "0.27", ">= 0.80"),
            "SQLite": ("398/s", "0.12", ">= 0.50"),
        }
        for name, url in stores.items():
            progress(f"webhooks on {name}: {count:,} signed Twilio callbacks, {AT_ONCE} at a time")
            health, recorded = measure(url, count)
            main_rate, main_ratio, goal = reference[name]
            where = f"webhooks, {name}, {AT_ONCE} at a time"
            table += [
                Row(f"{where}: GET /healthz (no-op route)", per_second(health), "~3,400/s"),
                Row(f"{where}: signed Twilio status callbacks", per_second(recorded), main_rate),
                Row(
                    f"{where}: callbacks / no-op route", ratio(recorded / health), main_ratio, goal
                ),
            ]
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The webhook app under uvicorn, for the bench.")
    parser.add_argument("--store", required=True, help="'memory' or a SQLAlchemy URL")
    parser.add_argument("--count", type=int, required=True, help="dispatches to create first")
    arguments = parser.parse_args()
    serve(arguments.store, arguments.count)
