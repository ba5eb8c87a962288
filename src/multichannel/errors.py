"""The library's exceptions.

A failed send is an exception, never a return code. The tree::

    MultichannelError
    ├── DeliveryError            a send did not go through
    │   ├── TransientError       may work if tried again (carries retry_after)
    │   ├── PermanentError       will never work with this address
    │   │   └── OptedOut         the recipient said stop; the point is marked opted out
    │   └── ProviderError        the provider itself failed (credentials, suspension);
    │                            the address is not to blame
    ├── ConfigurationError       the library is set up wrongly; never swallowed by fallback
    ├── IdempotencyConflict      a message key was reused for a different message
    ├── StaleDispatch            a save lost a race: the dispatch changed since it was read
    └── UnknownDispatch          an id or event matches no dispatch

`ConfigurationError` stands outside `DeliveryError` on purpose: the dispatcher
falls back on delivery errors and re-raises configuration errors, so a missing
setting is reported instead of being mistaken for an unreachable person.
"""

from __future__ import annotations

from datetime import timedelta

__all__ = [
    "ConfigurationError",
    "DeliveryError",
    "IdempotencyConflict",
    "MultichannelError",
    "OptedOut",
    "PermanentError",
    "ProviderError",
    "StaleDispatch",
    "TransientError",
    "UnknownDispatch",
]


class MultichannelError(Exception):
    """Base of every exception the library raises on purpose."""


class DeliveryError(MultichannelError):
    """A send did not go through.

    ``provider`` names the adapter, ``code`` is the provider's own error code and
    ``status`` the HTTP or SMTP status, when there is one. None of them ever
    holds a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        code: str | int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = None if code is None else str(code)
        self.status = status

    def __str__(self) -> str:
        context = [
            part
            for part in (
                self.provider,
                None if self.code is None else f"code {self.code}",
                None if self.status is None else f"status {self.status}",
            )
            if part
        ]
        return f"{self.message} ({', '.join(context)})" if context else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class TransientError(DeliveryError):
    """A failure that may not happen again: rate limits, timeouts, 5xx answers.

    ``retry_after`` is the provider's hint of how long to wait, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: timedelta | float | None = None,
        provider: str | None = None,
        code: str | int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code, status=status)
        if isinstance(retry_after, int | float):
            retry_after = timedelta(seconds=retry_after)
        if retry_after is not None and retry_after < timedelta(0):
            raise ValueError("retry_after cannot be negative")
        self.retry_after: timedelta | None = retry_after


class PermanentError(DeliveryError):
    """A failure that will repeat with this address: invalid, unreachable, refused."""


class OptedOut(PermanentError):
    """The recipient told the provider to stop; the point is marked opted out."""


class ProviderError(DeliveryError):
    """The provider failed as a whole (bad credentials, suspended account, outage).

    The dispatcher tries the next provider of the same channel and does not
    blame the contact's address.
    """


class ConfigurationError(MultichannelError):
    """The library or an adapter is set up wrongly: a missing setting, a bad value."""


class IdempotencyConflict(MultichannelError):
    """A message key was used again, for the same contact, with a different message."""


class StaleDispatch(MultichannelError):
    """A store refused a save: someone else saved the dispatch since this copy was read.

    The dispatcher reads the dispatch again and re-applies its change; a store
    of your own raises it when the revision it holds differs from the copy's.
    """


class UnknownDispatch(MultichannelError, LookupError):
    """No dispatch matches the id, provider id or event given."""
