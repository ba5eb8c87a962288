"""Email through SendGrid's v3 mail/send: the SDK's Mail helper builds the JSON we post.

The ``sendgrid`` SDK builds the body exactly as its own client would post it.
It is posted on connections the adapter keeps (a ``requests`` pool for
``send``, an aiohttp session per event loop for ``asend``), where the SDK's
urllib client would build a new opener, re-read the proxy settings and open a
new connection (a new TLS handshake) for every message. The SDK and the HTTP
clients are imported when an adapter is built, never when this module is, so
``import multichannel`` works without them. Every answer and failure, sync or
async, is translated once, in `_refusal` and `_unanswered`, from `_ERRORS`.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType, ModuleType
from typing import Any, Final, Self

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from multichannel._redact import mask_address
from multichannel.adapters._email import mailbox, subject_line
from multichannel.adapters._env import load_settings, plain_origin_allowed, secret_setting
from multichannel.adapters._errors import ErrorRule
from multichannel.adapters._http import bounded_wait, http_date, retry_after
from multichannel.adapters._pool import (
    DEFAULT_MAX_CONNECTIONS,
    Answer,
    AsyncPooledSession,
    PooledSession,
    check_max_connections,
    root_cause,
    transport_failure,
)
from multichannel.adapters.base import BaseAdapter, Receipt, SendContext
from multichannel.clock import Clock, SystemClock
from multichannel.contacts import ContactPoint
from multichannel.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    ProviderError,
    TransientError,
)
from multichannel.messages import Content

__all__ = ["SendGridEmail"]

logger = logging.getLogger("multichannel.adapters.sendgrid")

DEFAULT_BASE_URL = "https://api.sendgrid.com"
SEND_PATH = "/v3/mail/send"
# SendGrid's documented cap on a whole mail/send request, attachments included.
MAX_PAYLOAD_BYTES = 30_000_000
_INSTALL_HINT = "the SendGrid SDK is not installed; pip install 'multichannel[sendgrid]'"
_NO_ANSWER = "no answer"
_TLS = "tls"
_OTHER = "other"

# Keys: an HTTP status, a status class ("4xx", "5xx") for statuses not listed,
# `_NO_ANSWER` when no HTTP answer came at all, `_TLS` when the server's
# certificate or TLS failed, `_OTHER` for anything else.
_ERRORS: Final[Mapping[int | str, ErrorRule]] = MappingProxyType(
    {
        400: ErrorRule(PermanentError, "SendGrid refused the message"),
        401: ErrorRule(ProviderError, "SendGrid rejected the API key"),
        403: ErrorRule(ProviderError, "SendGrid refused the sender or the key's permissions"),
        404: ErrorRule(ProviderError, "no SendGrid mail/send at this base_url"),
        405: ErrorRule(ProviderError, "no SendGrid mail/send at this base_url"),
        413: ErrorRule(PermanentError, "the message is larger than SendGrid accepts"),
        415: ErrorRule(ProviderError, "SendGrid refused the request's format"),
        429: ErrorRule(TransientError, "SendGrid is limiting this account's rate"),
        451: ErrorRule(ProviderError, "SendGrid refused the request under data residency rules"),
        "4xx": ErrorRule(PermanentError, "SendGrid refused the message"),
        "5xx": ErrorRule(TransientError, "SendGrid failed to take the message"),
        _NO_ANSWER: ErrorRule(TransientError, "SendGrid could not be reached"),
        _TLS: ErrorRule(ProviderError, "the TLS connection to SendGrid failed"),
        _OTHER: ErrorRule(ProviderError, "SendGrid answered unexpectedly"),
    }
)


def _sdk(adapter: str) -> tuple[ModuleType, str]:
    """The SDK's Mail helpers and its version; ConfigurationError when an extra is missing."""
    from importlib.util import find_spec

    try:
        import requests  # noqa: F401  # the sync connections
        import sendgrid
        from sendgrid.helpers import mail
    except ImportError:
        raise ConfigurationError(f"{adapter}: {_INSTALL_HINT}") from None
    if find_spec("aiohttp") is None:  # the async connections, imported by the first asend
        raise ConfigurationError(f"{adapter}: {_INSTALL_HINT}")
    return mail, str(sendgrid.__version__)


class _Settings(BaseSettings):
    """SendGridEmail's settings from SENDGRID_* environment variables."""

    model_config = SettingsConfigDict(extra="ignore")

    sendgrid_api_key: SecretStr
    sendgrid_from: str
    sendgrid_base_url: str | None = None
    sendgrid_reply_to: str | None = None
    sendgrid_timeout: float = 30.0
    sendgrid_max_connections: int = DEFAULT_MAX_CONNECTIONS


