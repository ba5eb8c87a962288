"""``import multichannel`` stays light: heavy dependencies are imported where they are used.

Each check runs in a fresh interpreter, where ``sys.modules`` shows exactly what
an import pulled in. How fast the import is belongs to the benchmark
(``bench/import_time.py``), never to a test.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import textwrap
from types import ModuleType

import pytest

import multichannel
import multichannel.store

# Never imported by `import multichannel`: the store's database layer, the
# command line, the web server, provider SDKs and their HTTP stacks, the
# settings loader, and the address checkers (loaded on the first address checked).
HEAVY = (
    "aiosmtpd",
    "cryptography",
    "email_validator",
    "phonenumbers",
    "pydantic_settings",
    "requests",
    "rich",
    "sendgrid",
    "sqlalchemy",
    "starlette",
    "tenacity",
    "twilio",
    "typer",
    "uvicorn",
    "yaml",
)
# The names whose import is deferred, and where they are defined.
LAZY = {"SQLStore": "multichannel.store.sql"}


def run(script: str) -> str:
    """Run ``script`` in a fresh interpreter; its stdout, or the test fails with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def loaded_by(statement: str) -> list[str]:
    """Every module in ``sys.modules`` after ``statement`` runs in a fresh interpreter."""
    found: list[str] = json.loads(
        run(
            f"""
            import json, sys
            {statement}
            print(json.dumps(sorted(sys.modules)))
            """
        )
    )
    return found


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY]


@pytest.mark.parametrize(
    "statement",
    [
        "import multichannel",
        "from multichannel import Contact, Dispatcher, Message, Worker",
        "from multichannel.store import MemoryStore, Store",
        "import multichannel.webhooks",
    ],
)
def test_the_import_loads_no_heavy_dependency(statement: str) -> None:
    assert heavy(loaded_by(statement)) == []


def test_the_package_alone_loads_none_of_its_modules_until_a_name_is_used() -> None:
    loaded = loaded_by("import multichannel")
    assert [name for name in loaded if name.startswith("multichannel.")] == []
    assert "pydantic" not in loaded


def test_a_name_used_loads_what_it_needs_and_no_more() -> None:
    loaded = loaded_by("from multichannel import Window")
    assert "multichannel.windows" in loaded
    assert "multichannel.dispatcher" not in loaded
    assert "multichannel.store" not in loaded


def test_a_program_that_never_awaits_loads_no_event_loop_machinery() -> None:
    # asyncio and thread pools are imported by the code that awaits or batches.
    loaded = loaded_by("import multichannel")
    assert "asyncio" not in loaded
    assert "concurrent.futures" not in loaded


def test_the_sql_store_module_is_loaded_only_when_asked_for() -> None:
    assert "multichannel.store.sql" not in loaded_by("import multichannel")
    assert "sqlalchemy" in loaded_by("from multichannel import SQLStore")
    # SQLStore is in __all__, so a star import asks for it too.
    assert "sqlalchemy" in loaded_by("from multichannel import *")


@pytest.mark.parametrize("statement", ["import multichannel", "import multichannel.adapters"])
def test_no_module_of_the_package_imports_importlib_metadata_when_imported(
    statement: str,
) -> None:
    # pydantic's plugin loader imports importlib.metadata as the first model is
    # built, so its presence in sys.modules proves nothing; who asked for it does.
    askers = json.loads(
        run(
            """
            import builtins, json
            askers = []
            real_import = builtins.__import__

            def spy(name, globals=None, locals=None, fromlist=(), level=0):
                wanted = name == "importlib.metadata" or (
                    name == "importlib" and "metadata" in (fromlist or ())
                )
                if wanted:
                    askers.append((globals or {}).get("__name__", "?"))
                return real_import(name, globals, locals, fromlist, level)

            builtins.__import__ = spy
            {statement}
            print(json.dumps(askers))
            """.replace("{statement}", statement)
        )
    )

    assert [name for name in askers if name.startswith("multichannel")] == []


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    said = run(
        """
        import multichannel
        from multichannel import SQLStore, __version__
        from multichannel.store.sql import SQLStore as defined

        for name in multichannel.__all__:
            assert getattr(multichannel, name) is not None, name
        namespace = {}
        exec("from multichannel import *", namespace)
        assert sorted(set(namespace) - {"__builtins__"}) == sorted(multichannel.__all__)
        assert SQLStore is defined is multichannel.store.SQLStore
        print(__version__)
        """
    )

    assert said.strip() == importlib.metadata.version("multichannel")


@pytest.mark.parametrize(("name", "module"), sorted(LAZY.items()))
def test_a_lazy_name_is_the_object_where_it_is_defined(name: str, module: str) -> None:
    defined = getattr(importlib.import_module(module), name)

    assert getattr(multichannel, name) is defined
    assert getattr(multichannel.store, name) is defined


def test_the_version_is_the_installed_distributions() -> None:
    assert multichannel.__version__ == importlib.metadata.version("multichannel")


@pytest.mark.parametrize("package", [multichannel, multichannel.store])
def test_dir_lists_every_public_name(package: ModuleType) -> None:
    names = dir(package)

    assert set(package.__all__) <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("package", [multichannel, multichannel.store])
def test_an_unknown_attribute_is_an_attribute_error(package: ModuleType) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'SqlStore'"):
        package.SqlStore  # noqa: B018
    assert not hasattr(package, "SqlStore")
