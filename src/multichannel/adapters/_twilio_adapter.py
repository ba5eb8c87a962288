"""The send pipeline both Twilio adapters share: build the fields, create once, read the SID."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from multichannel._redact import mask_address
from multichannel.adapters._twilio import TwilioConnection, logger, translated_errors
from multichannel.adapters.base import BaseAdapter, Receipt, SendContext
from multichannel.contacts import ContactPoint
from multichannel.messages import Content

__all__ = ["TwilioAdapter"]


class TwilioAdapter(BaseAdapter):
    """Base of the Twilio adapters: one REST resource created per send, sync or async.

    Subclasses name the ``resource`` (``"messages"``, ``"calls"``) and write
    ``_fields``, which checks the content and raises before any request. The
    connections are kept for every send; `close` and `aclose` release them.
    """

    resource: ClassVar[str] = ""
    _twilio: TwilioConnection

    @property
    def timeout(self) -> float:
        """Seconds one request may take before it is abandoned; the dispatcher counts it per try."""
        return self._twilio.timeout

    @property
    def max_connections(self) -> int:
        """The most connections to Twilio kept open, and open at once for async sends."""
        return self._twilio.max_connections

    def _fields(self, point: ContactPoint, content: Content) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        fields = self._fields(point, content)
        with translated_errors(self.name):
            created = getattr(self._twilio.client, self.resource).create(**fields)
        return self._receipt(point, created)

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Send once on the SDK's async path: one aiohttp session, reused, for the running loop."""
        fields = self._fields(point, content)
        with translated_errors(self.name):
            resource = getattr(self._twilio.async_client, self.resource)
            created = await resource.create_async(**fields)
        return self._receipt(point, created)

    def close(self) -> None:
        """Close the connections kept for sync sends; later sends open new ones."""
        self._twilio.close()

    async def aclose(self) -> None:
        """Close the running event loop's aiohttp session and the sync connections."""
        await self._twilio.aclose()

    def _receipt(self, point: ContactPoint, created: Any) -> Receipt:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s: Twilio accepted the %s for %s as %s",
                self.name,
                self.resource,
                mask_address(point.address),
                created.sid,
            )
        return Receipt(provider_id=created.sid, status=str(created.status or "queued"))