class SendGridEmail(BaseAdapter):
    """Email through SendGrid's v3 mail/send API.

    ``from_email`` must be a verified sender (``"Name <a@b.c>"`` works);
    ``base_url`` sends to another origin (the EU region, a proxy, a local
    stand-in); ``timeout`` bounds each request in seconds; ``clock`` tells the
    time when SendGrid's answer carries no Date. ``max_connections`` (default
    64) is how many connections to SendGrid are kept open and reused, and the
    most requests in flight at once (more wait for a free one): size it to the
    concurrency you send with. Proxy and CA settings are read from the
    environment once, when the adapter is built. `close` (or ``with``) and
    `aclose` (or ``async with``) release the connections. The dispatch id
    travels in ``custom_args`` as ``dispatch_id``; the receipt's
    ``provider_id`` is SendGrid's X-Message-Id. ``name`` (default ``sendgrid``)
    tells two senders apart in one dispatcher. Raises ConfigurationError for a
    missing SDK or a bad setting; `send` raises TransientError, PermanentError
    or ProviderError.
    """

    name = "sendgrid"
    channel = "email"

    def __init__(
        self,
        *,
        name: str | None = None,
        api_key: str | SecretStr,
        from_email: str,
        base_url: str | None = None,
        reply_to: str | None = None,
        timeout: float = 30,
        clock: Clock | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(name=name)
        key = secret_setting(api_key, "api_key", self.name)
        if timeout <= 0:
            raise ConfigurationError(f"{self.name}: timeout must be longer than zero seconds")
        self.max_connections = check_max_connections(max_connections, self.name)
        mailbox("from_email", from_email, self.name)
        if reply_to is not None:
            mailbox("reply_to", reply_to, self.name)
        self._base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        origin = urllib.parse.urlsplit(self._base_url)
        if origin.scheme not in ("https", "http") or not origin.hostname:
            raise ConfigurationError(f"{self.name}: base_url {base_url!r} is not an http(s) URL")
        if not plain_origin_allowed(self._base_url):
            raise ConfigurationError(
                f"{self.name}: base_url {base_url!r} would send the API key unencrypted; use https"
            )
        self._mail, version = _sdk(self.name)
        self._from_email = from_email
        # Parsed once: the helper would parse "Name <address>" again for every message.
        self._sender = self._mail.From(from_email)
        self._reply_to = None if reply_to is None else self._mail.ReplyTo(reply_to)
        self._timeout = float(timeout)
        self._clock: Clock = clock or SystemClock()
        self._url = self._base_url + SEND_PATH
        # The headers the SDK's own client sends, built once.
        self._headers = {
            "Authorization": f"Bearer {key.get_secret_value()}",
            "User-Agent": f"sendgrid/{version};python",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self._session = PooledSession(self._base_url, max_connections=self.max_connections)
        self._async_session = AsyncPooledSession(
            self._base_url, max_connections=self.max_connections, timeout=self._timeout
        )

    @classmethod
    def from_env(cls, *, name: str | None = None) -> Self:
        """Build from SENDGRID_API_KEY and SENDGRID_FROM (SENDGRID_BASE_URL optional).

        SENDGRID_REPLY_TO, SENDGRID_TIMEOUT and SENDGRID_MAX_CONNECTIONS are read
        too; ``name`` names the adapter. Raises ConfigurationError naming each
        missing or invalid variable.
        """
        settings = load_settings(_Settings, name or cls.name)
        return cls(
            name=name,
            api_key=settings.sendgrid_api_key,
            from_email=settings.sendgrid_from,
            base_url=settings.sendgrid_base_url or None,
            reply_to=settings.sendgrid_reply_to or None,
            timeout=settings.sendgrid_timeout,
            max_connections=settings.sendgrid_max_connections,
        )

    @property
    def timeout(self) -> float:
        """Seconds one request may take before it is abandoned; the dispatcher counts it per try."""
        return self._timeout

    def __repr__(self) -> str:
        return (
            f"SendGridEmail(name={self.name!r}, from_email={self._from_email!r}, "
            f"base_url={self._base_url!r})"
        )

    def close(self) -> None:
        """Close the connections kept for sync sends; a later send opens new ones."""
        self._session.close()

    async def aclose(self) -> None:
        """Close the running event loop's connections and those kept for sync sends."""
        await self._async_session.aclose()
        self._session.close()

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Post the message once; the receipt carries SendGrid's X-Message-Id.

        Raises TransientError (429, 5xx, no answer; with SendGrid's retry hint),
        PermanentError (the message was refused) or ProviderError (key, sender
        or endpoint refused).
        """
        body = self._payload(point, content, ctx)
        try:
            answer = self._session.send(
                "POST", self._url, body=body, headers=self._headers, timeout=self._timeout
            )
        except Exception as err:
            error = self._unanswered(err, point)
            if error is None:
                raise
            raise error from err
        return self._read(answer, point)

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """`send` without blocking: the same request on the running loop's kept connections."""
        body = self._payload(point, content, ctx)
        try:
            answer = await self._async_session.send(
                "POST", self._url, body=body, headers=self._headers
            )
        except Exception as err:
            error = self._unanswered(err, point)
            if error is None:
                raise
            raise error from err
        return self._read(answer, point)

    def _read(self, answer: Answer, point: ContactPoint) -> Receipt:
        """The receipt for an acceptance; the library's error for any other answer."""
        if not 200 <= answer.status < 300:
            error = _refusal(answer, self._clock.now(), self.name)
            self._log_failure(point, error)
            raise error
        message_id = answer.headers.get("X-Message-Id")
        if not message_id:
            logger.warning(
                "%s: SendGrid took the email to %s without an X-Message-Id",
                self.name,
                mask_address(point.address),
            )
        elif logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s: email to %s accepted by SendGrid as %s",
                self.name,
                mask_address(point.address),
                message_id,
            )
        return Receipt(provider_id=message_id or None)

    def _unanswered(self, err: Exception, point: ContactPoint) -> DeliveryError | None:
        """The library error for a request that got no answer; None for a bug of ours."""
        failure = transport_failure(err)
        if failure in ("timeout", "connection", "tls"):
            rule = _ERRORS[_TLS if failure == "tls" else _NO_ANSWER]
            error = rule.error(f"{rule.meaning}: {_said(err)}", provider=self.name)
        elif failure == "request" or isinstance(err, ValueError):
            # A refused header is quoted, key and all: name the type only.
            error = ProviderError(
                f"the request to SendGrid could not be built ({type(err).__name__})",
                provider=self.name,
            )
        else:
            return None
        self._log_failure(point, error)
        return error

    def _log_failure(self, point: ContactPoint, error: DeliveryError) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s: email to %s not sent: %s", self.name, mask_address(point.address), error
            )

    def _payload(self, point: ContactPoint, content: Content, ctx: SendContext) -> bytes:
        """The JSON body, built with the SDK's Mail helper; PermanentError if unsendable."""
        helpers = self._mail
        if not content.body and not content.html:
            raise PermanentError("the message has neither text nor html", provider=self.name)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s: sending email to %s through SendGrid",
                self.name,
                mask_address(point.address),
            )
        try:
            mail = helpers.Mail(
                from_email=self._sender,
                to_emails=point.address,
                subject=subject_line(content),
                plain_text_content=content.body or None,
                html_content=content.html or None,
            )
            if self._reply_to is not None:
                mail.reply_to = self._reply_to
            # The helper puts each attachment it is given first; adding them in
            # reverse keeps the order the user chose.
            for attachment in reversed(content.attachments):
                mail.attachment = helpers.Attachment(
                    helpers.FileContent(base64.b64encode(attachment.data).decode("ascii")),
                    helpers.FileName(attachment.filename),
                    helpers.FileType(attachment.content_type),
                    helpers.Disposition("attachment"),
                )
            mail.custom_arg = helpers.CustomArg("dispatch_id", ctx.dispatch_id)
            body: dict[str, Any] = mail.get()
        except helpers.SendGridException as err:
            # The helper refuses text that looks like a SendGrid key; so would the API.
            raise PermanentError(
                f"the SendGrid SDK refused the message: {type(err).__name__}", provider=self.name
            ) from None
        # Encoded once, as the SDK's client would (ASCII JSON), and measured as sent.
        encoded = json.dumps(body).encode()
        if len(encoded) > MAX_PAYLOAD_BYTES:
            raise PermanentError(
                f"the message is {len(encoded):,} bytes as JSON; SendGrid takes at most "
                f"{MAX_PAYLOAD_BYTES:,} (30 MB) per request, attachments included",
                provider=self.name,
            )
        return encoded


