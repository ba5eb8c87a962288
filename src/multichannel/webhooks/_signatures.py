"""Checks that a callback really comes from its provider, the errors that say why not, and
the few helpers every provider's parser shares.

The exceptions::

    MultichannelError
    ├── SignatureError        the callback cannot be trusted; nothing was recorded
    │   ├── MissingSignature  a signature or timestamp header is absent
    │   ├── InvalidSignature  it does not match the body, the URL or the key
    │   └── StaleSignature    its timestamp is outside the tolerance: a replay, or a skewed clock
    └── MalformedWebhook      the body is not what the provider sends

Provider libraries (twilio, cryptography) are imported when a verifier is
built, so ``import multichannel.webhooks`` needs neither. No message here ever
quotes a token, a key, a signature or a header value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr, ValidationError

from multichannel.clock import Clock, SystemClock
from multichannel.contacts import ContactPoint
from multichannel.dispatch import DeliveryEvent
from multichannel.errors import ConfigurationError, MultichannelError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "InvalidSignature",
    "MalformedWebhook",
    "MissingSignature",
    "SendGridSignature",
    "SignatureError",
    "SignedWebhooks",
    "StaleSignature",
    "TelnyxSignature",
    "TwilioSignature",
    "excerpt",
    "header",
    "load_json",
    "point_address",
]

_CRYPTOGRAPHY_MISSING = (
    "checking {provider} signatures needs the cryptography package: "
    "pip install 'multichannel[webhooks]'"
)


class SignatureError(MultichannelError):
    """A callback's signature is missing, wrong or stale; it was rejected and nothing changed.

    ``provider`` names who the callback claimed to come from and ``reason`` is
    ``missing``, ``invalid`` or ``stale``.
    """

    reason: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


class MissingSignature(SignatureError):
    """The signature header, or the timestamp signed with it, is absent."""

    reason = "missing"


class InvalidSignature(SignatureError):
    """The signature does not match the body, the URL or the configured key."""

    reason = "invalid"


class StaleSignature(SignatureError):
    """The signed timestamp is older than the tolerance, or too far in the future."""

    reason = "stale"


class MalformedWebhook(MultichannelError, ValueError):
    """The body is not a callback this provider sends: bad JSON, bad form, a missing field."""

    def __init__(self, message: str, *, provider: str) -> None:
        super().__init__(message)
        self.provider = provider


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any letter case; None when absent or blank."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((found for key, found in headers.items() if key.lower() == wanted), None)
    if value is None or not value.strip():
        return None
    return value.strip()


def point_address(channel: str, address: str) -> str:
    """``address`` as a `ContactPoint` stores it, so events match the contact's own points.

    An address the library cannot read (a short code, a SIP URI) is kept as given.
    """
    try:
        return ContactPoint(channel=channel, address=address).address
    except ValidationError:
        return address.strip()


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` trimmed to at most ``limit`` characters, an ellipsis marking a cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reveal(secret: str | SecretStr) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def _decode_signature(provider: str, signature: str) -> bytes:
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature(
            f"the {provider} signature header is not base64", provider=provider
        ) from None


def load_json(body: bytes | str, provider: str) -> Any:
    """The JSON document ``body`` holds; MalformedWebhook when it holds none, or nests too deep."""
    import json

    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MalformedWebhook("the body is not JSON", provider=provider) from None
    except RecursionError:
        raise MalformedWebhook("the body's JSON is nested too deeply", provider=provider) from None


def _check_fresh(provider: str, sent: datetime, now: datetime, tolerance: timedelta) -> None:
    age = now - sent
    if age > tolerance:
        raise StaleSignature(
            f"the {provider} callback was signed {age} ago, longer than the tolerance of "
            f"{tolerance}; a replay is refused",
            provider=provider,
        )
    if -age > tolerance:
        raise StaleSignature(
            f"the {provider} callback is signed {-age} in the future, more than the tolerance "
            f"of {tolerance}; check this machine's clock",
            provider=provider,
        )


def _unix_time(provider: str, timestamp: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidSignature(
            f"the {provider} timestamp header is not a Unix time", provider=provider
        ) from None


def _check_tolerance(tolerance: timedelta) -> timedelta:
    if tolerance <= timedelta(0):
        raise ConfigurationError(f"tolerance must be longer than zero, not {tolerance}")
    return tolerance


def _key_bytes(provider: str, public_key: str) -> tuple[bytes, bool]:
    """The key's bytes and whether they are PEM text; ConfigurationError if neither form."""
    text = public_key.strip()
    if not text:
        raise ConfigurationError(f"the {provider} public key is empty")
    if text.startswith("-----BEGIN"):
        return text.encode("ascii", errors="replace"), True
    try:
        # Keys pasted from a dashboard often arrive wrapped over several lines.
        return base64.b64decode("".join(text.split()), validate=True), False
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"the {provider} public key is neither base64 nor PEM; copy it as the provider shows it"
        ) from None


