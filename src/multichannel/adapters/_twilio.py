"""What the Twilio adapters share: the SDK clients, settings, and the one error table.

The twilio SDK is imported inside functions only, so the adapter modules import
without it and a missing extra is reported as a `ConfigurationError` when an
adapter is built. Every failure the SDK or the network raises passes through
`translate_error`, driven by `ERRORS`, and leaves as an error of
`multichannel.errors` with the original chained as its cause.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from multichannel._redact import mask_address
from multichannel.adapters._env import plain_origin_allowed, secret_setting
from multichannel.adapters._errors import ErrorRule
from multichannel.adapters._http import retry_after
from multichannel.adapters._pool import (
    DEFAULT_MAX_CONNECTIONS,
    check_max_connections,
    transport_failure,
)
from multichannel.adapters._twilio_http import AsyncTransport, SyncTransport, noted_answer
from multichannel.errors import (
    ConfigurationError,
    DeliveryError,
    OptedOut,
    PermanentError,
    ProviderError,
    TransientError,
)

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "ERRORS",
    "INSTALL_HINT",
    "TwilioConnection",
    "TwilioSettings",
    "mask_sid",
    "require_text",
    "translate_error",
    "translated_errors",
]

logger = logging.getLogger("multichannel.adapters.twilio")

DEFAULT_TIMEOUT: Final = 15.0
DEFAULT_PREFIX: Final = "TWILIO_"
INSTALL_HINT: Final = "the Twilio adapters need the twilio SDK: pip install 'multichannel[twilio]'"
_DOCS: Final = "https://www.twilio.com/docs/errors/"

# One table for both adapters. A code is blamed on the recipient (PermanentError)
# only when it says something about the number itself; codes about the account,
# the sender or its permissions are ProviderError, so another provider is tried
# and the address stays usable.
ERRORS: Final[Mapping[int, ErrorRule]] = MappingProxyType(
    {
        21610: ErrorRule(OptedOut, "the recipient replied STOP to this sender"),
        21211: ErrorRule(PermanentError, "the number is not a valid phone number"),
        21614: ErrorRule(PermanentError, "the number is not a mobile number that can receive SMS"),
        21217: ErrorRule(PermanentError, "the number called does not appear to be valid"),
        21602: ErrorRule(PermanentError, "the message has no body"),
        21617: ErrorRule(PermanentError, "the text is longer than Twilio's 1600-character limit"),
        21612: ErrorRule(ProviderError, "Twilio cannot route from this sender to this number"),
        21408: ErrorRule(
            ProviderError, "the account may not text this number's region (geo permissions)"
        ),
        21215: ErrorRule(
            ProviderError, "the account may not call this number's region (geo permissions)"
        ),
        21421: ErrorRule(ProviderError, "a phone number or sender SID of the account is invalid"),
        21606: ErrorRule(ProviderError, "the 'From' number cannot send SMS for this account"),
        21210: ErrorRule(ProviderError, "the 'From' number is not verified for this account"),
        21608: ErrorRule(ProviderError, "a trial account may only text verified numbers"),
        21219: ErrorRule(ProviderError, "a trial account may only call verified numbers"),
        20003: ErrorRule(
            ProviderError, "authentication failed: check the account SID and auth token"
        ),
        20005: ErrorRule(ProviderError, "the account is not active (suspended or closed)"),
        10001: ErrorRule(ProviderError, "the account is not active (suspended or closed)"),
        20403: ErrorRule(ProviderError, "the account may not use this resource"),
        20404: ErrorRule(
            ProviderError, "no such resource: check the account SID or messaging service"
        ),
        20429: ErrorRule(TransientError, "too many requests"),
        14107: ErrorRule(
            TransientError, "too many messages between these two numbers in 30 seconds"
        ),
        21611: ErrorRule(TransientError, "the sender's queue of messages is full"),
        20500: ErrorRule(TransientError, "Twilio had an internal error"),
        20503: ErrorRule(TransientError, "Twilio is temporarily unavailable"),
    }
)
# For a code the table does not name, read by the HTTP status.
_BUSY: Final = ErrorRule(TransientError, "Twilio could not take the request now")
_REFUSED: Final = ErrorRule(ProviderError, "Twilio refused")


class TwilioSettings(BaseSettings):
    """The ``TWILIO_*`` environment variables (or another prefix's) read by ``from_env``."""

    model_config = SettingsConfigDict(
        env_prefix=DEFAULT_PREFIX, env_ignore_empty=True, extra="ignore"
    )

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    base_url: str | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def mask_sid(sid: str) -> str:
    """``AC12***cdef``: enough of an account SID to tell accounts apart in a repr."""
    return f"{sid[:4]}***{sid[-4:]}" if len(sid) > 12 else f"{sid[:2]}***"


def require_text(value: str | None, setting: str, adapter: str) -> str:
    """``value`` stripped; ConfigurationError when it is missing or blank."""
    text = (value or "").strip()
    if not text:
        raise ConfigurationError(f"{adapter}: {setting} is required")
    return text


def _origin(base_url: str | None, adapter: str) -> tuple[str, str, str] | None:
    if base_url is None:
        return None
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigurationError(
            f"{adapter}: base_url must be an origin such as 'http://127.0.0.1:8080', "
            f"not {base_url!r}"
        )
    if not plain_origin_allowed(base_url):
        raise ConfigurationError(
            f"{adapter}: base_url {base_url!r} would send the auth token unencrypted; "
            "use https (plain http is for 127.0.0.1 only)"
        )
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


class TwilioConnection:
    """An account's credentials and the SDK clients, sync and async, that use them.

    Each client keeps its connections for every send: the sync one a pool of up
    to ``max_connections``, the async one an aiohttp session per event loop with
    at most ``max_connections`` open. Raises ConfigurationError for a blank SID
    or token, a bad ``base_url``, ``timeout`` or ``max_connections``, or a
    missing twilio SDK.
    """

    def __init__(
        self,
        *,
        adapter: str,
        account_sid: str,
        auth_token: str | SecretStr,
        base_url: str | None,
        timeout: float,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        token = secret_setting(auth_token, "auth_token", adapter)
        self.account_sid = require_text(account_sid, "account_sid", adapter)
        if not timeout > 0:
            raise ConfigurationError(f"{adapter}: timeout must be above 0 seconds, not {timeout}")
        self.timeout = float(timeout)
        self.max_connections = check_max_connections(max_connections, adapter)
        origin = _origin(base_url, adapter)
        try:
            from twilio.rest import Client  # type: ignore[import-untyped,unused-ignore]

            self._sync = SyncTransport(
                origin=origin, timeout=self.timeout, max_connections=max_connections
            )
            self._async = AsyncTransport(
                origin=origin, timeout=self.timeout, max_connections=max_connections
            )
        except ImportError as err:
            raise ConfigurationError(f"{adapter}: {INSTALL_HINT}") from err
        secret = token.get_secret_value()
        self.client: Any = Client(self.account_sid, secret, http_client=self._sync)
        self.async_client: Any = Client(self.account_sid, secret, http_client=self._async)
        for client in (self.client, self.async_client):
            # The SDK would also read TWILIO_EDGE and TWILIO_REGION from the
            # environment; base_url is this library's one way to pick the host.
            client.edge = None
            client.region = None
        self.base_url = None if origin is None else urlunsplit((*origin, "", ""))

    def close(self) -> None:
        """Close the sync client's pooled connections; later sends open new ones."""
        self._sync.session.close()

    async def aclose(self) -> None:
        """Close the running loop's aiohttp session and the sync client's connections."""
        await self._async.session.aclose()
        self._sync.session.close()


_NUMBER = re.compile(r"\+?\d[\d ().-]{6,}\d")


def _scrub(text: str) -> str:
    return _NUMBER.sub(lambda found: mask_address(re.sub(r"[ ().-]", "", found[0])), text)


def _retry_after(status: int) -> float | None:
    answer = noted_answer()
    if answer is None or answer.status != status:
        return None
    return retry_after(answer.retry_after, date=answer.date, now=datetime.now(UTC))


def _from_answer(err: Any, provider: str) -> DeliveryError:
    status = int(getattr(err, "status", 0) or 0)
    raw_code = getattr(err, "code", None)
    code = raw_code if isinstance(raw_code, int) and raw_code != status else None
    said = getattr(err, "msg", None) or " - ".join(
        part for part in (getattr(err, "title", None), getattr(err, "detail", None)) if part
    )
    said = _scrub(str(said).removeprefix("Unable to create record: ").strip())
    rule = ERRORS.get(code) if code is not None else None
    if rule is None:
        # An unknown code is not blamed on the address: a ProviderError moves on
        # to the next provider or channel and leaves the point usable next time.
        rule = _BUSY if status == 429 or status >= 500 else _REFUSED
    message = f"{rule.meaning}; Twilio said: {said}" if said else rule.meaning
    if code is not None:
        message += f" ({_DOCS}{code})"
    return rule.error(
        message,
        provider=provider,
        code=code,
        status=status or None,
        retry_after=_retry_after(status),
    )


def translate_error(err: BaseException, *, provider: str) -> DeliveryError | None:
    """The library error for what the SDK or the network raised; None if it is neither.

    Twilio's answers are read through `ERRORS`, then by HTTP status (429 and
    5xx are transient, any other refusal a provider error); timeouts and
    connection failures are transient.
    """
    from twilio.base.exceptions import (  # type: ignore[import-untyped,unused-ignore]
        TwilioRestException,
        TwilioServiceException,
    )

    if isinstance(err, TwilioRestException | TwilioServiceException):
        return _from_answer(err, provider)
    failure = transport_failure(err)
    if failure == "timeout":
        return TransientError("Twilio did not answer in time", provider=provider)
    if failure in ("connection", "tls"):
        return TransientError("could not connect to Twilio", provider=provider)
    if failure == "request":
        return ProviderError(
            f"the request to Twilio failed: {type(err).__name__}", provider=provider
        )
    return None


@contextmanager
def translated_errors(provider: str) -> Iterator[None]:
    """Re-raise what Twilio or the network raises inside as the library's error, chained."""
    try:
        yield
    except Exception as err:
        error = translate_error(err, provider=provider)
        if error is None:
            raise
        logger.debug("%s: %s", provider, error)
        raise error from err
