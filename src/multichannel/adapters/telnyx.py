"""Fax through Telnyx Programmable Fax (``POST /v2/faxes``): requests for send, aiohttp for asend.

Twilio retired its fax API, so fax goes through Telnyx. The fax document is a
URL in the message's fax variant: ``variants={"fax": {"media_url": ...}}``.

Telnyx answers failures with ``{"errors": [{"code", "title", "detail",
"source": {"pointer": "/to"}}]}``. `_refusal` and `_unanswered` turn every
failure, sync or async, into one of the library's errors, driven by the table
`_ERRORS`; a refusal no row names falls to `_OTHERWISE`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from multichannel._redact import mask_address
from multichannel.adapters._env import load_settings, plain_origin_allowed, secret_setting
from multichannel.adapters._errors import ErrorRule
from multichannel.adapters._http import retry_after
from multichannel.adapters._pool import (
    DEFAULT_MAX_CONNECTIONS,
    Answer,
    AsyncPooledSession,
    PooledSession,
    check_max_connections,
    transport_failure,
)
from multichannel.adapters.base import BaseAdapter, Receipt, SendContext
from multichannel.contacts import ContactPoint, normalise_phone
from multichannel.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    ProviderError,
    TransientError,
)
from multichannel.messages import Content

__all__ = ["DEFAULT_BASE_URL", "TelnyxFax"]

logger = logging.getLogger("multichannel.adapters.telnyx")

DEFAULT_BASE_URL = "https://api.telnyx.com"
_INSTALL_HINT = "TelnyxFax needs requests and aiohttp: pip install 'multichannel[telnyx]'"

# Keys: the HTTP status (or its class, "5xx") and the request field Telnyx
# blames (errors[].source), None for a row that holds whatever the field.
# `_translate` tries (status, field), then (status, None), then (class, None).
# A refused `from` or `connection_id` is a ProviderError, not a
# ConfigurationError: only Telnyx can tell it is wrong, every fax through this
# adapter would fail the same way, and the dispatcher should move on to the
# next fax provider or channel rather than abort the whole dispatch.
_ERRORS: Final[Mapping[tuple[int | str, str | None], ErrorRule]] = MappingProxyType(
    {
        (401, None): ErrorRule(ProviderError, "Telnyx rejected the API key (TELNYX_API_KEY)"),
        (403, None): ErrorRule(ProviderError, "the Telnyx account is not allowed to send this fax"),
        (400, "to"): ErrorRule(PermanentError, "Telnyx refused the destination number"),
        (422, "to"): ErrorRule(PermanentError, "Telnyx refused the destination number"),
        (400, "media_url"): ErrorRule(PermanentError, "Telnyx refused the fax document URL"),
        (422, "media_url"): ErrorRule(PermanentError, "Telnyx refused the fax document URL"),
        (400, "from"): ErrorRule(ProviderError, "Telnyx refused the sending number (TELNYX_FROM)"),
        (422, "from"): ErrorRule(ProviderError, "Telnyx refused the sending number (TELNYX_FROM)"),
        (400, "connection_id"): ErrorRule(
            ProviderError, "Telnyx refused the connection (TELNYX_CONNECTION_ID)"
        ),
        (422, "connection_id"): ErrorRule(
            ProviderError, "Telnyx refused the connection (TELNYX_CONNECTION_ID)"
        ),
        (408, None): ErrorRule(TransientError, "Telnyx timed out"),
        (429, None): ErrorRule(TransientError, "Telnyx is rate limiting this account"),
        ("5xx", None): ErrorRule(TransientError, "Telnyx failed on its side"),
    }
)
# Any other refusal (404, a 422 that blames no field we know) does not concern
# the address, so it is the provider's failure.
_OTHERWISE: Final = ErrorRule(ProviderError, "Telnyx refused the request")


class _TelnyxSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    telnyx_api_key: SecretStr = Field(min_length=1)
    telnyx_connection_id: str = Field(min_length=1)
    telnyx_from: str = Field(min_length=1)
    telnyx_base_url: str | None = None
    telnyx_max_connections: int = DEFAULT_MAX_CONNECTIONS


class TelnyxFax(BaseAdapter):
    """Sends a fax of the document at ``Content.media_url`` through Telnyx; one request a send.

    ``base_url`` sends the same requests to another origin (a proxy, a local
    stand-in); ``timeout`` bounds every request, in seconds; ``max_connections``
    (default 64) is how many connections to Telnyx are kept open and reused, and
    the most async sends in flight at once. The environment's proxy settings
    are read once, when the adapter is built. `close` (or ``with``) and
    `aclose` (or ``async with``) release the connections. ``name`` (default
    ``telnyx-fax``) tells two accounts apart in one dispatcher. Raises
    ConfigurationError for a missing setting, a bad value, or requests or
    aiohttp not installed. ``send`` raises PermanentError for a fax without a document or a
    refused number, ProviderError for a refused key, account or setting, and
    TransientError for timeouts, rate limits and Telnyx's own failures.
    """

    name = "telnyx-fax"
    channel = "fax"

    def __init__(
        self,
        *,
        name: str | None = None,
        api_key: str | SecretStr,
        connection_id: str,
        from_number: str,
        base_url: str | None = None,
        timeout: float = 30,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(name=name)
        from importlib.util import find_spec

        if find_spec("requests") is None or find_spec("aiohttp") is None:
            raise ConfigurationError(f"{self.name}: {_INSTALL_HINT}")
        key = secret_setting(api_key, "api_key", self.name)
        if not connection_id.strip():
            raise ConfigurationError(f"{self.name}: connection_id is empty")
        try:
            self.from_number = normalise_phone(from_number, None)
        except ValueError as err:
            raise ConfigurationError(f"{self.name}: from_number: {err}") from None
        origin = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not origin.startswith(("http://", "https://")):
            raise ConfigurationError(f"{self.name}: base_url {origin!r} is not an http(s) URL")
        if not plain_origin_allowed(origin):
            raise ConfigurationError(
                f"{self.name}: base_url {origin!r} would send the API key unencrypted; "
                "use https (plain http is for 127.0.0.1 only)"
            )
        if timeout <= 0:
            raise ConfigurationError(f"{self.name}: timeout must be more than zero seconds")
        self.max_connections = check_max_connections(max_connections, self.name)
        self.connection_id = connection_id.strip()
        self.base_url = origin
        self._timeout = float(timeout)
        self._url = f"{origin}/v2/faxes"
        self._headers = {
            "Authorization": f"Bearer {key.get_secret_value()}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "multichannel",  # the same from both clients
        }
        self._session = PooledSession(origin, max_connections=self.max_connections)
        self._async_session = AsyncPooledSession(
            origin, max_connections=self.max_connections, timeout=self._timeout
        )

    @classmethod
    def from_env(cls, *, name: str | None = None) -> TelnyxFax:
        """Build from TELNYX_API_KEY, TELNYX_CONNECTION_ID, TELNYX_FROM and TELNYX_BASE_URL.

        TELNYX_MAX_CONNECTIONS is read too; ``name`` names the adapter. Raises
        ConfigurationError naming each missing or invalid variable.
        """
        settings = load_settings(_TelnyxSettings, name or cls.name)
        return cls(
            name=name,
            api_key=settings.telnyx_api_key,
            connection_id=settings.telnyx_connection_id,
            from_number=settings.telnyx_from,
            base_url=settings.telnyx_base_url,
            max_connections=settings.telnyx_max_connections,
        )

    @property
    def timeout(self) -> float:
        """Seconds one request may take before it is abandoned; the dispatcher counts it per try."""
        return self._timeout

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Ask Telnyx to fax ``content.media_url`` to ``point``; the receipt holds the fax id.

        Raises PermanentError before any request when there is no document.
        """
        body = self._fax(point, content)
        try:
            answer = self._session.send(
                "POST", self._url, body=body, headers=self._headers, timeout=self._timeout
            )
        except Exception as err:
            error = self._unanswered(err)
            if error is None:
                raise
            raise error from err
        return self._receipt(answer)

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """`send` without blocking: the same request on the running loop's kept connections."""
        body = self._fax(point, content)
        try:
            answer = await self._async_session.send(
                "POST", self._url, body=body, headers=self._headers
            )
        except Exception as err:
            error = self._unanswered(err)
            if error is None:
                raise
            raise error from err
        return self._receipt(answer)

    def close(self) -> None:
        """Close the connections kept for sync sends; a later send opens new ones."""
        self._session.close()

    async def aclose(self) -> None:
        """Close the running event loop's connections and those kept for sync sends."""
        await self._async_session.aclose()
        self._session.close()

    def __repr__(self) -> str:
        return (
            f"TelnyxFax(name={self.name!r}, channel={self.channel!r}, base_url={self.base_url!r})"
        )

    def _fax(self, point: ContactPoint, content: Content) -> bytes:
        """The request's JSON body; PermanentError when there is no document to fax."""
        if not content.media_url:
            raise PermanentError(
                "a fax needs a document: give the message "
                "variants={'fax': {'media_url': 'https://.../document.pdf'}}",
                provider=self.name,
            )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: sending a fax to %s", self.name, mask_address(point.address))
        fax = {
            "connection_id": self.connection_id,
            "to": point.address,
            "from": self.from_number,
            "media_url": content.media_url,
        }
        return json.dumps(fax).encode()

    def _receipt(self, answer: Answer) -> Receipt:
        if answer.status >= 400:
            raise self._refusal(answer)
        fax = _accepted_fax(answer)
        if fax is None:
            # A 2xx without a fax id is not Telnyx speaking: most likely
            # base_url points at something else, and every send would fail alike.
            raise ProviderError(
                f"the answer from {self.base_url} has no fax id; is base_url right?",
                provider=self.name,
                status=answer.status,
            )
        fax_id, status = fax
        logger.info("%s: Telnyx accepted the fax as %s", self.name, fax_id)
        return Receipt(provider_id=fax_id, status=status)

    def _unanswered(self, err: Exception) -> DeliveryError | None:
        """The library's error for a request that got no answer; None for a bug of ours."""
        failure = transport_failure(err)
        if failure == "timeout":
            return TransientError(
                f"Telnyx did not answer within {self.timeout:g}s", provider=self.name
            )
        if failure in ("connection", "tls"):
            return TransientError(f"could not connect to {self.base_url}", provider=self.name)
        if failure == "request":
            # The exception's text can quote the request's headers, key included.
            return ProviderError(
                f"the request to Telnyx failed: {type(err).__name__}", provider=self.name
            )
        return None

    def _refusal(self, answer: Answer) -> DeliveryError:
        """The library's error for a refusal: the one place Telnyx's answers are mapped."""
        status = answer.status
        code, field, said = _telnyx_error(answer)
        keys = ((status, field), (status, None), (f"{status // 100}xx", None))
        rule = next((_ERRORS[key] for key in keys if key in _ERRORS), _OTHERWISE)
        hint = retry_after(
            answer.headers.get("Retry-After"),
            date=answer.headers.get("Date"),
            now=datetime.now(UTC),
        )
        return rule.error(
            f"{rule.meaning}: {said}" if said else rule.meaning,
            provider=self.name,
            code=code,
            status=status,
            retry_after=hint,
        )


def _accepted_fax(answer: Answer) -> tuple[str, str] | None:
    """The fax id and status from an acceptance, or None when the body has no id."""
    try:
        data = answer.json()["data"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    status = data.get("status")
    return data["id"], status if isinstance(status, str) and status else "queued"


def _telnyx_error(answer: Answer) -> tuple[str | None, str | None, str]:
    """The first error's code, the request field it blames, and its title and detail."""
    try:
        first = answer.json()["errors"][0]
    except (ValueError, IndexError, KeyError, TypeError):
        return None, None, ""
    if not isinstance(first, dict):
        return None, None, ""
    code = first.get("code")
    source = first.get("source")
    where = ""
    if isinstance(source, dict):
        where = str(source.get("pointer") or source.get("parameter") or "")
    field = where.strip("/").split("/")[0] or None
    said = " - ".join(str(part) for part in (first.get("title"), first.get("detail")) if part)
    return (None if code is None else str(code)), field, said
