"""The adapter contract, run on the Outbox and on adapters a user writes on BaseAdapter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from multichannel import (
    Adapter,
    BaseAdapter,
    Contact,
    ContactPoint,
    Content,
    DeliveryError,
    Dispatcher,
    ManualClock,
    Message,
    OptedOut,
    Outbox,
    PermanentError,
    Preferences,
    ProviderError,
    Receipt,
    SendContext,
    Status,
    TransientError,
)
from multichannel.testing import AdapterContract, FailureKind

FAILURES: dict[FailureKind, DeliveryError] = {
    "transient": TransientError("rate limited", retry_after=1),
    "permanent": PermanentError("no such number"),
    "opted_out": OptedOut("STOP received"),
    "provider": ProviderError("account suspended"),
}
PAGER_TOKEN = "pgr-secret-7f3a9c"


class TestOutboxContract(AdapterContract):
    """The Outbox owes the dispatcher what every adapter does."""

    outbox: Outbox

    def make_adapter(self) -> Adapter:
        self.outbox = Outbox()
        return self.outbox

    def make_point(self) -> ContactPoint:
        return ContactPoint(channel="sms", address="+17345550100")

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        self.outbox.reject(point.address, FAILURES[kind], times=1)


class AsyncPager(BaseAdapter):
    """A user's adapter written with only ``asend``; ``send`` comes from BaseAdapter."""

    name = "pager"
    channel = "pager"

    def __init__(self, token: str) -> None:
        self._token = token
        self.failures: dict[str, DeliveryError] = {}
        self.pages: list[tuple[str, str]] = []

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        failure = self.failures.pop(point.address, None)
        if failure is not None:
            raise failure
        self.pages.append((point.address, content.body))
        return Receipt(provider_id=f"page-{len(self.pages)}")


class SyncPager(BaseAdapter):
    """A user's adapter written with only ``send``; ``asend`` comes from BaseAdapter."""

    name = "sync-pager"
    channel = "pager"

    def __init__(self) -> None:
        self.pages: list[str] = []

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        if point.address == "refused":
            raise PermanentError("pager refused", provider=self.name)
        self.pages.append(point.address)
        return Receipt(provider_id=f"sync-page-{len(self.pages)}")


class TestAsyncPagerContract(AdapterContract):
    """An adapter with only ``asend`` passes the same contract through the derived ``send``."""

    pager: AsyncPager

    def make_adapter(self) -> Adapter:
        self.pager = AsyncPager(PAGER_TOKEN)
        return self.pager

    def make_point(self) -> ContactPoint:
        return ContactPoint(channel="pager", address="pager-1138")

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        self.pager.failures[point.address] = FAILURES[kind]

    def secrets(self) -> Sequence[str]:
        return (PAGER_TOKEN,)


POINT = ContactPoint(channel="pager", address="pager-1138")
CTX = SendContext(dispatch_id="d-1", contact_id="bob")
PAGE = Content(body="Server room is too hot")
BOB = Contact(
    id="bob",
    timezone="Europe/Berlin",
    points=[POINT],
    preferences=Preferences(channels=["pager"]),
)


class TestBaseAdapter:
    def test_an_async_only_adapter_sends_from_sync_code(self) -> None:
        pager = AsyncPager(PAGER_TOKEN)

        receipt = pager.send(POINT, PAGE, CTX)

        assert receipt.provider_id == "page-1"
        assert pager.pages == [("pager-1138", "Server room is too hot")]

    async def test_an_async_only_adapter_sends_from_sync_code_inside_a_running_loop(
        self,
    ) -> None:
        pager = AsyncPager(PAGER_TOKEN)

        receipt = pager.send(POINT, PAGE, CTX)

        assert receipt.provider_id == "page-1"

    def test_errors_cross_the_derived_send_unchanged(self) -> None:
        pager = AsyncPager(PAGER_TOKEN)
        pager.failures[POINT.address] = OptedOut("STOP")

        with pytest.raises(OptedOut, match="STOP"):
            pager.send(POINT, PAGE, CTX)

    async def test_a_sync_only_adapter_sends_from_async_code(self) -> None:
        pager = SyncPager()

        receipt = await pager.asend(POINT, PAGE, CTX)

        assert receipt.provider_id == "sync-page-1"
        with pytest.raises(PermanentError, match="pager refused"):
            await pager.asend(POINT.model_copy(update={"address": "refused"}), PAGE, CTX)

    def test_the_dispatcher_sends_through_an_async_only_adapter(self, clock: ManualClock) -> None:
        pager = AsyncPager(PAGER_TOKEN)

        dispatch = Dispatcher(adapters=[pager], clock=clock).send(BOB, Message(body="Hot"))

        assert dispatch.status is Status.ACCEPTED
        assert pager.pages == [("pager-1138", "Hot")]

    async def test_the_dispatcher_sends_sync_inside_a_running_loop(
        self, clock: ManualClock
    ) -> None:
        pager = AsyncPager(PAGER_TOKEN)

        dispatch = Dispatcher(adapters=[pager], clock=clock).send(BOB, Message(body="Hot"))

        assert dispatch.status is Status.ACCEPTED

    async def test_the_dispatcher_asends_through_a_sync_only_adapter(
        self, clock: ManualClock
    ) -> None:
        pager = SyncPager()

        dispatch = await Dispatcher(adapters=[pager], clock=clock).asend(BOB, Message(body="Hot"))

        assert dispatch.status is Status.ACCEPTED
        assert pager.pages == ["pager-1138"]

    def test_a_class_writing_neither_half_is_a_type_error(self) -> None:
        with pytest.raises(TypeError, match="must define send\\(\\) or asend\\(\\)"):

            class Silent(BaseAdapter):
                name = "silent"
                channel = "sms"

    def test_the_repr_shows_name_and_channel_but_no_secret(self) -> None:
        pager = AsyncPager(PAGER_TOKEN)

        assert repr(pager) == "AsyncPager(name='pager', channel='pager')"
        assert PAGER_TOKEN not in repr(pager)
