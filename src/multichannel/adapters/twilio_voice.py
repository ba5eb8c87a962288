"""Voicemail drops through Twilio's Calls API: the message starts after the beep.

Install with ``pip install 'multichannel[twilio]'``. The call uses answering-
machine detection that waits for the end of the greeting, then plays a
recording (the content's ``media_url``) or speaks the voice script (its body).
A person who answers hears the same message.
"""

from __future__ import annotations

import logging
from datetime import timedelta
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
from multichannel.errors import PermanentError
from multichannel.messages import Content

__all__ = [
    "CALL_EVENTS",
    "VOICEMAIL_LIMIT",
    "WORDS_PER_MINUTE",
    "TwilioVoiceDrop",
    "spoken_length",
    "spoken_words",
]

logger = logging.getLogger("multichannel.adapters.twilio")

WORDS_PER_MINUTE: Final = 150
"""The speaking rate scripts are measured at: an unhurried text-to-speech voice."""

VOICEMAIL_LIMIT: Final = timedelta(seconds=30)
"""The longest script left as a voicemail; longer ones are not listened to the end."""

CALL_EVENTS: Final = ("initiated", "ringing", "answered", "completed")
"""The call progress events Twilio reports to ``status_callback``."""


_CURRENCY: Final = frozenset("$€£¥")
_SAID_AS_A_WORD: Final = frozenset("&%")  # "and", "percent"


def spoken_words(script: str) -> int:
    """How many words ``script`` takes to say, numbers counted as they are spoken.

    Each run of letters that starts a whitespace-separated token is a word, and
    so are ``&`` and ``%``. Each digit is a word: a phone number is read digit
    by digit, and no number is said in fewer words than it has digits, so
    ``2026`` ("twenty twenty-six") counts four. A number also costs the words
    its digits leave out: one for each thousands comma ("thousand"), one for a
    decimal point ("point"), one for a currency sign before it ("dollars"), two
    for cents after it ("and ... cents"). ``$1,250.75`` is ten words, ``Call
    734-555-0100`` eleven. Each character's cost depends only on what comes
    before it, so adding text never lowers the count.
    """
    words = 0
    token_has_word = False  # the current whitespace-separated token already counted a word
    money = False  # the number being read started with a currency sign
    past_point = False  # ... and has passed its decimal point
    before, previous = "", ""
    for char in script:
        if char.isspace():
            token_has_word = False
        elif char.isdecimal():
            words += 1
            if previous in (",", ".") and before.isdecimal():
                if previous == ",":
                    words += 1  # "thousand", "million"
                elif not past_point:
                    words += 2 if money else 1  # "and ... cents", else "point"
                    past_point = True
            elif not previous.isdecimal():
                money = previous in _CURRENCY
                past_point = False
                if money:
                    words += 1  # "dollars"
        elif char in _SAID_AS_A_WORD:
            words += 1
        elif char.isalpha() and not token_has_word:
            words += 1
            token_has_word = True
        before, previous = previous, char
    return words


def spoken_length(script: str) -> timedelta:
    """How long ``script`` takes to say: its `spoken_words` at `WORDS_PER_MINUTE`."""
    return timedelta(minutes=spoken_words(script) / WORDS_PER_MINUTE)


class _VoiceSettings(TwilioSettings):
    from_number: str
    # Calls report to their own route (/twilio/calls), apart from messages' /twilio/status.
    voice_status_callback: str | None = None