class _HeaderCheck:
    """What can be checked of a signature before the body is read: that its headers are there."""

    provider: ClassVar[str]
    required_headers: ClassVar[tuple[str, ...]]

    @classmethod
    def require_headers(cls, headers: Mapping[str, str]) -> None:
        """Pass if every header the signature needs is present; MissingSignature if not.

        Needs neither the secret nor the body, so a server can refuse an
        unsigned request before reading what it sends.
        """
        for name in cls.required_headers:
            if header(headers, name) is None:
                raise MissingSignature(f"the {name} header is missing", provider=cls.provider)


class TwilioSignature(_HeaderCheck):
    """Checks X-Twilio-Signature with the twilio SDK's own RequestValidator.

    Raises ConfigurationError when the auth token is empty or the twilio SDK is
    not installed.
    """

    provider: ClassVar[str] = "twilio"
    signature_header: ClassVar[str] = "X-Twilio-Signature"
    required_headers = (signature_header,)

    def __init__(self, auth_token: str | SecretStr) -> None:
        token = _reveal(auth_token)
        if not token.strip():
            raise ConfigurationError("the Twilio auth token is empty")
        try:
            from twilio.request_validator import (  # type: ignore[import-untyped, unused-ignore]
                RequestValidator,
            )
        except ImportError:
            raise ConfigurationError(
                "checking Twilio signatures needs the twilio SDK: "
                "pip install 'multichannel[twilio]'"
            ) from None
        self._validator: Any = RequestValidator(token)

    def require_header(self, headers: Mapping[str, str]) -> str:
        """The signature header's value; MissingSignature when there is none."""
        signature = header(headers, self.signature_header)
        if signature is None:
            raise MissingSignature(
                f"the {self.signature_header} header is missing", provider=self.provider
            )
        return signature

    def verify(
        self, *, url: str, form: Sequence[tuple[str, str]], headers: Mapping[str, str]
    ) -> None:
        """Pass if the signature matches ``url`` and ``form``; raise a SignatureError if not."""
        signature = self.require_header(headers)
        try:
            valid = bool(self._validator.validate(url, _FormValues.of(form), signature))
        except ValueError:  # a URL the SDK cannot parse, such as a port out of range
            valid = False
        if not valid:
            raise InvalidSignature(
                "the Twilio signature does not match this URL and form; behind a proxy, "
                "configure the public URL Twilio calls",
                provider=self.provider,
            )


class _FormValues(dict[str, list[str]]):
    """Form fields with every value, in the shape RequestValidator reads (``getlist``)."""

    @classmethod
    def of(cls, form: Sequence[tuple[str, str]]) -> _FormValues:
        values = cls()
        for name, value in form:
            values.setdefault(name, []).append(value)
        return values

    def getlist(self, name: str) -> list[str]:
        return self[name]


class _TimestampedSignature(_HeaderCheck):
    """A signature over a timestamp and the raw body, checked against a public key."""

    provider: ClassVar[str]
    signature_header: ClassVar[str]
    timestamp_header: ClassVar[str]

    def __init__(self, *, tolerance: timedelta) -> None:
        self.tolerance = _check_tolerance(tolerance)

    def verify(self, *, body: bytes, headers: Mapping[str, str], now: datetime) -> None:
        """Pass if ``body`` is signed by the key and fresh at ``now``, else raise SignatureError.

        The timestamp is checked after the signature, so a stale error is only
        ever given for a callback that really came from the provider.
        """
        from cryptography.exceptions import InvalidSignature as BadSignature

        signature = self._required(headers, self.signature_header)
        timestamp = self._required(headers, self.timestamp_header)
        sent = _unix_time(self.provider, timestamp)
        raw = _decode_signature(self.provider, signature)
        try:
            self._check(raw, timestamp, body)
        except BadSignature:
            raise InvalidSignature(
                f"the {self.provider} signature does not match this body, timestamp and key",
                provider=self.provider,
            ) from None
        _check_fresh(self.provider, sent, now, self.tolerance)

    def _required(self, headers: Mapping[str, str], name: str) -> str:
        value = header(headers, name)
        if value is None:
            raise MissingSignature(f"the {name} header is missing", provider=self.provider)
        return value

    def _check(self, signature: bytes, timestamp: str, body: bytes) -> None:
        raise NotImplementedError


