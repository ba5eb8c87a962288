"""What the command's modules share: one-line errors, common options, stores and adapters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from multichannel import ConfigurationError, FallbackStrategy, Outbox, Registry, SQLStore
from multichannel._files import InputError, parse_duration
from multichannel.demo import as_adapter

__all__ = [
    "DEFAULT_STORE",
    "STORE_ENV",
    "USAGE_ERROR",
    "DepthOpt",
    "JsonOpt",
    "OutboxOpt",
    "StoreOpt",
    "ZoneOpt",
    "build_registry",
    "build_strategy",
    "duration",
    "existing_store",
    "fail",
    "open_store",
    "shown_url",
    "user_errors",
]

USAGE_ERROR = 2
STORE_ENV = "MULTICHANNEL_STORE"
DEFAULT_STORE = "sqlite:///multichannel.db"

DepthOpt = Annotated[
    str,
    typer.Option("--depth", metavar="N|all", help="How many ranked choices to walk, or 'all'."),
]
ZoneOpt = Annotated[
    str,
    typer.Option(
        "--default-timezone",
        metavar="ZONE",
        help="IANA zone for contacts with no time zone and no phone number.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OutboxOpt = Annotated[
    bool,
    typer.Option("--outbox", help="Dry run: send through an in-memory outbox; nothing leaves."),
]
StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        metavar="URL",
        envvar=STORE_ENV,
        help="Database URL: sqlite:///PATH (embedded) or postgresql+psycopg://USER@HOST/DB.",
    ),
]

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with status 2."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(USAGE_ERROR)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a problem with what the user gave into one line on stderr and exit status 2."""
    try:
        yield
    except InputError as err:
        fail(str(err))
    except ConfigurationError as err:
        fail(str(err))
    except SQLAlchemyError as err:
        fail(f"the store failed: {_first_line(err)}")


def _first_line(err: BaseException) -> str:
    # A driver error is wrapped by SQLAlchemy with the SQL and a link; the driver's own
    # first line is the part that says what went wrong.
    cause = getattr(err, "orig", None) or err
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def build_strategy(depth: str, default_timezone: str) -> FallbackStrategy:
    """The strategy for ``--depth`` and ``--default-timezone``; raises InputError."""
    if depth.strip().lower() == "all":
        walk: int | None = None
    else:
        try:
            walk = int(depth)
        except ValueError:
            raise InputError(f"--depth {depth!r} is not a number or 'all'") from None
        if walk < 1:
            raise InputError(f"--depth must be at least 1, or 'all'; got {walk}")
    try:
        ZoneInfo(default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"--default-timezone {default_timezone!r} is not an IANA time zone "
            "such as 'America/Detroit'"
        ) from None
    return FallbackStrategy(depth=walk, default_timezone=default_timezone)


def duration(text: str, option: str) -> timedelta:
    """A positive duration such as ``2m``, ``90s`` or ``PT2M``; raises InputError."""
    try:
        value = parse_duration(text)
    except ValueError as err:
        raise InputError(f"{option} {err}") from None
    if value <= timedelta(0):
        raise InputError(f"{option} must be longer than zero; got {text!r}")
    return value


def _unconfigured(problem: str) -> bool:
    """True when a provider's only problem is that its variables are not set at all."""
    _, _, clauses = problem.partition(": ")
    return all(clause.endswith("is not set") for clause in clauses.split("; "))


def build_registry(outbox: bool) -> Registry:
    """The outbox alone for a dry run, else every published adapter whose settings are set.

    A provider whose settings are present but wrong (a bad port, a missing SDK)
    is an error, not a provider quietly left out. Exits with status 2 when one
    is set up wrongly or none is configured.
    """
    if outbox:
        registry = Registry([as_adapter(Outbox())])
    else:
        found = Registry.discover()
        for item in found:
            if item.problem is None or _unconfigured(item.problem):
                continue
            if item.broken:
                # Another package's broken plugin must not stop every send.
                message = f"warning: adapter {item.name} is left out: {item.problem}"
                typer.echo(" ".join(message.split()), err=True)
                continue
            fail(f"adapter {item.name} is set up wrongly: {item.problem}")
        registry = Registry(item.adapter for item in found if item.adapter is not None)
    if not len(registry):
        fail(
            "no adapters are configured: set the environment variables of a provider "
            "(`multichannel adapters` shows what each one is missing), or pass --outbox "
            "for a dry run"
        )
    return registry


def shown_url(url: str) -> str:
    """``url`` as it may be printed: the password, if any, hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _PASSWORD.sub(r"\1***@", url)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise InputError(
            f"--store {shown_url(url)!r} is not a database URL such as "
            f"{DEFAULT_STORE} or postgresql+psycopg://user@host/db"
        ) from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise InputError(
            f"--store {shown_url(url)!r}: no database is known by the scheme "
            f"{parsed.drivername!r}; use sqlite:///PATH or postgresql+psycopg://user@host/db"
        ) from None
    return parsed


def open_store(url: str, *, create: bool, migrate: bool) -> SQLStore:
    """The SQL store at ``url``; with ``migrate`` its schema is brought up to date.

    Without ``create`` a SQLite file must already exist, so that a mistyped
    path is an error rather than a new empty store. Raises InputError for a bad
    URL or a database that cannot be reached.
    """
    parsed = _parse(url)
    shown = parsed.render_as_string(hide_password=True)
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:":
        if not create and not Path(path).is_file():
            raise InputError(
                f"there is no store at {path}: nothing was sent with --store {shown} "
                f"(give the store's URL with --store or {STORE_ENV})"
            )
        if create and not Path(path).parent.is_dir():
            raise InputError(
                f"cannot create the store {path}: the folder {Path(path).parent} does not exist"
            )
    try:
        store = SQLStore(parsed.render_as_string(hide_password=False), migrate=False)
    except ConfigurationError as err:
        raise InputError(f"--store {shown}: {err}") from None
    try:
        if migrate:
            store.upgrade()
        else:
            store.version()
    except SQLAlchemyError as err:
        store.close()
        raise InputError(f"cannot open the store {shown}: {_first_line(err)}") from None
    return store


def existing_store(url: str) -> SQLStore:
    """The SQL store at ``url``, which the library must have used already; raises InputError."""
    store = open_store(url, create=False, migrate=False)
    if store.version() == 0:
        store.close()
        shown = shown_url(url)
        raise InputError(
            f"{shown} holds no multichannel tables, so nothing was sent through it "
            f"(`multichannel db upgrade --store {shown}` creates them)"
        )
    return store
