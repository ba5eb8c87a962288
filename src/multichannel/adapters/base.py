"""The adapter protocol, a base class that derives one half from the other, and the registry.

An adapter makes exactly one attempt to send content to one point and either
returns a `Receipt` or raises an error from `multichannel.errors`. Retries and
fallback belong to the dispatcher.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from multichannel.contacts import NAME_PATTERN, ContactPoint
from multichannel.errors import ConfigurationError
from multichannel.messages import Content

if TYPE_CHECKING:
    # Only for annotations: importlib.metadata is imported where entry points are read.
    from importlib.metadata import EntryPoint

__all__ = [
    "ANY_CHANNEL",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "BaseAdapter",
    "Discovered",
    "Receipt",
    "Registry",
    "SendContext",
]

ANY_CHANNEL = "*"
ENTRY_POINT_GROUP = "multichannel.adapters"
_T = TypeVar("_T")


def _adapter_name(name: object, adapter: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigurationError(
            f"{adapter}: name {name!r} is not an adapter name; use lower-case letters, digits, "
            "'-', '_' or '.', starting with a letter (for example 'twilio-backup')"
        )
    return name


class Receipt(BaseModel):
    """A provider's acceptance of one message: its id for it and what it said."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_id: str | None = Field(description="the provider's id, used to match events later")
    status: str = Field(default="accepted", description="the provider's own word for the state")


