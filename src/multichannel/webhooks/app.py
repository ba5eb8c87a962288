"""The ready-made ASGI app, and the one place where verified events reach the dispatcher.

Starlette is imported when `create_app` is called, so `record_events` and
`arecord_events` serve users of any web framework without it installed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import SecretStr

from multichannel._redact import mask_address
from multichannel.dispatch import DeliveryEvent, Dispatch, EventKind
from multichannel.errors import ConfigurationError, UnknownDispatch
from multichannel.webhooks._signatures import MalformedWebhook, SignatureError, header
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


def record_events(dispatcher: Dispatcher, events: Iterable[DeliveryEvent]) -> list[Dispatch]:
    """Apply verified events in order and return the dispatches they matched.

    An opt-out or opt-in first updates the registry, so it holds for every
    later dispatch even when no dispatch matches. An event that matches no
    dispatch is logged at info and skipped: answering the provider with an
    error would only make it send the event again. Repeating an event changes
    nothing. Raises ConfigurationError when a fallback send finds an adapter
    set up wrongly.
    """
    matched = []
    for event in events:
        _register_consent(dispatcher, event)
        try:
            matched.append(dispatcher.record(event))
        except UnknownDispatch:
            _log_unmatched(event)
    return matched


async def arecord_events(dispatcher: Dispatcher, events: Iterable[DeliveryEvent]) -> list[Dispatch]:
    """The async twin of `record_events`."""
    matched = []
    for event in events:
        _register_consent(dispatcher, event)
        try:
            matched.append(await dispatcher.arecord(event))
        except UnknownDispatch:
            _log_unmatched(event)
    return matched


def _register_consent(dispatcher: Dispatcher, event: DeliveryEvent) -> None:
    if event.channel is None or event.address is None:
        return
    if event.kind is EventKind.OPTED_OUT:
        dispatcher.opt_out(event.channel, event.address)
    elif event.kind is EventKind.OPTED_IN:
        dispatcher.opt_in(event.channel, event.address)


def _log_unmatched(event: DeliveryEvent) -> None:
    # The dispatcher's own message may quote the whole event; this one masks the address.
    where = f" on {event.channel} {mask_address(event.address)}" if event.address else ""
    logger.info(
        "a %s event%s matches no dispatch (provider id %s, dispatch id %s); ignored",
        event.kind.value,
        where,
        event.provider_id,
        event.dispatch_id,
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
) -> Starlette:
    """A Starlette app that verifies provider callbacks and feeds them to ``dispatcher``.

    POST routes: ``/twilio/status``, ``/twilio/inbound`` and ``/twilio/calls``
    with ``twilio_auth_token``; ``/sendgrid/events`` with
    ``sendgrid_public_key``; ``/telnyx/fax`` with ``telnyx_public_key``. A
    provider left unconfigured has its routes answer 404. Answers 403 to a
    bad signature, 400 to a malformed body, 200 otherwise. Twilio signs the
    URL it called: behind a proxy, give ``public_url`` (the public address
    where this app is mounted, e.g. ``https://example.com/hooks``) or set
    ``trust_forwarded`` to read X-Forwarded-Proto and X-Forwarded-Host.
    SendGrid and Telnyx signatures older than ``tolerance`` by the
    dispatcher's clock are refused. Raises ConfigurationError when Starlette
    is missing, no provider is configured, a secret or key is unusable, or
    ``public_url`` is not an http(s) URL.
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
    )
    routes = []
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
            Route("/sendgrid/events", endpoints.signed(sendgrid.events), methods=["POST"])
        )
    if telnyx_public_key is not None:
        telnyx = TelnyxWebhooks(
            public_key=telnyx_public_key, tolerance=tolerance, clock=dispatcher.clock
        )
        routes.append(Route("/telnyx/fax", endpoints.signed(telnyx.fax_events), methods=["POST"]))
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


class _TwilioReader(Protocol):
    def __call__(
        self, *, url: str, body: bytes | str, headers: Mapping[str, str]
    ) -> list[DeliveryEvent]: ...


class _SignedReader(Protocol):
    def __call__(self, *, body: bytes, headers: Mapping[str, str]) -> list[DeliveryEvent]: ...


_Endpoint = Callable[["Request"], Awaitable["Response"]]


class _Endpoints:
    """Builds each route's endpoint; every one answers the same failures the same way."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        response: type[Response],
        public_url: str | None,
        trust_forwarded: bool,
    ) -> None:
        self._dispatcher = dispatcher
        self._response = response
        self._public_url = public_url
        self._trust_forwarded = trust_forwarded

    def twilio(self, read: _TwilioReader, *, twiml: bool = False) -> _Endpoint:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            url = self._signed_url(request)
            return await self._answer(
                lambda: read(url=url, body=body, headers=request.headers),
                ok=_EMPTY_TWIML if twiml else "",
                media_type="text/xml" if twiml else "text/plain",
            )

        return endpoint

    def signed(self, read: _SignedReader) -> _Endpoint:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            return await self._answer(
                lambda: read(body=body, headers=request.headers), ok="", media_type="text/plain"
            )

        return endpoint

    async def _answer(
        self, read: Callable[[], list[DeliveryEvent]], *, ok: str, media_type: str
    ) -> Response:
        try:
            events = read()
        except SignatureError as err:
            logger.warning("refused a %s callback: its signature is %s", err.provider, err.reason)
            return self._response(f"signature {err.reason}\n", 403, media_type="text/plain")
        except MalformedWebhook as err:
            logger.warning("refused a malformed %s callback: %s", err.provider, err)
            return self._response(f"{err}\n", 400, media_type="text/plain")
        await arecord_events(self._dispatcher, events)
        return self._response(ok, 200, media_type=media_type)

    def _signed_url(self, request: Request) -> str:
        """The URL the provider called, as it signed it."""
        url = request.url
        if self._public_url is not None:
            query = f"?{url.query}" if url.query else ""
            return self._public_url + _route_path(request.scope) + query
        if self._trust_forwarded:
            scheme = _first(header(request.headers, "X-Forwarded-Proto"))
            host = _first(header(request.headers, "X-Forwarded-Host"))
            if scheme is not None and scheme.lower() in ("http", "https"):
                url = url.replace(scheme=scheme.lower())
            if host:
                url = url.replace(netloc=host)
        return str(url)


def _first(value: str | None) -> str | None:
    """The first of a comma-separated header's values: the one the outermost proxy saw."""
    return None if value is None else value.split(",")[0].strip() or None


def _route_path(scope: Mapping[str, Any]) -> str:
    """The request's path below the prefix this app is mounted at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path
