"""The ready-made ASGI app, and the one place where verified events reach the dispatcher.

Starlette is imported when `create_app` is called, so `record_events` and
`arecord_events` serve users of any web framework without it installed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import aclosing
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard
from urllib.parse import urlsplit

from pydantic import SecretStr

from multichannel._redact import mask_address
from multichannel.dispatch import DeliveryEvent, Dispatch, EventKind
from multichannel.errors import ConfigurationError, UnknownDispatch
from multichannel.webhooks._signatures import (
    MalformedWebhook,
    SendGridSignature,
    SignatureError,
    TelnyxSignature,
    TwilioSignature,
    header,
)
from multichannel.webhooks.sendgrid import SendGridWebhooks
from multichannel.webhooks.telnyx import TelnyxWebhooks
from multichannel.webhooks.twilio import TwilioWebhooks

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from multichannel.dispatcher import Dispatcher

__all__ = ["arecord_events", "create_app", "record_events"]

logger = logging.getLogger("multichannel.webhooks")

_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_MIB = 1024 * 1024
# Waits, in seconds, between tries of recording one callback: a store busy for a moment
# (SQLite's "database is locked") should not lose a STOP, nor cost a redelivery.
_RECORD_BACKOFF = (0.05, 0.25, 1.0)
# After the last try the provider is told to deliver the callback again this much later.
_RETRY_AFTER_SECONDS = 30
_HEALTH_PROBE = "healthz-probe"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def record_events(dispatcher: Dispatcher, events: Iterable[DeliveryEvent]) -> list[Dispatch]:
    """Apply verified events in order and return the dispatches they settled.

    Every opt-out in the batch is recorded first, apart from the rest, so that
    nothing later in the batch can lose it; opting back in takes its turn in
    order. An event that matches no dispatch is logged at info and skipped
    (answering the provider with an error would only make it send the event
    again), and so is a fallback an adapter set up wrongly cannot make: that
    dispatch stays due on the same step and says so loudly (ConfigurationError
    at error level, and not returned) until the setting is fixed. Repeating an
    event changes nothing. A failing store raises, so that the provider
    delivers again.
    """
    batch = _consent_first(dispatcher, events)
    matched = []
    for event in batch:
        try:
            matched.append(dispatcher.record(event))
        except UnknownDispatch:
            _log_unmatched(event)
        except ConfigurationError as err:
            _log_misconfigured(event, err)
    return matched


async def arecord_events(dispatcher: Dispatcher, events: Iterable[DeliveryEvent]) -> list[Dispatch]:
    """The async twin of `record_events`."""
    batch = _consent_first(dispatcher, events)
    matched = []
    for event in batch:
        try:
            matched.append(await dispatcher.arecord(event))
        except UnknownDispatch:
            _log_unmatched(event)
        except ConfigurationError as err:
            _log_misconfigured(event, err)
    return matched


def _consent_first(dispatcher: Dispatcher, events: Iterable[DeliveryEvent]) -> list[DeliveryEvent]:
    """Record every opt-out of the batch, each on its own; raise the first failure after all."""
    batch = list(events)
    failure: Exception | None = None
    for event in batch:
        try:
            dispatcher.record_consent(event)
        except Exception as err:
            failure = failure or err
    if failure is not None:
        raise failure
    return batch


def _log_misconfigured(event: DeliveryEvent, err: ConfigurationError) -> None:
    logger.error(
        "a %s event was recorded, but the fallback it calls for cannot be sent: %s; "
        "the dispatch stays due and is tried again",
        event.kind.value,
        err,
    )


_CONSENT_KINDS = frozenset({EventKind.OPTED_OUT, EventKind.OPTED_IN})


def _log_unmatched(event: DeliveryEvent) -> None:
    # The dispatcher's own message may quote the whole event; this one masks the address.
    where = f" on {event.channel} {mask_address(event.address)}" if event.address else ""
    # An opt-out or opt-in was recorded all the same; only the dispatch part had no match.
    kept = "its consent recorded" if event.kind in _CONSENT_KINDS else "ignored"
    logger.info(
        "a %s event%s matches no dispatch (provider id %s, dispatch id %s); %s",
        event.kind.value,
        where,
        event.provider_id,
        event.dispatch_id,
        kept,
    )


def create_app(
    dispatcher: Dispatcher,
    *,
    twilio_auth_token: str | SecretStr | None = None,
    sendgrid_public_key: str | None = None,
    telnyx_public_key: str | None = None,
    tolerance: timedelta = timedelta(minutes=5),
    public_url: str | None = None,
    trust_forwarded: bool = False,
    max_body: int = _MIB,
    health_path: str | None = "/healthz",
) -> Starlette:
    """A Starlette app that verifies provider callbacks and feeds them to ``dispatcher``.

    POST routes: ``/twilio/status``, ``/twilio/inbound`` and ``/twilio/calls``
    with ``twilio_auth_token``; ``/sendgrid/events`` with
    ``sendgrid_public_key``; ``/telnyx/fax`` with ``telnyx_public_key``. A
    provider left unconfigured has its routes answer 404. Answers 403 to a
    missing or bad signature (a missing one before the body is read), 413 to
    a body longer than ``max_body`` bytes (before it is buffered), 400 to a
    malformed body, and 200 once the events are recorded. Recording runs off
    the event loop; when it fails (a busy store) it is tried again, then
    answered 503 with Retry-After so the provider delivers it again.

    ``GET health_path`` answers 200 while the store answers and 503 when it
    does not, without a signature; None leaves that route out. Twilio signs
    the URL it called: behind a proxy, give ``public_url`` (the public address
    where this app is mounted, e.g. ``https://example.com/hooks``) or set
    ``trust_forwarded`` to read the Forwarded header (RFC 7239) and
    X-Forwarded-Proto, -Host and -Port. SendGrid and Telnyx signatures older
    than ``tolerance`` by the dispatcher's clock are refused. Raises
    ConfigurationError when Starlette is missing, no provider is configured,
    a secret or key is unusable, ``public_url`` is not an http(s) URL,
    ``max_body`` is not a positive number of bytes or ``health_path`` is not
    a path.
    """
    try:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route
    except ImportError:
        raise ConfigurationError(
            "create_app needs Starlette: pip install 'multichannel[webhooks]'"
        ) from None
    if twilio_auth_token is None and sendgrid_public_key is None and telnyx_public_key is None:
        raise ConfigurationError(
            "create_app needs at least one of twilio_auth_token, sendgrid_public_key "
            "and telnyx_public_key; every route would answer 404"
        )
    endpoints = _Endpoints(
        dispatcher,
        response=Response,
        public_url=_check_public_url(public_url),
        trust_forwarded=trust_forwarded,
        max_body=_check_max_body(max_body),
    )
    routes = []
    if health_path is not None:
        routes.append(Route(_check_health_path(health_path), endpoints.health, methods=["GET"]))
    if twilio_auth_token is not None:
        twilio = TwilioWebhooks(auth_token=twilio_auth_token)
        routes += [
            Route("/twilio/status", endpoints.twilio(twilio.message_status), methods=["POST"]),
            Route(
                "/twilio/inbound",
                endpoints.twilio(twilio.inbound_message, twiml=True),
                methods=["POST"],
            ),
            Route("/twilio/calls", endpoints.twilio(twilio.call_status), methods=["POST"]),
        ]
    if sendgrid_public_key is not None:
        sendgrid = SendGridWebhooks(
            public_key=sendgrid_public_key, tolerance=tolerance, clock=dispatcher.clock
        )
        routes.append(
            Route(
                "/sendgrid/events",
                endpoints.signed(sendgrid.events, SendGridSignature),
                methods=["POST"],
            )
        )
    if telnyx_public_key is not None:
        telnyx = TelnyxWebhooks(
            public_key=telnyx_public_key, tolerance=tolerance, clock=dispatcher.clock
        )
        routes.append(
            Route(
                "/telnyx/fax",
                endpoints.signed(telnyx.fax_events, TelnyxSignature),
                methods=["POST"],
            )
        )
    return Starlette(routes=routes)


def _check_public_url(public_url: str | None) -> str | None:
    if public_url is None:
        return None
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigurationError(
            f"public_url {public_url!r} is not an http(s) URL without a query, "
            "such as 'https://example.com/hooks'"
        )
    return public_url.strip().rstrip("/")


def _check_max_body(max_body: int) -> int:
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ConfigurationError(f"max_body must be a positive number of bytes, not {max_body!r}")
    return max_body


def _check_health_path(path: str) -> str:
    if not path.startswith("/") or any(char in path for char in "?# \t\r\n"):
        raise ConfigurationError(
            f"health_path {path!r} is not a path such as '/healthz'; None leaves the route out"
        )
    return path


class _TwilioReader(Protocol):
    def __call__(
        self, *, url: str, body: bytes | str, headers: Mapping[str, str]
    ) -> list[DeliveryEvent]: ...


class _SignedReader(Protocol):
    def __call__(self, *, body: bytes, headers: Mapping[str, str]) -> list[DeliveryEvent]: ...


_Endpoint = Callable[["Request"], Awaitable["Response"]]


class _BodyTooLarge(Exception):
    """The body is longer than the app accepts; it was not read to the end."""


class _Endpoints:
    """Builds each route's endpoint; every one answers the same failures the same way."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        response: type[Response],
        public_url: str | None,
        trust_forwarded: bool,
        max_body: int,
    ) -> None:
        self._dispatcher = dispatcher
        self._response = response
        self._public_url = public_url
        self._trust_forwarded = trust_forwarded
        self._max_body = max_body

    def twilio(self, read: _TwilioReader, *, twiml: bool = False) -> _Endpoint:
        async def endpoint(request: Request) -> Response:
            def verified(body: bytes) -> list[DeliveryEvent]:
                return read(url=self._signed_url(request), body=body, headers=request.headers)

            return await self._answer(
                request,
                TwilioSignature,
                verified,
                ok=_EMPTY_TWIML if twiml else "",
                media_type="text/xml" if twiml else "text/plain",
            )

        return endpoint

    def signed(
        self, read: _SignedReader, signature: type[SendGridSignature | TelnyxSignature]
    ) -> _Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self._answer(
                request,
                signature,
                lambda body: read(body=body, headers=request.headers),
                ok="",
                media_type="text/plain",
            )

        return endpoint

    async def health(self, request: Request) -> Response:
        """200 while the store answers a read, 503 when it does not."""
        from starlette.concurrency import run_in_threadpool

        try:
            await run_in_threadpool(self._dispatcher.store.get, _HEALTH_PROBE)
        except Exception as err:
            logger.warning("health check: the store did not answer (%s)", _error_name(err))
            return self._plain("store unavailable\n", 503, {"Cache-Control": "no-store"})
        return self._plain("ok\n", 200, {"Cache-Control": "no-store"})

    async def _answer(
        self,
        request: Request,
        signature: type[TwilioSignature | SendGridSignature | TelnyxSignature],
        read: Callable[[bytes], list[DeliveryEvent]],
        *,
        ok: str,
        media_type: str,
    ) -> Response:
        try:
            signature.require_headers(request.headers)
            events = read(await self._body(request))
        except SignatureError as err:
            logger.warning("refused a %s callback: its signature is %s", err.provider, err.reason)
            return self._plain(f"signature {err.reason}\n", 403)
        except MalformedWebhook as err:
            logger.warning("refused a malformed %s callback: %s", err.provider, err)
            return self._plain(f"{err}\n", 400)
        except _BodyTooLarge:
            logger.warning(
                "refused a %s callback: its body is longer than %d bytes",
                signature.provider,
                self._max_body,
            )
            # The rest of the body is never read, so the connection cannot carry another request.
            message = f"the body is longer than {self._max_body} bytes\n"
            return self._plain(message, 413, {"Connection": "close"})
        if not await self._recorded(events, signature.provider):
            return self._plain(
                "the callback could not be recorded now; send it again\n",
                503,
                {"Retry-After": str(_RETRY_AFTER_SECONDS)},
            )
        return self._response(ok, 200, media_type=media_type)

    async def _body(self, request: Request) -> bytes:
        """The body, refused as soon as it is known to be longer than ``max_body``."""
        declared = header(request.headers, "Content-Length") or ""
        if declared.isascii() and declared.isdigit() and int(declared) > self._max_body:
            raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        async with aclosing(request.stream()) as stream:
            async for chunk in stream:
                size += len(chunk)
                if size > self._max_body:
                    raise _BodyTooLarge
                chunks.append(chunk)
        return b"".join(chunks)

    async def _recorded(self, events: list[DeliveryEvent], provider: str) -> bool:
        """Whether ``events`` were recorded, trying again while the store fails."""
        from starlette.concurrency import run_in_threadpool

        if not events:
            return True
        for wait in (*_RECORD_BACKOFF, None):
            try:
                # The store blocks; off the loop, other callbacks are answered meanwhile.
                await run_in_threadpool(record_events, self._dispatcher, events)
            except Exception as err:
                # Only the error's type is logged: its words may quote an address or a URL.
                if wait is None:
                    logger.error(
                        "could not record a %s callback after %d tries (%s); answered 503 "
                        "so the provider sends it again",
                        provider,
                        len(_RECORD_BACKOFF) + 1,
                        _error_name(err),
                    )
                    return False
                logger.warning(
                    "could not record a %s callback (%s); trying again in %g s",
                    provider,
                    _error_name(err),
                    wait,
                )
                await self._dispatcher.clock.asleep(wait)
            else:
                return True
        return False

    def _plain(self, text: str, status: int, headers: Mapping[str, str] | None = None) -> Response:
        return self._response(text, status, headers=headers, media_type="text/plain")

    def _signed_url(self, request: Request) -> str:
        """The URL the provider called, as it signed it."""
        url = request.url
        if self._public_url is not None:
            query = f"?{url.query}" if url.query else ""
            return self._public_url + _route_path(request.scope) + query
        if not self._trust_forwarded:
            return str(url)
        # Each part as the outermost proxy saw it: from the first element of Forwarded
        # where it names that part, else from the first value of the X-Forwarded- header.
        headers = request.headers
        forwarded = _forwarded(header(headers, "Forwarded"))
        scheme = forwarded.get("proto") or _first(header(headers, "X-Forwarded-Proto")) or ""
        if scheme.lower() in ("http", "https"):
            url = url.replace(scheme=scheme.lower())
        host = forwarded.get("host")
        if _plausible_host(host):
            netloc = host  # Forwarded has no port parameter: its host carries the port.
        else:
            forwarded_host = _first(header(headers, "X-Forwarded-Host"))
            netloc = forwarded_host if _plausible_host(forwarded_host) else url.netloc
            port = _first(header(headers, "X-Forwarded-Port"))
            if port is not None:
                netloc = _with_port(netloc, port, url.scheme)
        return str(url.replace(netloc=netloc))


