"""An adapter that keeps what it is given: for tests, demos and dry runs."""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass

from multichannel.adapters.base import ANY_CHANNEL, BaseAdapter, Receipt, SendContext
from multichannel.contacts import ContactPoint
from multichannel.errors import DeliveryError
from multichannel.messages import Content

__all__ = ["Outbox", "SentMessage"]


@dataclass(frozen=True)
class SentMessage:
    """One message the outbox accepted."""

    channel: str
    address: str
    message: Content
    provider_id: str
    point: ContactPoint
    context: SendContext


@dataclass
class _Rejection:
    error: Exception | type[Exception]
    remaining: int | None


class Outbox(BaseAdapter):
    """Accepts every message on every channel and records it in ``sent``.

    Tell it to fail with `reject`. Use it in your own tests the way Django users
    use the locmem email backend, standing for a provider. With ``dry_run=True``
    it stands for a dry run instead: what a dispatcher whose adapters are all dry
    runs starts is marked `Dispatch.dry_run`, and a dispatcher with a real
    adapter never sends it. ``name`` (default ``outbox``) lets several outboxes
    stand for several providers. Thread-safe. Raises ConfigurationError for a
    bad ``name``.
    """

    name = "outbox"
    channel = ANY_CHANNEL
    blocking = False  # it answers from memory

    def __init__(self, *, name: str | None = None, dry_run: bool = False) -> None:
        super().__init__(name=name)
        # Not a dry run unless asked: tests often start dispatches through an
        # Outbox and carry them on through another adapter that stands for a
        # provider. The dispatcher reads it with getattr, so an adapter of yours
        # can declare itself a dry run the same way.
        self.dry_run = dry_run
        self.sent: list[SentMessage] = []
        self._rejections: dict[str, _Rejection] = {}
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()

    def reject(
        self,
        address: str,
        error: Exception | type[Exception],
        times: int | None = None,
    ) -> None:
        """Fail sends to ``address`` with ``error``: the next ``times`` sends, or all if None.

        ``error`` is usually a `DeliveryError`; a `ConfigurationError` or any
        other exception shows how the dispatcher treats a misconfigured or
        broken adapter. Raises ValueError if ``times`` is below 1.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 or None (always), not {times}")
        with self._lock:
            self._rejections[address] = _Rejection(error, times)

    def clear(self) -> None:
        """Forget what was sent and every rejection."""
        with self._lock:
            self.sent.clear()
            self._rejections.clear()

    def to(self, address: str) -> list[SentMessage]:
        """What was sent to ``address``, oldest first."""
        with self._lock:
            return [item for item in self.sent if item.address == address]

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        with self._lock:
            rejection = self._rejections.get(point.address)
            if rejection is not None:
                if rejection.remaining is not None:
                    rejection.remaining -= 1
                    if rejection.remaining == 0:
                        del self._rejections[point.address]
                error = rejection.error
                reason = f"outbox told to reject {point.address}"
                if isinstance(error, type) and issubclass(error, DeliveryError):
                    raise error(reason, provider=self.name)
                if isinstance(error, type):
                    raise error(reason)
                raise error
            # The random part keeps ids unique across processes sharing one store.
            provider_id = f"outbox-{self._run}-{next(self._ids)}"
            self.sent.append(
                SentMessage(point.channel, point.address, content, provider_id, point, ctx)
            )
        return Receipt(provider_id=provider_id)

    def __repr__(self) -> str:
        dry = ", dry_run=True" if self.dry_run else ""
        return f"Outbox(name={self.name!r}, sent={len(self.sent)}{dry})"
