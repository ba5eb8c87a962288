"""A local stand-in of Twilio's Messages and SendGrid's mail/send for the benchmarks.

It answers with the library's own responders (`multichannel.cli.demo.answers`,
the ones behind ``multichannel demo --providers local``), so the adapters and
the raw SDKs parse the same bodies Twilio and SendGrid send. Unlike the demo's
stand-ins it keeps nothing (memory stays flat however many requests it
answers), speaks HTTP/1.1 so that clients which keep connections alive can
(the ``requests``-based Twilio SDK does, SendGrid's urllib-based SDK does not),
and can wait ``latency`` seconds before each answer, as a distant API would.

`serve` runs the stand-ins on threads of the calling process, for the rows
that send one message after another. `serve_apart` runs them in a process of
their own, on aiohttp's server, for the rows that send 64 at a time: there the
stand-in answers many connections at once, and in a process of its own it
takes none of the interpreter's time from the client being measured. Run as
``python bench/standin.py --latency MS`` it is that process: it prints its
origins as one JSON line and serves until stdin closes.

Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import ACCOUNT_SID, HOST, serving

from multichannel.cli.demo.answers import Request, Respond, sendgrid, twilio
from multichannel.cli.demo.standins import read_request, write_answer

TWILIO_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
SENDGRID_PATH = "/v3/mail/send"


def _accept_everyone(address: str) -> tuple[bool, int | str | None]:
    return False, None


def _handler(respond: Respond, latency: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for the clients that want it
        # Headers and body go out in two writes; without TCP_NODELAY a kept-alive
        # client's delayed ACK would hold every answer back by ~40 ms.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            answer, _ = respond(read_request(self), _accept_everyone)
            if latency:
                time.sleep(latency)
            write_answer(self, answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent."""

    return Handler


@dataclass(frozen=True)
class Origins:
    """Where the stand-in listens: origins to pass as an adapter's ``base_url``."""

    twilio: str
    sendgrid: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


@contextmanager
def serve(latency: float = 0.0) -> Iterator[Origins]:
    """Run Twilio's and SendGrid's stand-ins on 127.0.0.1 while the block runs."""
    servers = [_Server((HOST, 0), _handler(respond, latency)) for respond in (twilio, sendgrid)]
    threads = [
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        for server in servers
    ]
    for thread in threads:
        thread.start()
    try:
        yield Origins(*(f"http://{HOST}:{server.server_address[1]}" for server in servers))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join()


@contextmanager
def serve_apart(latency: float = 0.0) -> Iterator[Origins]:
    """Run Twilio's and SendGrid's stand-ins in a process of their own while the block runs."""
    argv = [str(Path(__file__).resolve()), "--latency", str(latency * 1000)]
    with serving(argv, "the stand-in process") as (_, ready):
        yield Origins(**ready)


def _aiohttp_handler(respond: Respond, latency: float) -> Any:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        asked = Request(
            method=request.method,
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=await request.read(),
        )
        answer, _ = respond(asked, _accept_everyone)
        if latency:
            await asyncio.sleep(latency)
        body = b"" if answer.payload is None else json.dumps(answer.payload).encode()
        headers = dict(answer.headers)
        if body:
            headers["Content-Type"] = "application/json"
        return web.Response(status=answer.status, body=body, headers=headers)

    return handle


async def _serve_until_stdin_closes(latency: float) -> None:
    from aiohttp import web

    runners, origins = [], {}
    for name, respond in (("twilio", twilio), ("sendgrid", sendgrid)):
        app = web.Application()
        app.router.add_post("/{path:.*}", _aiohttp_handler(respond, latency))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        listening = socket.socket()
        listening.bind((HOST, 0))
        await web.SockSite(runner, listening, backlog=1024).start()
        runners.append(runner)
        origins[name] = f"http://{HOST}:{listening.getsockname()[1]}"
    print(json.dumps(origins), flush=True)
    await asyncio.to_thread(sys.stdin.read)  # returns when the parent closes our stdin
    for runner in runners:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Twilio and SendGrid stand-ins on 127.0.0.1.")
    parser.add_argument("--latency", type=float, default=0.0, help="wait before answering, ms")
    asyncio.run(_serve_until_stdin_closes(parser.parse_args().latency / 1000))
