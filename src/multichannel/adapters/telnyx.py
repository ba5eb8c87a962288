"""Fax through Telnyx Programmable Fax (``POST /v2/faxes``) over requests.

Twilio retired its fax API, so fax goes through Telnyx. The fax document is a
URL in the message's fax variant: ``variants={"fax": {"media_url": ...}}``.

Telnyx answers failures with ``{"errors": [{"code", "title", "detail",
"source": {"pointer": "/to"}}]}``. `_translate` turns every failure into one of
the library's errors, driven by the table `_HTTP_ERRORS`; a refusal no row
names falls to `_OTHERWISE`.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from multichannel.adapters._env import load_settings, plain_origin_allowed, secret_setting
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

if TYPE_CHECKING:
    import requests

__all__ = ["DEFAULT_BASE_URL", "TelnyxFax"]

DEFAULT_BASE_URL = "https://api.telnyx.com"
_INSTALL_HINT = "TelnyxFax needs requests: pip install multichannel[telnyx]"

# HTTP status, the request field Telnyx blames (errors[].source), the library
# error, and what it means. First match wins; a field of None matches any.
# A refused `from` or `connection_id` is a ProviderError, not a
# ConfigurationError: only Telnyx can tell it is wrong, every fax through this
# adapter would fail the same way, and the dispatcher should move on to the
# next fax provider or channel rather than abort the whole dispatch.
_HTTP_ERRORS: tuple[tuple[Container[int], str | None, type[DeliveryError], str], ...] = (
    ((401,), None, ProviderError, "Telnyx rejected the API key (TELNYX_API_KEY)"),
    ((403,), None, ProviderError, "the Telnyx account is not allowed to send this fax"),
    ((400, 422), "to", PermanentError, "Telnyx refused the destination number"),
    ((400, 422), "media_url", PermanentError, "Telnyx refused the fax document URL"),
    ((400, 422), "from", ProviderError, "Telnyx refused the sending number (TELNYX_FROM)"),
    (
        (400, 422),
        "connection_id",
        ProviderError,
        "Telnyx refused the connection (TELNYX_CONNECTION_ID)",
    ),
    ((408,), None, TransientError, "Telnyx timed out"),
    ((429,), None, TransientError, "Telnyx is rate limiting this account"),
    (range(500, 600), None, TransientError, "Telnyx failed on its side"),
)
# Any other refusal (404, a 422 that blames no field we know) does not concern
# the address, so it is the provider's failure.
_OTHERWISE = (ProviderError, "Telnyx refused the request")


class _TelnyxSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    telnyx_api_key: SecretStr = Field(min_length=1)
    telnyx_connection_id: str = Field(min_length=1)
    telnyx_from: str = Field(min_length=1)
    telnyx_base_url: str | None = None


class TelnyxFax(BaseAdapter):
    """Sends a fax of the document at ``Content.media_url`` through Telnyx; one request a send.

    ``base_url`` sends the same requests to another origin (a proxy, a local
    stand-in); ``timeout`` bounds every request, in seconds. Raises
    ConfigurationError for a missing setting, a bad value, or requests not
    installed. ``send`` raises PermanentError for a fax without a document or a
    refused number, ProviderError for a refused key, account or setting, and
    TransientError for timeouts, rate limits and Telnyx's own failures.
    """

    name = "telnyx-fax"
    channel = "fax"

    def __init__(
        self,
        *,
        api_key: str | SecretStr,
        connection_id: str,
        from_number: str,
        base_url: str | None = None,
        timeout: float = 30,
    ) -> None:
        try:
            import requests
        except ImportError:
            raise ConfigurationError(_INSTALL_HINT) from None
        key = secret_setting(api_key, "api_key", "telnyx-fax")
        if not connection_id.strip():
            raise ConfigurationError("telnyx-fax: connection_id is empty")
        try:
            self.from_number = normalise_phone(from_number, None)
        except ValueError as err:
            raise ConfigurationError(f"telnyx-fax: from_number: {err}") from None
        origin = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not origin.startswith(("http://", "https://")):
            raise ConfigurationError(f"telnyx-fax: base_url {origin!r} is not an http(s) URL")
        if not plain_origin_allowed(origin):
            raise ConfigurationError(
                f"telnyx-fax: base_url {origin!r} would send the API key unencrypted; "
                "use https (plain http is for 127.0.0.1 only)"
            )
        if timeout <= 0:
            raise ConfigurationError("telnyx-fax: timeout must be more than zero seconds")
        self._api_key = key
        self.connection_id = connection_id.strip()
        self.base_url = origin
        self._timeout = float(timeout)
        self._session = requests.Session()

    @classmethod
    def from_env(cls) -> TelnyxFax:
        """Build from TELNYX_API_KEY, TELNYX_CONNECTION_ID, TELNYX_FROM and TELNYX_BASE_URL.

        Raises ConfigurationError naming each missing or invalid variable.
        """
        settings = load_settings(_TelnyxSettings, cls.name)
        return cls(
            api_key=settings.telnyx_api_key,
            connection_id=settings.telnyx_connection_id,
            from_number=settings.telnyx_from,
            base_url=settings.telnyx_base_url,
        )

    @property
    def timeout(self) -> float:
        """Seconds one request may take before it is abandoned; the dispatcher counts it per try."""
        return self._timeout

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Ask Telnyx to fax ``content.media_url`` to ``point``; the receipt holds the fax id.

        Raises PermanentError before any request when there is no document.
        """
        import requests

        if not content.media_url:
            raise PermanentError(
                "a fax needs a document: give the message "
                "variants={'fax': {'media_url': 'https://.../document.pdf'}}",
                provider=self.name,
            )
        fax = {
            "connection_id": self.connection_id,
            "to": point.address,
            "from": self.from_number,
            "media_url": content.media_url,
        }
        try:
            response = self._session.post(
                f"{self.base_url}/v2/faxes",
                json=fax,
                headers={
                    "Authorization": f"Bearer {self._api_key.get_secret_value()}",
                    "Accept": "application/json",
                },
                timeout=self.timeout,
            )
            response.raise_for_status()
        except requests.RequestException as err:
            raise self._translate(err) from err
        return self._receipt(response)

    def close(self) -> None:
        """Close the HTTP connections this adapter keeps open."""
        self._session.close()

    def __repr__(self) -> str:
        return (
            f"TelnyxFax(name={self.name!r}, channel={self.channel!r}, base_url={self.base_url!r})"
        )

    def _receipt(self, response: requests.Response) -> Receipt:
        fax = _accepted_fax(response)
        if fax is None:
            # A 2xx without a fax id is not Telnyx speaking: most likely
            # base_url points at something else, and every send would fail alike.
            raise ProviderError(
                f"the answer from {self.base_url} has no fax id; is base_url right?",
                provider=self.name,
                status=response.status_code,
            )
        fax_id, status = fax
        return Receipt(provider_id=fax_id, status=status)

    def _translate(self, err: requests.RequestException) -> DeliveryError:
        """The library's error for a failed request: the one place Telnyx failures are mapped."""
        import requests

        if isinstance(err, requests.Timeout):
            return TransientError(
                f"Telnyx did not answer within {self.timeout:g}s", provider=self.name
            )
        if isinstance(err, requests.ConnectionError):
            return TransientError(f"could not connect to {self.base_url}", provider=self.name)
        response = err.response
        if response is None:
            # The exception's text can quote the request's headers, key included.
            return ProviderError(
                f"the request to Telnyx failed: {type(err).__name__}", provider=self.name
            )
        status = response.status_code
        code, field, said = _telnyx_error(response)
        kind, meaning = next(
            (
                (kind, meaning)
                for statuses, blamed, kind, meaning in _HTTP_ERRORS
                if status in statuses and blamed in (None, field)
            ),
            _OTHERWISE,
        )
        message = f"{meaning}: {said}" if said else meaning
        if kind is TransientError:
            hint = _retry_after(response)
            return TransientError(
                message, retry_after=hint, provider=self.name, code=code, status=status
            )
        return kind(message, provider=self.name, code=code, status=status)


def _accepted_fax(response: requests.Response) -> tuple[str, str] | None:
    """The fax id and status from an acceptance, or None when the body has no id."""
    try:
        data = response.json()["data"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    status = data.get("status")
    return data["id"], status if isinstance(status, str) and status else "queued"


def _telnyx_error(response: requests.Response) -> tuple[str | None, str | None, str]:
    """The first error's code, the request field it blames, and its title and detail."""
    try:
        first = response.json()["errors"][0]
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


def _retry_after(response: requests.Response) -> float | None:
    """Seconds to wait from a Retry-After header: a number, or a date read against Date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        until = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    sent = response.headers.get("Date")
    try:
        # The server's own Date keeps the hint right even when our clock is not.
        now = parsedate_to_datetime(sent) if sent else datetime.now(UTC)
    except (TypeError, ValueError):
        now = datetime.now(UTC)
    if until.tzinfo is None or now.tzinfo is None:
        return None
    return max((until - now).total_seconds(), 0.0)