def _error_name(err: BaseException) -> str:
    """The error's type, module included, to log in place of words that may quote a secret."""
    kind = type(err)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _first(value: str | None) -> str | None:
    """The first of a comma-separated header's values: the one the outermost proxy saw."""
    return None if value is None else value.split(",")[0].strip() or None


# One forwarded-pair of RFC 7239: a token name, then a token or a quoted string.
_FORWARDED_PAIR = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[!#$%&'*+.^_`|~0-9A-Za-z:\[\]-]*)\s*"""
)
_QUOTED_PAIR = re.compile(r"\\(.)")


def _forwarded(value: str | None) -> dict[str, str]:
    """The parameters of the first element of an RFC 7239 Forwarded header, names lower-cased.

    A header that does not parse gives nothing rather than a guess.
    """
    found: dict[str, str] = {}
    if value is None:
        return found
    position = 0
    while True:
        pair = _FORWARDED_PAIR.match(value, position)
        if pair is None:
            return {}
        name, raw = pair.groups()
        if raw.startswith('"'):
            raw = _QUOTED_PAIR.sub(r"\1", raw[1:-1])
        found.setdefault(name.lower(), raw)
        position = pair.end()
        if position == len(value) or value[position] == ",":
            return found
        if value[position] != ";":
            return {}
        position += 1


def _plausible_host(host: str | None) -> TypeGuard[str]:
    """Whether ``host`` can stand as a URL's host and port, with nothing that moves its path."""
    return bool(host) and not any(char in host for char in "/?#@\\ \t") if host else False


def _with_port(netloc: str, port: str, scheme: str) -> str:
    """``netloc`` with ``port`` for its port, none for the scheme's default; as is for no port."""
    if not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
        return netloc
    host = netloc.rpartition("@")[2]
    # The colons of an IPv6 literal are not a port's.
    bracketed = host.startswith("[")
    host = host.partition("]")[0] + "]" if bracketed else host.partition(":")[0]
    number = int(port)
    return host if number == _DEFAULT_PORTS.get(scheme) else f"{host}:{number}"


def _route_path(scope: Mapping[str, Any]) -> str:
    """The request's path below the prefix this app is mounted at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path
