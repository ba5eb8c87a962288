"""Email through SendGrid's v3 mail/send, with the official ``sendgrid`` SDK.

The SDK is imported when an adapter is built, never when this module is, so
``import multichannel`` works without it. Failures are translated once, in
`_translate`, from the table `_ERRORS`.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import urllib.error
import urllib.parse
from collections.abc import Mapping
from datetime import datetime
from email.message import Message as HeaderMap
from ssl import SSLError
from types import MappingProxyType, ModuleType
from typing import Any, Final, Self

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from multichannel._redact import mask_address
from multichannel.adapters._email import mailbox, subject_line
from multichannel.adapters._env import load_settings, plain_origin_allowed, secret_setting
from multichannel.adapters._errors import ErrorRule
from multichannel.adapters._http import bounded_wait, http_date, retry_after
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
# SendGrid's documented cap on a whole mail/send request, attachments included.
MAX_PAYLOAD_BYTES = 30_000_000
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
_BEARER = re.compile(r"Bearer\s+[^\s'\",}]+")


class _ScrubSDKLog(logging.Filter):
    """Keeps the API key and the message (addresses, text) out of the SDK's debug log."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("PAYLOAD:"):
            record.msg, record.args = "PAYLOAD: withheld by multichannel", ()
        elif "Bearer" in text:
            record.msg, record.args = _BEARER.sub("Bearer ***", text), ()
        return True


_SCRUBBER = _ScrubSDKLog()


def _sdk(adapter: str) -> tuple[ModuleType, ModuleType, type[Exception]]:
    """The SDK, its Mail helpers and its HTTP error; ConfigurationError when not installed."""
    try:
        import sendgrid
        from python_http_client.exceptions import HTTPError
        from sendgrid.helpers import mail
    except ImportError:
        raise ConfigurationError(
            f"{adapter}: the SendGrid SDK is not installed; pip install 'multichannel[sendgrid]'"
        ) from None
    return sendgrid, mail, HTTPError


class _Settings(BaseSettings):
    """SendGridEmail's settings from SENDGRID_* environment variables."""

    model_config = SettingsConfigDict(extra="ignore")

    sendgrid_api_key: SecretStr
    sendgrid_from: str
    sendgrid_base_url: str | None = None
    sendgrid_reply_to: str | None = None
    sendgrid_timeout: float = 30.0


