"""The public API: what ``multichannel.__all__`` promises is there, sorted and documented."""

from __future__ import annotations

import ast
import importlib
import inspect
from typing import Any

import pytest

import multichannel
from multichannel import Adapter, Clock, Store

PUBLIC = [name for name in multichannel.__all__ if name != "__version__"]
PROTOCOLS = (Adapter, Clock, Store)


def _methods(cls: type) -> dict[str, Any]:
    """Public functions and properties defined on ``cls`` itself."""
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, property | classmethod))
    }


def _protocol_doc(cls: type, name: str) -> str | None:
    """The docstring of ``name`` on a protocol ``cls`` implements, if it implements one."""
    for protocol in PROTOCOLS:
        members = _methods(protocol)
        if cls is not protocol and members and all(hasattr(cls, item) for item in members):
            documented = members.get(name)
            if documented is not None:
                return inspect.getdoc(documented)
    return None


def test_every_public_name_is_importable() -> None:
    namespace: dict[str, Any] = {}
    exec("from multichannel import *", namespace)

    for name in multichannel.__all__:
        assert name in namespace, f"{name} is in __all__ but not importable"
        assert namespace[name] is getattr(multichannel, name)


def test_type_checkers_see_every_public_name_where_it_is_loaded_from() -> None:
    # The root imports its names on first use; type checkers read the TYPE_CHECKING
    # imports instead. Both must name the same modules, or mypy and runtime disagree.
    source = ast.parse(inspect.getsource(multichannel))
    for_checkers = {
        alias.asname or alias.name: node.module
        for block in source.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    at_run_time = {name: getattr(multichannel, name).__module__ for name in PUBLIC}

    assert set(for_checkers) == set(PUBLIC)
    for name, module in for_checkers.items():
        assert getattr(importlib.import_module(str(module)), name) is getattr(multichannel, name)
    assert all(module.startswith("multichannel") for module in at_run_time.values())


def test_all_is_sorted_without_duplicates() -> None:
    assert multichannel.__all__ == sorted(multichannel.__all__)
    assert len(set(multichannel.__all__)) == len(multichannel.__all__)


def test_the_version_is_a_string() -> None:
    assert isinstance(multichannel.__version__, str)
    assert multichannel.__version__


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_object_has_a_docstring(name: str) -> None:
    obj = getattr(multichannel, name)

    assert inspect.isclass(obj) or inspect.isfunction(obj), f"{name} is neither class nor function"
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    assert doc.splitlines()[0].strip(), f"{name}'s docstring does not open with a summary line"


@pytest.mark.parametrize(
    "name", [name for name in PUBLIC if inspect.isclass(getattr(multichannel, name))]
)
def test_every_public_method_is_documented(name: str) -> None:
    cls = getattr(multichannel, name)
    undocumented = [
        method
        for method, member in _methods(cls).items()
        if not inspect.getdoc(getattr(cls, method) if not isinstance(member, property) else member)
        and not _protocol_doc(cls, method)
    ]

    assert undocumented == [], f"{name} has undocumented public methods: {undocumented}"


def test_the_testing_module_exports_what_users_need() -> None:
    testing = importlib.import_module("multichannel.testing")

    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        obj = getattr(testing, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"multichannel.testing.{name} has no docstring"
    assert testing.Outbox is multichannel.Outbox
    assert testing.ManualClock is multichannel.ManualClock


@pytest.mark.parametrize(
    "name", [name for name in PUBLIC if inspect.isclass(getattr(multichannel, name))]
)
def test_public_classes_are_reexported_from_where_they_live(name: str) -> None:
    cls = getattr(multichannel, name)

    assert cls.__module__.startswith("multichannel.")
    assert getattr(importlib.import_module(cls.__module__), name) is cls
