"""The row every provider's error table is made of.

Each provider module keeps one table, keyed by what that provider answers
(Twilio's error code, an HTTP status and the field blamed, an SMTP exception
and reply class), whose values are `ErrorRule` rows, and one function that
reads a failure through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from multichannel.errors import DeliveryError, TransientError

__all__ = ["ErrorRule"]


@dataclass(frozen=True)
class ErrorRule:
    """How one provider answer is read: the library error to raise and what it means, in words."""

    kind: type[DeliveryError]
    meaning: str

    def error(
        self,
        message: str,
        *,
        provider: str,
        code: str | int | None = None,
        status: int | None = None,
        retry_after: timedelta | float | None = None,
    ) -> DeliveryError:
        """The error this row names; ``retry_after`` is kept only by a `TransientError`."""
        if issubclass(self.kind, TransientError):
            return self.kind(
                message, retry_after=retry_after, provider=provider, code=code, status=status
            )
        return self.kind(message, provider=provider, code=code, status=status)