class TwilioVoiceDrop(TwilioAdapter):
    """Leaves a voice message through Twilio's Calls API; one call is one attempt.

    ``from_number`` is the caller id, a number of the account. ``status_callback``
    is the URL Twilio reports the call's progress to. ``base_url`` sends the
    same requests to another origin; ``timeout`` bounds each request in seconds.
    ``max_connections`` (default 64) is how many connections to Twilio are kept
    open and reused, and the most async sends in flight at once. `close` and
    `aclose` release them. ``name`` (default ``twilio-voice``) tells two accounts apart in one
    dispatcher. Raises ConfigurationError for a bad setting or a missing
    twilio SDK. `send`
    raises PermanentError for a script longer than `VOICEMAIL_LIMIT` (before
    dialling) or an invalid number, TransientError (rate limit, 5xx, timeout)
    or ProviderError (credentials, account, caller id).
    """

    name = "twilio-voice"
    channel: ClassVar[str] = "voice"
    resource: ClassVar[str] = "calls"

    def __init__(
        self,
        *,
        name: str | None = None,
        account_sid: str,
        auth_token: str | SecretStr,
        from_number: str,
        status_callback: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(name=name)
        self.from_number = require_text(from_number, "from_number", self.name)
        self.status_callback = status_callback or None
        self._twilio = TwilioConnection(
            adapter=self.name,
            account_sid=account_sid,
            auth_token=auth_token,
            base_url=base_url,
            timeout=timeout,
            max_connections=max_connections,
        )

    @classmethod
    def from_env(cls, *, name: str | None = None, prefix: str = DEFAULT_PREFIX) -> TwilioVoiceDrop:
        """Built from ``TWILIO_*`` variables; ConfigurationError naming any missing one.

        ``prefix`` reads another account's variables instead (``TWILIO_BACKUP_``
        reads ``TWILIO_BACKUP_ACCOUNT_SID`` and so on; ``TWILIO_MAX_CONNECTIONS``
        sizes the kept connections); ``name`` names the adapter.
        """
        adapter = name or cls.name
        settings = load_settings(_VoiceSettings, adapter, env_prefix(prefix, adapter))
        return cls(
            name=name,
            account_sid=settings.account_sid,
            auth_token=settings.auth_token,
            from_number=settings.from_number,
            status_callback=settings.voice_status_callback,
            base_url=settings.base_url,
            max_connections=settings.max_connections,
        )

    def twiml(self, content: Content) -> str:
        """The TwiML the call runs: ``<Play>`` of the recording, else ``<Say>`` of the script.

        Raises PermanentError for a script longer than `VOICEMAIL_LIMIT` or for
        content with neither a recording nor words.
        """
        from twilio.twiml.voice_response import (  # type: ignore[import-untyped,unused-ignore]
            VoiceResponse,
        )

        response = VoiceResponse()
        if content.media_url:
            # A recording's length is not known here; keeping it short is the sender's part.
            response.play(content.media_url)
            return str(response)
        script = content.body.strip()
        if not script:
            raise PermanentError(
                "the voice script is empty; there is nothing to say", provider=self.name
            )
        length = spoken_length(script)
        if length > VOICEMAIL_LIMIT:
            raise PermanentError(
                f"the voice script would take about {length.total_seconds():.1f} seconds to say "
                f"({spoken_words(script)} words at {WORDS_PER_MINUTE} a minute, numbers counted "
                f"as they are spoken); a voicemail over "
                f"{VOICEMAIL_LIMIT.total_seconds():.0f} seconds is rarely heard to the end, "
                "so shorten the voice variant and put the most important sentence first",
                provider=self.name,
            )
        response.say(script)
        return str(response)

    def _fields(self, point: ContactPoint, content: Content) -> dict[str, Any]:
        """The Calls API fields, after the script has been checked against the limit."""
        fields: dict[str, Any] = {
            "to": point.address,
            "from_": self.from_number,
            "twiml": self.twiml(content),
            # Waits for the greeting's beep on a machine; a person is spoken to at once.
            "machine_detection": "DetectMessageEnd",
        }
        if self.status_callback is not None:
            fields["status_callback"] = self.status_callback
            fields["status_callback_event"] = list(CALL_EVENTS)
            fields["status_callback_method"] = "POST"
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: calling %s", self.name, mask_address(point.address))
        return fields

    def __repr__(self) -> str:
        where = f", base_url={self._twilio.base_url!r}" if self._twilio.base_url else ""
        return (
            f"TwilioVoiceDrop(name={self.name!r}, "
            f"account_sid={mask_sid(self._twilio.account_sid)!r}, "
            f"from_number={self.from_number!r}{where})"
        )