class SendGridSignature(_TimestampedSignature):
    """Checks SendGrid's signed Event Webhook: ECDSA P-256, SHA-256, over timestamp + body.

    ``public_key`` is the verification key as SendGrid shows it (base64 DER) or
    PEM. Raises ConfigurationError for a key that is not a P-256 public key, a
    tolerance that is not positive, or a missing cryptography package.
    """

    provider = "sendgrid"
    signature_header = "X-Twilio-Email-Event-Webhook-Signature"
    timestamp_header = "X-Twilio-Email-Event-Webhook-Timestamp"
    required_headers = (signature_header, timestamp_header)

    def __init__(self, public_key: str, *, tolerance: timedelta) -> None:
        super().__init__(tolerance=tolerance)
        try:
            from cryptography.hazmat.primitives.asymmetric import ec
            from cryptography.hazmat.primitives.serialization import (
                load_der_public_key,
                load_pem_public_key,
            )
        except ImportError:
            raise ConfigurationError(_CRYPTOGRAPHY_MISSING.format(provider="SendGrid")) from None
        data, is_pem = _key_bytes("SendGrid", public_key)
        try:
            key = load_pem_public_key(data) if is_pem else load_der_public_key(data)
        except (ValueError, TypeError):
            raise ConfigurationError("the SendGrid public key cannot be read") from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ConfigurationError("the SendGrid public key is not an ECDSA P-256 key")
        self._key: EllipticCurvePublicKey = key

    def _check(self, signature: bytes, timestamp: str, body: bytes) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))


class TelnyxSignature(_TimestampedSignature):
    """Checks Telnyx's Ed25519 signature over ``timestamp|body``.

    ``public_key`` is the base64 key from the Telnyx portal (32 raw bytes) or
    PEM. Raises ConfigurationError for a key that is not an Ed25519 public key,
    a tolerance that is not positive, or a missing cryptography package.
    """

    provider = "telnyx"
    signature_header = "telnyx-signature-ed25519"
    timestamp_header = "telnyx-timestamp"
    required_headers = (signature_header, timestamp_header)

    def __init__(self, public_key: str, *, tolerance: timedelta) -> None:
        super().__init__(tolerance=tolerance)
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
        except ImportError:
            raise ConfigurationError(_CRYPTOGRAPHY_MISSING.format(provider="Telnyx")) from None
        data, is_pem = _key_bytes("Telnyx", public_key)
        try:
            key = load_pem_public_key(data) if is_pem else Ed25519PublicKey.from_public_bytes(data)
        except (ValueError, TypeError):
            raise ConfigurationError(
                "the Telnyx public key cannot be read; it is 32 bytes in base64"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigurationError("the Telnyx public key is not an Ed25519 key")
        self._key: Ed25519PublicKey = key

    def _check(self, signature: bytes, timestamp: str, body: bytes) -> None:
        self._key.verify(signature, timestamp.encode() + b"|" + body)


class SignedWebhooks:
    """What SendGrid's and Telnyx's webhook readers share: a timestamped signature and a clock.

    A subclass names its signature's class and reads a verified body with
    `_read`. Raises ConfigurationError for an unreadable key or a tolerance
    that is not positive.
    """

    signature: ClassVar[type[SendGridSignature | TelnyxSignature]]

    def __init__(
        self,
        *,
        public_key: str,
        tolerance: timedelta = timedelta(minutes=5),
        clock: Clock | None = None,
    ) -> None:
        self._signature = self.signature(public_key, tolerance=tolerance)
        self.clock: Clock = clock or SystemClock()

    def _read(
        self, body: bytes, headers: Mapping[str, str], parse: Callable[[bytes], list[DeliveryEvent]]
    ) -> list[DeliveryEvent]:
        """``parse(body)`` once the signature over ``body`` is verified at the clock's now."""
        self._signature.verify(body=body, headers=headers, now=self.clock.now())
        return parse(body)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tolerance={self._signature.tolerance!r})"