class SendContext(BaseModel):
    """What an adapter may want to know beyond the content: which dispatch and which try."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dispatch_id: str
    contact_id: str
    try_number: int = Field(default=1, ge=1, description="1 for the first try on this point")
    message_key: str | None = None
    sensitive: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """Sends on one channel through one provider; one call is one attempt.

    ``channel`` is the channel served (``"*"`` serves every channel). Failure is
    raised: `TransientError`, `PermanentError`, `OptedOut`, `ProviderError`, or
    `ConfigurationError` for a setup problem.

    An adapter that calls out over a network should also have a ``timeout``
    attribute: the seconds one request may take (a float). It is optional,
    and not part of this protocol's checks, but the dispatcher counts it for
    every try when it checks that ``in_flight`` outlasts a send; an adapter
    without one is taken to answer at once.
    """

    # Read-only properties rather than plain attributes, so that an instance
    # attribute, a class attribute and BaseAdapter's name and channel all match.
    @property
    def name(self) -> str:
        """The adapter's name, unique among a dispatcher's adapters, e.g. ``twilio-sms``."""
        ...

    @property
    def channel(self) -> str:
        """The channel served, or ``"*"`` for every channel."""
        ...

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Send once, blocking."""
        ...

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Send once, without blocking the event loop."""
        ...


def _run_blocking(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to completion from sync code, even inside a running event loop."""
    import asyncio  # only adapters written async-first need it on the sync path
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class BaseAdapter:
    """Base for adapters: write ``send`` or ``asend`` and the other is derived.

    A sync ``send`` is run in a worker thread for ``asend`` (in the event loop
    itself when the adapter is not ``blocking``); an async ``asend``
    is run on its own event loop for ``send``. An adapter that keeps
    connections open releases them in `close` and `aclose`, also called on
    leaving ``with adapter:`` and ``async with adapter:``. Subclasses set ``channel`` and a
    default ``name`` as class attributes; ``name=`` gives one instance its own
    name, so that several of a class can be registered side by side. One whose
    sends never wait on I/O (it answers from memory, as `Outbox` does) sets
    ``blocking = False``, so that `Dispatcher.send_many` need not overlap its
    sends on threads. Raises
    TypeError at class creation if neither method is written, and
    ConfigurationError for a ``name`` that is not lower-case letters, digits,
    '-', '_' or '.', starting with a letter.
    """

    # An instance attribute whose class-level value is the default: a subclass
    # writing ``name = "acme"`` and an instance given ``name=`` both work.
    name: str = ""
    channel: ClassVar[str] = ""
    blocking: ClassVar[bool] = True

    def __init__(self, *, name: str | None = None) -> None:
        if name is not None:
            self.name = _adapter_name(name, type(self).__name__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.send is BaseAdapter.send and cls.asend is BaseAdapter.asend:
            raise TypeError(f"{cls.__name__} must define send() or asend()")

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return _run_blocking(self.asend(point, content, ctx))

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        if not self.blocking:
            return self.send(point, content, ctx)  # nothing to wait for: no thread needed
        import asyncio

        return await asyncio.to_thread(self.send, point, content, ctx)

    def close(self) -> None:
        """Release what the adapter keeps open (connections, threads); it reopens them if used.

        Does nothing unless a subclass keeps something open.
        """

    async def aclose(self) -> None:
        """`close`, and release what the running event loop's async sends keep open."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, channel={self.channel!r})"


@dataclass(frozen=True)
class Discovered:
    """An adapter published under the entry-point group, and whether it could be built.

    ``broken`` is True when the plugin itself failed (it would not import, or
    raised something other than ConfigurationError), as opposed to settings.
    """

    name: str
    target: str
    adapter: Adapter | None
    problem: str | None
    broken: bool = False


def _check(adapter: object) -> Adapter:
    missing = [attr for attr in ("name", "channel", "send", "asend") if not hasattr(adapter, attr)]
    if missing:
        raise ConfigurationError(f"{adapter!r} is not an adapter: it has no {', '.join(missing)}")
    if not isinstance(getattr(adapter, "name", None), str) or not adapter.name:  # type: ignore[attr-defined]
        raise ConfigurationError(f"{adapter!r} has no name")
    if not isinstance(getattr(adapter, "channel", None), str) or not adapter.channel:  # type: ignore[attr-defined]
        raise ConfigurationError(f"{adapter!r} names no channel")
    return adapter  # type: ignore[return-value]


class Registry:
    """The adapters a dispatcher may use, in priority order within each channel.

    Raises ConfigurationError for an object that is not an adapter or for two
    adapters with the same name (give one its own with ``name=``).
    """

    def __init__(self, adapters: Iterable[Adapter] = ()) -> None:
        self._adapters: list[Adapter] = []
        for adapter in adapters:
            self.add(adapter)

    def add(self, adapter: Adapter) -> None:
        """Register ``adapter`` after those already registered for its channel."""
        checked = _check(adapter)
        if any(known.name == checked.name for known in self._adapters):
            raise ConfigurationError(
                f"two adapters are named {checked.name!r}; names must differ: give each its "
                f"own with name=, for example {type(checked).__name__}(name="
                f"{checked.name + '-backup'!r}, ...)"
            )
        self._adapters.append(checked)

    def for_channel(self, channel: str) -> tuple[Adapter, ...]:
        """Adapters for ``channel`` in priority order; those serving every channel come last."""
        exact = [adapter for adapter in self._adapters if adapter.channel == channel]
        wildcard = [adapter for adapter in self._adapters if adapter.channel == ANY_CHANNEL]
        return (*exact, *wildcard)

    def serves(self, channel: str) -> bool:
        """True when some adapter can send on ``channel``."""
        return bool(self.for_channel(channel))

    @property
    def sends_for_real(self) -> bool:
        """True when some adapter is not a dry run (as ``Outbox(dry_run=True)`` is)."""
        return any(not getattr(adapter, "dry_run", False) for adapter in self._adapters)

    @property
    def blocking(self) -> bool:
        """True unless every adapter declares ``blocking = False`` (never waits on I/O)."""
        return any(getattr(adapter, "blocking", True) for adapter in self._adapters)

    @property
    def dry_run(self) -> bool:
        """True when there are adapters and every one is a dry run: what they start is marked."""
        return bool(self._adapters) and not self.sends_for_real

    @property
    def channels(self) -> frozenset[str]:
        """The channels named by registered adapters (``"*"`` when one serves all)."""
        return frozenset(adapter.channel for adapter in self._adapters)

    def __iter__(self) -> Iterator[Adapter]:
        return iter(self._adapters)

    def __len__(self) -> int:
        return len(self._adapters)

    def __repr__(self) -> str:
        return f"Registry({[adapter.name for adapter in self._adapters]!r})"

    @staticmethod
    def discover(group: str = ENTRY_POINT_GROUP) -> list[Discovered]:
        """Every adapter published under ``group``, each built by calling its factory.

        A factory that raises ConfigurationError (a missing setting) is reported
        with the problem instead of an adapter; nothing is raised.
        """
        # Imported here, not at the top: only discovery needs it, and importing
        # it would cost every `import multichannel` tens of milliseconds.
        from importlib.metadata import entry_points

        found = []
        for point in sorted(entry_points(group=group), key=lambda item: item.name):
            found.append(_build(point))
        return found

    @classmethod
    def from_entry_points(cls, group: str = ENTRY_POINT_GROUP) -> Registry:
        """A registry of every published adapter whose settings are present."""
        return cls(item.adapter for item in cls.discover(group) if item.adapter is not None)


def _build(point: EntryPoint) -> Discovered:
    try:
        factory = point.load()
        adapter = _check(factory())
    except ConfigurationError as err:
        return Discovered(point.name, point.value, None, str(err))
    except Exception as err:  # a broken plugin must not stop discovery of the others
        problem = f"{type(err).__name__}: {err}"
        return Discovered(point.name, point.value, None, problem, broken=True)
    return Discovered(point.name, point.value, adapter, None)
