"""Text messages through Twilio's Messages API, with segments counted before sending.

Install with ``pip install 'multichannel[twilio]'``. `sms_segments` counts the
segments a text will be billed as, and works without the SDK.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Final

from pydantic import SecretStr

from multichannel._redact import mask_address
from multichannel.adapters._env import env_prefix, load_settings
from multichannel.adapters._pool import DEFAULT_MAX_CONNECTIONS
from multichannel.adapters._twilio import (
    DEFAULT_PREFIX,
    DEFAULT_TIMEOUT,
    TwilioConnection,
    TwilioSettings,
    mask_sid,
    require_text,
)
from multichannel.adapters._twilio_adapter import TwilioAdapter
from multichannel.contacts import ContactPoint
from multichannel.errors import ConfigurationError, PermanentError
from multichannel.messages import Content

__all__ = ["TwilioSMS", "sms_segments"]

logger = logging.getLogger("multichannel.adapters.twilio")

# GSM 03.38: the basic table (the escape code left out) and the extension
# table, whose characters take an escape septet plus their own.
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED: Final = frozenset("^{}\\[~]|€\f")
_SINGLE: Final = {"GSM-7": 160, "UCS-2": 70}
_PART: Final = {"GSM-7": 153, "UCS-2": 67}


def _encoding(text: str) -> tuple[str, str | None]:
    """The encoding a text needs, and the first character that forces UCS-2."""
    for char in text:
        if char not in _GSM_BASIC and char not in _GSM_EXTENDED:
            return "UCS-2", char
    return "GSM-7", None


def _widths(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if char in _GSM_EXTENDED else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` is sent (and billed) as; 0 for an empty text.

    GSM-7 text fits 160 septets in one segment and 153 per part of a longer one
    (``^{}\\[~]|€`` take two); any other character makes the whole text UCS-2:
    70 UTF-16 code units in one segment, 67 per part (an emoji takes two). A
    character that takes two units is never split between parts.
    """
    encoding, _ = _encoding(text)
    widths = _widths(text, encoding)
    if sum(widths) <= _SINGLE[encoding]:
        return 1 if widths else 0
    segments, used = 1, 0
    for width in widths:
        if used + width > _PART[encoding]:
            segments, used = segments + 1, 0
        used += width
    return segments


class TwilioSMS(TwilioAdapter):
    """Sends a text through Twilio's Messages API; one call is one message.

    Give exactly one of ``from_number`` and ``messaging_service_sid``.
    ``status_callback`` is the URL Twilio reports delivery to. A text over
    ``max_segments`` segments is refused before any request. ``base_url`` sends
    the same requests to another origin; ``timeout`` bounds each request in
    seconds. ``max_connections`` (default 64) is how many connections to Twilio
    are kept open and reused, and the most async sends in flight at once: size
    it to the concurrency you send with. The environment's proxy settings are
    read once, when the adapter is built. `close` (or ``with``) and `aclose`
    (or ``async with``) release the connections. ``name`` (default
    ``twilio-sms``) tells two accounts apart in one dispatcher. Raises
    ConfigurationError for a bad setting or a missing twilio SDK. `send` raises
    PermanentError (too long, invalid number), OptedOut (the recipient replied
    STOP), TransientError (rate limit, 5xx, timeout) or ProviderError
    (credentials, account, sender).
    """

    name = "twilio-sms"
    channel: ClassVar[str] = "sms"
    resource: ClassVar[str] = "messages"

    def __init__(
        self,
        *,
        name: str | None = None,
        account_sid: str,
        auth_token: str | SecretStr,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        max_segments: int = 10,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(name=name)
        if (from_number is None) == (messaging_service_sid is None):
            raise ConfigurationError(
                f"{self.name}: give exactly one of from_number and messaging_service_sid"
            )
        if isinstance(max_segments, bool) or not isinstance(max_segments, int) or max_segments < 1:
            raise ConfigurationError(
                f"{self.name}: max_segments must be a whole number of at least 1, "
                f"not {max_segments!r}"
            )
        self.from_number = (
            None if from_number is None else require_text(from_number, "from_number", self.name)
        )
        self.messaging_service_sid = (
            None
            if messaging_service_sid is None
            else require_text(messaging_service_sid, "messaging_service_sid", self.name)
        )
        self.status_callback = status_callback or None
        self.max_segments = max_segments
        self._twilio = TwilioConnection(
            adapter=self.name,
            account_sid=account_sid,
            auth_token=auth_token,
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
        )

    @classmethod
    def from_env(cls, *, name: str | None = None, prefix: str = DEFAULT_PREFIX) -> TwilioSMS:
        """Built from ``TWILIO_*`` variables; ConfigurationError naming any missing one.

        ``prefix`` reads another account's variables instead (``TWILIO_BACKUP_``
        reads ``TWILIO_BACKUP_ACCOUNT_SID`` and so on; ``TWILIO_MAX_CONNECTIONS``
        sizes the kept connections); ``name`` names the
        adapter. ``TWILIO_MESSAGING_SERVICE_SID`` wins over
        ``TWILIO_FROM_NUMBER`` when both are set, so the voice adapter can
        share the number.
        """
        adapter = name or cls.name
        settings = load_settings(TwilioSettings, adapter, env_prefix(prefix, adapter))
        if settings.messaging_service_sid is None and settings.from_number is None:
            raise ConfigurationError(
                f"{adapter}: {prefix}FROM_NUMBER or {prefix}MESSAGING_SERVICE_SID is not set"
            )
        return cls(
            name=name,
            account_sid=settings.account_sid,
            auth_token=settings.auth_token,
            from_number=None if settings.messaging_service_sid else settings.from_number,
            messaging_service_sid=settings.messaging_service_sid,
            status_callback=settings.status_callback,
            base_url=settings.base_url,
            max_connections=settings.max_connections,
        )

    def _fields(self, point: ContactPoint, content: Content) -> dict[str, Any]:
        """The Messages API fields, after the text has been checked against the limit."""
        text = content.body
        segments = sms_segments(text)
        if segments == 0:
            raise PermanentError("the text is empty; there is nothing to send", provider=self.name)
        if segments > self.max_segments:
            encoding, culprit = _encoding(text)
            why = f"{encoding}, because of {culprit!r}" if culprit else encoding
            raise PermanentError(
                f"the text needs {segments} SMS segments ({why}) and the limit is "
                f"{self.max_segments}; shorten the sms variant or raise max_segments",
                provider=self.name,
            )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s: sending %d segment(s) to %s", self.name, segments, mask_address(point.address)
            )
        fields: dict[str, Any] = {"to": point.address, "body": text}
        if self.messaging_service_sid is not None:
            fields["messaging_service_sid"] = self.messaging_service_sid
        else:
            fields["from_"] = self.from_number
        if self.status_callback is not None:
            fields["status_callback"] = self.status_callback
        return fields

    def __repr__(self) -> str:
        sender = self.messaging_service_sid or self.from_number
        where = f", base_url={self._twilio.base_url!r}" if self._twilio.base_url else ""
        return (
            f"TwilioSMS(name={self.name!r}, account_sid={mask_sid(self._twilio.account_sid)!r}, "
            f"sender={sender!r}, max_segments={self.max_segments}{where})"
        )