class SendGridEmail(BaseAdapter):
    """Email through SendGrid's v3 mail/send API.

    ``from_email`` must be a verified sender (``"Name <a@b.c>"`` works);
    ``base_url`` sends to another origin (the EU region, a proxy, a local
    stand-in); ``timeout`` bounds each request in seconds; ``clock`` tells the
    time when SendGrid's answer carries no Date. The dispatch id travels in
    ``custom_args`` as ``dispatch_id``; the receipt's ``provider_id`` is
    SendGrid's X-Message-Id. ``name`` (default ``sendgrid``) tells two senders
    apart in one dispatcher. Raises ConfigurationError for a missing SDK or a
    bad setting; `send` raises TransientError, PermanentError or ProviderError.
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
    ) -> None:
        super().__init__(name=name)
        key = secret_setting(api_key, "api_key", self.name)
        if timeout <= 0:
            raise ConfigurationError(f"{self.name}: timeout must be longer than zero seconds")
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
        sendgrid, self._mail, self._http_error = _sdk(self.name)
        self._from_email = from_email
        self._reply_to = reply_to
        self._timeout = float(timeout)
        self._clock: Clock = clock or SystemClock()
        self._client = sendgrid.SendGridAPIClient(
            api_key=key.get_secret_value(), host=self._base_url
        )
        sdk_logger = logging.getLogger("python_http_client.client")
        if _SCRUBBER not in sdk_logger.filters:
            sdk_logger.addFilter(_SCRUBBER)

    @classmethod
    def from_env(cls, *, name: str | None = None) -> Self:
        """Build from SENDGRID_API_KEY and SENDGRID_FROM (SENDGRID_BASE_URL optional).

        SENDGRID_REPLY_TO and SENDGRID_TIMEOUT are read too; ``name`` names the
        adapter. Raises ConfigurationError naming each missing or invalid variable.
        """
        settings = load_settings(_Settings, name or cls.name)
        return cls(
            name=name,
            api_key=settings.sendgrid_api_key,
            from_email=settings.sendgrid_from,
            base_url=settings.sendgrid_base_url or None,
            reply_to=settings.sendgrid_reply_to or None,
            timeout=settings.sendgrid_timeout,
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

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Post the message once; the receipt carries SendGrid's X-Message-Id.

        Raises TransientError (429, 5xx, no answer; with SendGrid's retry hint),
        PermanentError (the message was refused) or ProviderError (key, sender
        or endpoint refused).
        """
        body = self._payload(point, content, ctx)
        masked = mask_address(point.address)
        logger.debug("%s: sending email to %s through SendGrid", self.name, masked)
        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self._timeout)
        except (self._http_error, urllib.error.URLError, http.client.HTTPException, OSError) as err:
            error = _translate(err, self._clock.now(), self.name)
            logger.info("%s: email to %s not sent: %s", self.name, masked, error)
            raise error from err
        except (ValueError, UnicodeError) as err:
            # http.client quotes a header it refuses, key and all: name the type only.
            raise ProviderError(
                f"the request to SendGrid could not be built ({type(err).__name__})",
                provider=self.name,
            ) from None
        message_id = response.headers.get("X-Message-Id")
        if message_id:
            logger.info("%s: email to %s accepted by SendGrid as %s", self.name, masked, message_id)
        else:
            logger.warning(
                "%s: SendGrid took the email to %s without an X-Message-Id", self.name, masked
            )
        return Receipt(provider_id=message_id or None)

    def _payload(self, point: ContactPoint, content: Content, ctx: SendContext) -> dict[str, Any]:
        """The JSON body, built with the SDK's Mail helper; PermanentError if unsendable."""
        helpers = self._mail
        if not content.body and not content.html:
            raise PermanentError("the message has neither text nor html", provider=self.name)
        try:
            mail = helpers.Mail(
                from_email=self._from_email,
                to_emails=point.address,
                subject=subject_line(content),
                plain_text_content=content.body or None,
                html_content=content.html or None,
            )
            if self._reply_to is not None:
                mail.reply_to = helpers.ReplyTo(self._reply_to)
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
        size = len(json.dumps(body))
        if size > MAX_PAYLOAD_BYTES:
            raise PermanentError(
                f"the message is {size:,} bytes as JSON; SendGrid takes at most "
                f"{MAX_PAYLOAD_BYTES:,} (30 MB) per request, attachments included",
                provider=self.name,
            )
        return body


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


def _retry_after(headers: HeaderMap, local_now: datetime) -> float | None:
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


def _translate(err: BaseException, now: datetime, provider: str) -> DeliveryError:
    """The library error for a failed mail/send, from `_ERRORS`."""
    answer: Any = err  # the SDK's HTTPError: status_code, reason, body, headers
    status = getattr(answer, "status_code", None)
    if isinstance(status, int):
        key: int | str = status
        if status not in _ERRORS:
            key = f"{status // 100}xx" if f"{status // 100}xx" in _ERRORS else _OTHER
        rule = _ERRORS[key]
        detail = _details(answer.body) or str(answer.reason or "") or f"HTTP {status}"
        return rule.error(
            f"{rule.meaning}: {detail}",
            provider=provider,
            status=status,
            retry_after=_retry_after(answer.headers, now),
        )
    cause = err.reason if isinstance(err, urllib.error.URLError) else err
    rule = _ERRORS[_TLS if isinstance(cause, SSLError) else _NO_ANSWER]
    return rule.error(f"{rule.meaning}: {cause}", provider=provider)