def _details(body: object) -> str:
    """SendGrid's error messages from a JSON error body, '' when there are none."""
    try:
        parsed = json.loads(body) if isinstance(body, bytes | str) else None
    except ValueError:
        return ""
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not isinstance(errors, list):
        return ""
    messages = []
    for item in errors:
        if isinstance(item, dict) and item.get("message"):
            field = f" (field {item['field']})" if item.get("field") else ""
            messages.append(f"{' '.join(str(item['message']).split())}{field}")
    return "; ".join(messages)[:1000]


def _retry_after(headers: Mapping[str, str], local_now: datetime) -> float | None:
    """Seconds to wait from Retry-After (read as `_http` reads it) or X-RateLimit-Reset.

    X-RateLimit-Reset is SendGrid's own: the Unix time the limit resets, read,
    like a Retry-After date, against the answer's own Date header when it has one.
    """
    wait = retry_after(headers.get("Retry-After"), date=headers.get("Date"), now=local_now)
    if wait is not None:
        return wait
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if reset.isascii() and reset.isdigit():
        now = http_date(headers.get("Date")) or local_now
        return bounded_wait(float(reset) - now.timestamp())
    return None


def _refusal(answer: Answer, now: datetime, provider: str) -> DeliveryError:
    """The library error for an answer that is not an acceptance, from `_ERRORS`."""
    status = answer.status
    key: int | str = status
    if status not in _ERRORS:
        key = f"{status // 100}xx" if f"{status // 100}xx" in _ERRORS else _OTHER
    rule = _ERRORS[key]
    detail = _details(answer.body) or answer.reason or f"HTTP {status}"
    return rule.error(
        f"{rule.meaning}: {detail}",
        provider=provider,
        status=status,
        retry_after=_retry_after(answer.headers, now),
    )


def _said(err: BaseException) -> str:
    """What a failed connection said: the socket's own words ("timed out", "refused")."""
    return str(root_cause(err)) or str(err) or type(err).__name__
