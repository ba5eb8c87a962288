"""The connections an adapter keeps: one pooled session per adapter, read from the environment once.

Holders, each owned by one adapter and reused by every send:

- `PooledSession`: a ``requests`` session for one origin, its pool sized to the
  concurrency, and proxies and CA bundle read from the environment when it is
  built rather than on every request (``requests`` re-reads them per request
  otherwise, which costs more than the rest of the request's preparation).
- `AsyncPooledSession`: the same over ``aiohttp``, one session per running
  event loop (`PerLoop`), made on first use inside the loop and closed by
  ``aclose()`` or, failing that, when the loop itself shuts down.
- `Workers`: the threads an adapter whose protocol has no async client (SMTP)
  sends on, sized like its pool instead of the loop's shared default executor.

Both sessions answer with an `Answer`, and `transport_failure` names what went
wrong when no answer came, whichever library raised: each adapter reads both
through its one error table.

Nothing here is imported by ``import multichannel``; the HTTP libraries and
asyncio are imported by the functions that use them.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from multichannel.errors import ConfigurationError

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    import aiohttp

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "Answer",
    "AsyncPooledSession",
    "PerLoop",
    "PooledSession",
    "Workers",
    "check_max_connections",
    "environment_proxy",
    "root_cause",
    "transport_failure",
]

DEFAULT_MAX_CONNECTIONS: Final = 64
"""Connections an adapter keeps by default: enough for ``asend_many(concurrency=64)``."""

_C = TypeVar("_C")
_T = TypeVar("_T")


def check_max_connections(value: object, adapter: str) -> int:
    """``value`` if it is a whole number of at least 1; ConfigurationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{adapter}: max_connections must be a whole number of at least 1, not {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's HTTP answer, read in full; the same whichever client fetched it."""

    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive, as both clients give them
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body as text (providers answer in UTF-8)."""
        return self.body.decode("utf-8", errors="replace")


Failure = Literal["timeout", "tls", "connection", "request"]


def transport_failure(err: BaseException) -> Failure | None:
    """What a request that got no answer met, from ``requests`` or ``aiohttp``; None if neither.

    ``timeout``: no answer in time; ``tls``: the TLS handshake or certificate
    failed; ``connection``: refused, reset or dropped; ``request``: the client
    could not make the request at all.
    """
    timeout, tls, connection, library = _families()
    if not isinstance(err, (*library, TimeoutError, OSError)):
        return None
    if isinstance(err, tls) or isinstance(root_cause(err), ssl.SSLError):
        return "tls"
    if isinstance(err, timeout):
        return "timeout"
    # A bare OSError is the socket's own; the libraries' errors may subclass it too.
    if isinstance(err, connection) or not isinstance(err, library):
        return "connection"
    return "request"


_Family = tuple[type[BaseException], ...]


@functools.cache
def _families() -> tuple[_Family, _Family, _Family, _Family]:
    """The timeout, TLS and connection errors of the installed clients, and all of theirs."""
    timeout: _Family = (TimeoutError,)
    tls: _Family = (ssl.SSLError,)
    connection: _Family = ()
    library: _Family = ()
    try:
        import requests
    except ImportError:  # pragma: no cover - every HTTP adapter's extra installs it
        pass
    else:
        timeout += (requests.Timeout,)
        tls += (requests.exceptions.SSLError,)
        connection += (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
        library += (requests.RequestException,)
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - every HTTP adapter's extra installs it
        pass
    else:
        tls += (aiohttp.ClientSSLError,)
        connection += (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
        library += (aiohttp.ClientError,)
    return timeout, tls, connection, library


def root_cause(err: BaseException) -> BaseException:
    """The error at the bottom of ``err``'s chain: what the socket or TLS layer raised."""
    for _ in range(8):  # the client's error wraps urllib3's or aiohttp's, which wraps OSError
        under = err.__cause__ or err.__context__
        if under is None:
            break
        err = under
    return err


def _environment_proxies(url: str) -> dict[str, str]:
    """The proxies the environment names for ``url`` (none when NO_PROXY covers it)."""
    from requests.utils import get_environ_proxies

    return dict(get_environ_proxies(url))


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, read now; None for a direct connection.

    Credentials stay in the URL: aiohttp sends them as ``Proxy-Authorization``.
    """
    return _environment_proxies(url).get(urlsplit(url).scheme) or None


def environment_ca_bundle() -> str | None:
    """The CA bundle the environment names (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``), read now.

    None trusts the system's store. Both clients of an adapter use it, so that
    `send` and `asend` trust the same authorities.
    """
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


class PooledSession:
    """A ``requests`` session for one origin: up to ``max_connections`` kept open and reused.

    The environment (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``...) is
    read once, here, for ``origin``; redirects are never followed. Raises
    ImportError when ``requests`` is not installed.
    """

    def __init__(self, origin: str, *, max_connections: int) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from requests.utils import default_headers

        self._session = requests.Session()
        # What trust_env would look up on every request is looked up once instead.
        self._session.trust_env = False
        self.proxies = _environment_proxies(origin)
        self.verify: bool | str = environment_ca_bundle() or True
        pool = HTTPAdapter(pool_maxsize=max_connections)
        self._session.mount("https://", pool)
        self._session.mount("http://", pool)
        self.default_headers: Mapping[str, str] = dict(default_headers())

    def send(
        self, method: str, url: str, *, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        """Send ``body`` to ``url`` on a pooled connection; the answer is read in full.

        ``headers`` are sent over the session's defaults (User-Agent,
        Accept-Encoding...). Raises what ``requests`` raises.
        """
        import requests

        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers={**self.default_headers, **headers})
        # Set after prepare(): the body is ready bytes, which prepare_body would
        # only inspect again, and its Content-Type is the caller's to give.
        if body:
            prepared.body = body
            prepared.headers["Content-Length"] = str(len(body))
        answer = self._session.send(
            prepared,
            allow_redirects=False,
            timeout=timeout,
            proxies=self.proxies,
            verify=self.verify,
            stream=False,
            cert=None,
        )
        return Answer(answer.status_code, answer.reason or "", answer.headers, answer.content)

    def close(self) -> None:
        """Close the pooled connections; later requests open new ones."""
        self._session.close()


class PerLoop(Generic[_C]):
    """One async client per running event loop: made on first use, closed with its loop.

    A client's connections belong to the event loop that opened them, so each
    loop gets its own. `aclose` closes the running loop's client. A client
    never closed that way is closed when its loop shuts down: it is held open
    by an async generator, and ``asyncio.run``, ``asyncio.Runner`` (and so
    pytest-asyncio) finalise every async generator before closing the loop.
    """

    def __init__(self, make: Callable[[], _C], close: Callable[[_C], Awaitable[object]]) -> None:
        self._make = make
        self._close = close
        self._held: dict[asyncio.AbstractEventLoop, tuple[_C, AsyncGenerator[None, None]]] = {}

    async def get(self) -> _C:
        """The running loop's client, made now if it has none."""
        import asyncio

        loop = asyncio.get_running_loop()
        held = self._held.get(loop)
        if held is not None:
            return held[0]
        for other in [other for other in self._held if other.is_closed()]:
            # A loop closed without finalising its async generators: nothing
            # can close that client any more, so it is only forgotten.
            del self._held[other]
        client = self._make()
        keeper = self._keep(loop, client)
        self._held[loop] = (client, keeper)
        await keeper.__anext__()  # registers it with the loop, which finalises it at shutdown
        return client

    async def _keep(
        self, loop: asyncio.AbstractEventLoop, client: _C
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._held.get(loop, (None,))[0] is client:
                del self._held[loop]
            await self._close(client)

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one; the next `get` makes a new one."""
        import asyncio

        held = self._held.get(asyncio.get_running_loop())
        if held is not None:
            await held[1].aclose()


class AsyncPooledSession:
    """An aiohttp session for one origin per running event loop, kept for every request.

    At most ``max_connections`` are open at once (more requests wait for one);
    ``timeout`` bounds each request. The environment's proxy for ``origin`` and
    its CA bundle are read once, here. Raises ImportError when ``requests``
    (which reads the environment) is not installed.
    """

    def __init__(self, origin: str, *, max_connections: int, timeout: float) -> None:
        self._max_connections = max_connections
        self._timeout = timeout
        self._proxy = environment_proxy(origin)
        self._ca_bundle = environment_ca_bundle()
        self.sessions: PerLoop[aiohttp.ClientSession] = PerLoop(self._open, _close_session)

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        trusted = (
            True if self._ca_bundle is None else ssl.create_default_context(cafile=self._ca_bundle)
        )
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=trusted),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )

    async def send(
        self, method: str, url: str, *, body: bytes, headers: Mapping[str, str]
    ) -> Answer:
        """Send ``body`` to ``url`` on the running loop's session; the answer is read in full."""
        session = await self.sessions.get()
        async with session.request(
            method,
            url,
            data=body or None,
            headers=headers,
            allow_redirects=False,
            proxy=self._proxy,
        ) as answer:
            content = await answer.read()
        return Answer(answer.status, answer.reason or "", answer.headers, content)

    async def aclose(self) -> None:
        """Close the running loop's session; a later request opens a new one."""
        await self.sessions.aclose()


async def _close_session(session: aiohttp.ClientSession) -> None:
    await session.close()


class Workers:
    """Up to ``size`` threads for one adapter's blocking sends, started as they are needed.

    The default executor behind ``asyncio.to_thread`` has min(32, cores + 4)
    threads for the whole process; an adapter that blocks per send (SMTP) would
    run no more sends at once than that, whatever the batch's concurrency.
    """

    def __init__(self, size: int, *, name: str) -> None:
        self._size = size
        self._name = name
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(self, call: Callable[..., _T], *args: Any) -> _T:
        """``call(*args)`` on one of the threads, with the caller's context variables."""
        import asyncio
        import contextvars
        import functools

        pool = self._pool
        if pool is None:
            import concurrent.futures

            pool = self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._size, thread_name_prefix=self._name
            )
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(context.run, call, *args))

    def close(self) -> None:
        """Let the threads end once idle; a later `run` starts new ones."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
