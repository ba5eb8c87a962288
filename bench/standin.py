"""A local stand-in of Twilio's Messages and SendGrid's mail/send for the benchmarks.

It answers with the library's own responders (`multichannel.cli.demo.answers`,
the ones behind ``multichannel demo --providers local``), so the adapters and
the raw SDKs parse the same bodies Twilio and SendGrid send. Unlike the demo's
stand-ins it keeps nothing (memory stays flat however many requests it
answers), speaks HTTP/1.1 so that clients which keep connections alive can
(the ``requests``-based Twilio SDK does, SendGrid's urllib-based SDK does not),
and can wait ``latency`` seconds before each answer, as a distant API would.

Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from multichannel.cli.demo.answers import Respond, sendgrid, twilio
from multichannel.cli.demo.standins import read_request, write_answer

HOST = "127.0.0.1"
ACCOUNT_SID = "AC" + "0" * 32
TOKEN = "bench"
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
