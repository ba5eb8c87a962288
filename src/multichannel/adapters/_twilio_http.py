"""The HTTP clients the Twilio SDK is given: pooled, sent to ``base_url``, noting each answer.

The SDK builds each request (fields, headers, auth) and reads each answer; these
clients only carry them, on connections kept for every send: a pooled
``requests`` session for the sync SDK client, an aiohttp session per event loop
for the async one. Both encode the body as the SDK's own clients do.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from multichannel.adapters._pool import Answer, AsyncPooledSession, PooledSession

__all__ = ["AsyncTransport", "NotedAnswer", "SyncTransport", "noted_answer"]

Origin = tuple[str, str, str]


@dataclass(frozen=True)
class NotedAnswer:
    """What the SDK drops when it raises: the status and the retry headers of the answer."""

    status: int
    retry_after: str | None
    date: str | None


# Retry-After only reaches us on the HTTP response, which the SDK drops when it
# raises; the transport notes it here, per thread and per task, for translation.
_last_answer: ContextVar[NotedAnswer | None] = ContextVar(
    "multichannel_twilio_answer", default=None
)


def noted_answer() -> NotedAnswer | None:
    """The last answer a transport received in this thread or task."""
    return _last_answer.get()


def _remember(status: int, headers: Mapping[str, str]) -> None:
    _last_answer.set(NotedAnswer(status, headers.get("Retry-After"), headers.get("Date")))


def _rebase(url: str, origin: Origin | None) -> str:
    if origin is None:
        return url
    scheme, netloc, prefix = origin
    parts = urlsplit(url)
    return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, ""))


def _url(url: str, params: Mapping[str, object] | None) -> str:
    return f"{url}?{urlencode(params, doseq=True)}" if params else url


def _body(data: Mapping[str, object] | None) -> bytes:
    """The form the SDK's own client would send: a list (``status_callback_event``) repeated."""
    pairs: list[tuple[str, object]] = []
    for key, value in (data or {}).items():
        pairs.extend((key, item) for item in (value if isinstance(value, list) else (value,)))
    return urlencode(pairs).encode("ascii")


class _Credentials:
    """The Authorization header for the SDK's (SID, token) pair, encoded once."""

    def __init__(self) -> None:
        self._auth: tuple[str, str] | None = None
        self._header = ""

    def headers(
        self, headers: Mapping[str, str] | None, auth: tuple[str, str] | None
    ) -> dict[str, str]:
        sent = dict(headers or {})
        if auth is not None:
            if auth != self._auth:
                token = base64.b64encode(":".join(auth).encode()).decode("ascii")
                self._auth, self._header = auth, f"Basic {token}"
            sent["Authorization"] = self._header
        return sent


class SyncTransport:
    """The SDK's HTTP client, sync: one pooled requests session, sent to ``base_url``."""

    is_async = False

    def __init__(self, *, origin: Origin | None, timeout: float, max_connections: int) -> None:
        self._origin = origin
        self._timeout = timeout
        self.session = PooledSession(_origin_url(origin), max_connections=max_connections)
        self._credentials = _Credentials()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        _last_answer.set(None)
        sent = self._credentials.headers(headers, auth)
        answer = self.session.send(
            method,
            _url(_rebase(url, self._origin), params),
            body=_body(data),
            headers=sent,
            timeout=timeout or self._timeout,
        )
        return _response(answer)


class AsyncTransport:
    """The SDK's HTTP client, async: one aiohttp session per event loop, reused by every send."""

    is_async = True

    def __init__(self, *, origin: Origin | None, timeout: float, max_connections: int) -> None:
        self._origin = origin
        self.session = AsyncPooledSession(
            _origin_url(origin), max_connections=max_connections, timeout=timeout
        )
        self._credentials = _Credentials()

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        # The session's timeout (the adapter's) bounds every request; the SDK passes none.
        _last_answer.set(None)
        sent = self._credentials.headers(headers, auth)
        answer = await self.session.send(
            method,
            _url(_rebase(url, self._origin), params),
            body=_body(data),
            headers=sent,
        )
        return _response(answer)


def _response(answer: Answer) -> Any:
    """The SDK's Response for ``answer``, noted for the Retry-After it may carry."""
    from twilio.http.response import Response  # type: ignore[import-untyped,unused-ignore]

    _remember(answer.status, answer.headers)
    return Response(answer.status, answer.text, answer.headers)


def _origin_url(origin: Origin | None) -> str:
    """Where requests go, for the environment's proxy settings: the SDK's host or ``base_url``."""
    if origin is None:
        return "https://api.twilio.com"
    return urlunsplit((origin[0], origin[1], "", "", ""))
