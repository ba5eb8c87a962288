"""What every HTTP provider's answer is read with: HTTP-dates and the Retry-After hint.

One reading for every adapter:

- ``Retry-After: 120`` is a number of seconds. ASCII digits, optionally with a
  decimal fraction (``1.5``): RFC 9110 allows whole seconds only, but some
  proxies send fractions and reading them costs nothing. A sign, an exponent,
  ``inf`` or any other spelling is not a number.
- ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`` is an HTTP-date in any of the
  three forms RFC 9110 names (IMF-fixdate, RFC 850, asctime). A date without a
  zone, or with ``-0000``, is GMT, as the RFC says every HTTP-date is; an
  explicit offset is honoured. Two-digit RFC 850 years are read as the
  standard library reads them: 69-99 as 19xx, 00-68 as 20xx.
- A date is measured from the answer's own ``Date`` header when it has a
  readable one, so a skewed local clock does not stretch or shrink the wait;
  otherwise from ``now``. A date already past gives 0.
- The wait is capped at `LONGEST_WAIT`; anything longer means the same to the
  dispatcher (longer than any retry policy waits) and still fits a timedelta.
- Anything unreadable gives None: no hint, so the dispatcher's own backoff applies.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = ["LONGEST_WAIT", "bounded_wait", "http_date", "retry_after"]

LONGEST_WAIT: Final = 366 * 24 * 3600.0
"""The longest wait a hint is read as, in seconds: a year."""

_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def http_date(text: str | None) -> datetime | None:
    """``text`` as an aware datetime, a zone-less date read as GMT; None when unreadable."""
    if not text or not text.strip():
        return None
    try:
        moment = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def bounded_wait(seconds: float) -> float:
    """``seconds`` within 0 and `LONGEST_WAIT`."""
    return min(max(seconds, 0.0), LONGEST_WAIT)


def retry_after(value: str | None, *, date: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After ``value``, None when there is no readable hint.

    ``date`` is the answer's Date header, ``now`` the local time (aware) used
    when that header is missing or unreadable.
    """
    hint = (value or "").strip()
    if not hint:
        return None
    if _SECONDS.fullmatch(hint):
        return bounded_wait(float(hint))
    until = http_date(hint)
    if until is None:
        return None
    sent = http_date(date) or now
    return bounded_wait((until - sent).total_seconds())
