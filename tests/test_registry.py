"""The Registry: adapters in priority order, checked on entry, and discovered from entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from multichannel import (
    ConfigurationError,
    ContactPoint,
    Content,
    Dispatcher,
    Outbox,
    Receipt,
    Registry,
    SendContext,
)

GROUP = "multichannel.test_adapters"
PLUGIN_MODULE = "multichannel_fake_plugins"


class Named:
    """A minimal adapter: a name, a channel and the two send methods."""

    def __init__(self, name: str, channel: str) -> None:
        self.name = name
        self.channel = channel

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return Receipt(provider_id=f"{self.name}-1")

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        return self.send(point, content, ctx)


def test_adapters_keep_their_order_within_a_channel_and_wildcards_come_last() -> None:
    first_sms, mail, outbox, second_sms = (
        Named("sms-a", "sms"),
        Named("mail", "email"),
        Outbox(),
        Named("sms-b", "sms"),
    )

    registry = Registry([first_sms, mail, outbox, second_sms])

    assert registry.for_channel("sms") == (first_sms, second_sms, outbox)
    assert registry.for_channel("email") == (mail, outbox)
    assert registry.for_channel("fax") == (outbox,)
    assert registry.channels == frozenset({"sms", "email", "*"})
    assert list(registry) == [first_sms, mail, outbox, second_sms]
    assert len(registry) == 4
    assert repr(registry) == "Registry(['sms-a', 'mail', 'outbox', 'sms-b'])"


def test_serves_says_whether_a_channel_has_an_adapter() -> None:
    registry = Registry([Named("mail", "email")])

    assert registry.serves("email")
    assert not registry.serves("sms")


def test_add_appends_after_the_adapters_already_there() -> None:
    registry = Registry([Named("sms-a", "sms")])
    late = Named("sms-b", "sms")

    registry.add(late)

    assert registry.for_channel("sms")[-1] is late


def test_two_adapters_with_one_name_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="two adapters are named 'sms-a'"):
        Registry([Named("sms-a", "sms"), Named("sms-a", "voice")])


def test_something_that_is_not_an_adapter_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="is not an adapter: it has no name, channel"):
        Registry(["twilio"])  # type: ignore[list-item]


def test_an_adapter_without_a_name_or_channel_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="has no name"):
        Registry([Named("", "sms")])
    with pytest.raises(ConfigurationError, match="names no channel"):
        Registry([Named("sms-a", "")])


def test_a_dispatcher_takes_a_registry_as_it_is() -> None:
    registry = Registry([Outbox()])

    assert Dispatcher(adapters=registry).registry is registry


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake installed distribution publishing five factories under the test group."""
    (tmp_path / f"{PLUGIN_MODULE}.py").write_text(
        textwrap.dedent(
            """
            from multichannel import ConfigurationError, Outbox


            def make_outbox():
                return Outbox()


            def make_unconfigured():
                raise ConfigurationError("FAKE_TOKEN is not set")


            def make_broken():
                raise RuntimeError("the plugin fell over")


            def make_nothing():
                return 42
            """
        )
    )
    dist_info = tmp_path / "multichannel_fake_plugins-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: multichannel-fake-plugins\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [{GROUP}]
            good = {PLUGIN_MODULE}:make_outbox
            unconfigured = {PLUGIN_MODULE}:make_unconfigured
            broken = {PLUGIN_MODULE}:make_broken
            not-an-adapter = {PLUGIN_MODULE}:make_nothing
            absent = {PLUGIN_MODULE}:make_missing
            """
        )
    )
    monkeypatch.delitem(sys.modules, PLUGIN_MODULE, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.usefixtures("plugins")
def test_discover_builds_what_it_can_and_reports_the_rest() -> None:
    found = {item.name: item for item in Registry.discover(group=GROUP)}

    assert sorted(found) == ["absent", "broken", "good", "not-an-adapter", "unconfigured"]
    good = found["good"]
    assert isinstance(good.adapter, Outbox)
    assert good.problem is None
    assert good.target == f"{PLUGIN_MODULE}:make_outbox"
    assert found["unconfigured"].adapter is None
    assert found["unconfigured"].problem == "FAKE_TOKEN is not set"
    assert found["broken"].adapter is None
    assert found["broken"].problem == "RuntimeError: the plugin fell over"
    assert found["not-an-adapter"].problem is not None
    assert "is not an adapter" in found["not-an-adapter"].problem
    assert found["absent"].problem is not None
    assert found["absent"].problem.startswith("AttributeError")


@pytest.mark.usefixtures("plugins")
def test_discover_lists_entry_points_by_name() -> None:
    names = [item.name for item in Registry.discover(group=GROUP)]

    assert names == sorted(names)


@pytest.mark.usefixtures("plugins")
def test_from_entry_points_registers_only_the_adapters_that_could_be_built() -> None:
    registry = Registry.from_entry_points(group=GROUP)

    assert [adapter.name for adapter in registry] == ["outbox"]


def test_an_empty_group_discovers_nothing() -> None:
    assert Registry.discover(group="multichannel.nothing_published_here") == []
