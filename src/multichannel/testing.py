"""What you need in your own tests: an outbox adapter, a hand-moved clock, the adapter contract.

`AdapterContract` is a suite of tests every adapter must pass, built-in or your
own. Subclass it in a test module under a name pytest collects (``TestMySMS``)
and fill in the hooks; the suite then checks your adapter through the same
protocol the dispatcher uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from multichannel.adapters.base import Adapter, Receipt, SendContext
from multichannel.adapters.outbox import Outbox, SentMessage
from multichannel.clock import ManualClock
from multichannel.contacts import ContactPoint
from multichannel.errors import (
    DeliveryError,
    OptedOut,
    PermanentError,
    ProviderError,
    TransientError,
)
from multichannel.messages import Content

__all__ = ["AdapterContract", "FailureKind", "ManualClock", "Outbox", "SentMessage"]

FailureKind = Literal["transient", "permanent", "opted_out", "provider"]
_EXPECTED: dict[FailureKind, type[DeliveryError]] = {
    "transient": TransientError,
    "permanent": PermanentError,
    "opted_out": OptedOut,
    "provider": ProviderError,
}

_FAILURE_TESTS: dict[FailureKind, str] = {
    "transient": "test_transient_failure_is_a_transient_error",
    "permanent": "test_permanent_failure_is_a_permanent_error",
    "opted_out": "test_opt_out_is_opted_out",
    "provider": "test_provider_failure_is_a_provider_error",
}


class AdapterContract:
    """The behaviour every adapter owes the dispatcher, as tests.

    Hooks to write: `make_adapter` and `make_point`; `arrange_accept` and
    `arrange_failure` to make the provider (or your stand-in for it) answer as
    asked; `secrets` for values that must never leak. List in ``failures`` the
    kinds of failure your provider can report; tests for the others are not
    collected (a subclass may still write its own test under the same name).
    """

    failures: ClassVar[frozenset[FailureKind]] = frozenset(
        {"transient", "permanent", "opted_out", "provider"}
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind, test_name in _FAILURE_TESTS.items():
            if kind not in cls.failures and test_name not in cls.__dict__:
                # pytest collects only callables, so this hides the inherited test.
                setattr(cls, test_name, None)

    def make_adapter(self) -> Adapter:
        """The adapter under test."""
        raise NotImplementedError

    def make_point(self) -> ContactPoint:
        """A point on the adapter's channel to send to."""
        raise NotImplementedError

    def make_content(self) -> Content:
        """The content to send; override for a channel that needs more."""
        return Content(body="Contract test message", subject="Contract test")

    def make_context(self) -> SendContext:
        """The send context passed with every send."""
        return SendContext(dispatch_id="contract-dispatch", contact_id="contract-contact")

    def arrange_accept(self, point: ContactPoint) -> None:
        """Make the next send to ``point`` succeed."""

    def arrange_failure(self, point: ContactPoint, kind: FailureKind) -> None:
        """Make the next send to ``point`` fail as ``kind``."""
        raise NotImplementedError

    def secrets(self) -> Sequence[str]:
        """Values (tokens, passwords) that must not appear in reprs or errors."""
        return ()

    def _send(self, adapter: Adapter, point: ContactPoint) -> Receipt:
        return adapter.send(point, self.make_content(), self.make_context())

    def _failure(self, kind: FailureKind) -> DeliveryError:
        adapter, point = self.make_adapter(), self.make_point()
        self.arrange_failure(point, kind)
        raised: DeliveryError | None = None
        try:
            self._send(adapter, point)
        except DeliveryError as error:
            raised = error
        assert raised is not None, f"a {kind} failure was arranged but send() returned"
        assert isinstance(raised, _EXPECTED[kind]), f"{kind} raised {type(raised).__name__}"
        return raised

    def test_has_a_name_and_a_channel(self) -> None:
        adapter = self.make_adapter()
        assert isinstance(adapter, Adapter)
        assert isinstance(adapter.name, str)
        assert adapter.name
        assert isinstance(adapter.channel, str)
        assert adapter.channel
        assert adapter.channel in ("*", self.make_point().channel)

    def test_send_returns_a_receipt(self) -> None:
        adapter, point = self.make_adapter(), self.make_point()
        self.arrange_accept(point)
        receipt = self._send(adapter, point)
        assert isinstance(receipt, Receipt)
        assert receipt.provider_id, "a receipt must carry the provider's id to match events"

    def test_asend_returns_a_receipt(self) -> None:
        adapter, point = self.make_adapter(), self.make_point()
        self.arrange_accept(point)
        coroutine = adapter.asend(point, self.make_content(), self.make_context())
        receipt = asyncio.run(coroutine)
        assert isinstance(receipt, Receipt)
        assert receipt.provider_id

    def test_transient_failure_is_a_transient_error(self) -> None:
        self._failure("transient")

    def test_permanent_failure_is_a_permanent_error(self) -> None:
        self._failure("permanent")

    def test_opt_out_is_opted_out(self) -> None:
        self._failure("opted_out")

    def test_provider_failure_is_a_provider_error(self) -> None:
        error = self._failure("provider")
        blamed = isinstance(error, PermanentError)
        assert not blamed, "a provider failure must not blame the address"

    def test_secrets_stay_out_of_reprs_and_errors(self) -> None:
        adapter = self.make_adapter()
        shown = [repr(adapter), str(adapter)]
        for kind in sorted(self.failures):
            adapter, point = self.make_adapter(), self.make_point()
            self.arrange_failure(point, kind)
            try:
                self._send(adapter, point)
            except DeliveryError as error:
                shown += [str(error), repr(error), repr(error.__cause__)]
        for secret in self.secrets():
            assert secret, "an empty secret cannot be checked"
            for text in shown:
                assert secret not in text, "a secret appears in a repr or an error"
