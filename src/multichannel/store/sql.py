"""A durable store on SQLAlchemy Core: SQLite by default, PostgreSQL for many workers.

Each dispatch is one row holding its JSON, with the columns the queries need
(status, due time, lease) beside it, plus index tables for provider ids, the
points tried and opt-outs. Due steps are claimed under a lease: on PostgreSQL
with ``SELECT ... FOR UPDATE SKIP LOCKED``, on SQLite inside a write
transaction (``BEGIN IMMEDIATE``), so two workers never claim the same step.
Reads on SQLite use a deferred transaction, which in WAL mode never waits for a
writer, so a caller may save while iterating `SQLStore.dispatches`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    create_engine,
    delete,
    event,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from multichannel.contacts import STORED, address_key
from multichannel.dispatch import WAITING, DeliveryEvent, Dispatch, Status
from multichannel.errors import ConfigurationError, StaleDispatch
from multichannel.store._schema import (
    current_version,
    dispatches,
    held_events,
    inbound_seen,
    opt_outs,
    points_tried,
    provider_ids,
    upgrade,
)

__all__ = ["SQLStore"]

logger = logging.getLogger("multichannel.store")

_WAITING = sorted(status.value for status in WAITING)
_READ = "multichannel_read"


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def _sqlite_on_connect(connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions, so that the "begin"
    # hook below decides how each one starts.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # an in-memory database keeps "memory"
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A write takes the lock at once, so a claim's SELECT and UPDATE cannot
    # interleave with another process's; a read takes none.
    read = connection.get_execution_options().get(_READ, False)
    connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _prepare_sqlite(engine: Engine) -> None:
    if not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
    if not event.contains(engine, "begin", _sqlite_on_begin):
        event.listen(engine, "begin", _sqlite_on_begin)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        parsed = make_url(url)
        memory = parsed.database in (None, "", ":memory:")
        return create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )
    return create_engine(url, pool_pre_ping=True)


def _decode(body: str) -> Dispatch:
    return Dispatch.model_validate_json(body, context=STORED)


def _readable(rows: Iterable[Any]) -> tuple[list[Dispatch], list[str]]:
    """The dispatches of ``(id, body)`` rows, and the ids of rows that cannot be read."""
    readable, unreadable = [], []
    for row in rows:
        try:
            readable.append(_decode(row.body))
        except ValidationError as err:
            # One bad row must not stop the queue; the ids go to review.
            logger.error("stored dispatch %s cannot be read (%s)", row.id, err.errors()[0]["msg"])
            unreadable.append(row.id)
    return readable, unreadable


def _insert_ignoring_duplicates(
    connection: Connection, table: Table, rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        connection.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - other backends: one row at a time
        for row in rows:
            try:
                with connection.begin_nested():
                    connection.execute(insert(table), row)
            except IntegrityError:
                continue


def _upsert_points(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Index the points a dispatch tried, moving ``tried_at`` forward for a point tried again."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - other backends
        _insert_ignoring_duplicates(connection, points_tried, rows)
        return
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(points_tried)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["channel", "address", "dispatch_id"],
            set_={"tried_at": statement.excluded.tried_at},
            where=points_tried.c.tried_at < statement.excluded.tried_at,
        ),
        rows,
    )


class SQLStore:
    """Dispatches, indexes, opt-outs and due steps in a SQL database.

    ``url`` is a SQLAlchemy URL (``"sqlite:///dispatch.db"``,
    ``"postgresql+psycopg://user@host/db"``) or an Engine; a SQLite Engine gets
    the same connection hooks (WAL, write locks) as one built from a URL, so
    pass it before it has opened connections. With ``migrate`` the schema is
    brought up to date on first use. Raises ConfigurationError for a database
    the library cannot use.
    """

    def __init__(self, url: str | Engine, *, migrate: bool = True) -> None:
        try:
            self.engine = url if isinstance(url, Engine) else _engine(url)
        except Exception as err:
            raise ConfigurationError(f"cannot use the database URL: {err}") from None
        if self.engine.dialect.name == "sqlite":
            _prepare_sqlite(self.engine)
        # An in-memory SQLite database is one connection shared by every
        # thread, and a connection holds one transaction at a time.
        self._memory = _in_memory(self.engine)
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if self._memory else nullcontext()
        )
        if migrate:
            try:
                self.upgrade()
            except OperationalError as err:
                raise ConfigurationError(
                    f"cannot reach the database {self!r}: {err.orig or err}"
                ) from None

    def __repr__(self) -> str:
        return f"SQLStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._lock, self.engine.connect() as connection:
            yield connection.execution_options(**{_READ: True})

    def upgrade(self) -> list[int]:
        """Apply the schema migrations not yet applied; return their versions."""
        with self._writing() as connection:
            return upgrade(connection, datetime.now(UTC))

    def version(self) -> int:
        """The schema version of the database (0 before the first upgrade)."""
        with self._reading() as connection:
            return current_version(connection)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def create(self, dispatch: Dispatch) -> Dispatch:
        key = dispatch.message.key
        try:
            with self._writing() as connection:
                if key is not None:
                    existing = self._by_key(connection, dispatch.contact_id, key)
                    if existing is not None:
                        return existing
                connection.execute(insert(dispatches), self._row(dispatch, created=True))
                self._index(connection, dispatch)
        except IntegrityError:
            # Another process stored the same key first; theirs is the dispatch.
            with self._reading() as connection:
                found = self._by_key(connection, dispatch.contact_id, key or "")
            if found is None:
                raise
            return found
        return dispatch.model_copy(deep=True)

    def save(self, dispatch: Dispatch) -> None:
        saved = dispatch.model_copy(update={"revision": dispatch.revision + 1})
        with self._writing() as connection:
            written = connection.execute(
                update(dispatches)
                .where(dispatches.c.id == dispatch.id, dispatches.c.revision == dispatch.revision)
                .values(**self._row(saved), revision=saved.revision)
            )
            if written.rowcount != 1:
                raise StaleDispatch(
                    f"dispatch {dispatch.id} changed since revision {dispatch.revision} was read"
                )
            self._index(connection, saved)
        dispatch.revision = saved.revision

    def get(self, dispatch_id: str) -> Dispatch | None:
        with self._reading() as connection:
            return self._one(connection, dispatches.c.id == dispatch_id)

    def find_by_provider_id(self, provider_id: str) -> Dispatch | None:
        with self._reading() as connection:
            dispatch_id = connection.execute(
                select(provider_ids.c.dispatch_id).where(provider_ids.c.provider_id == provider_id)
            ).scalar()
            return (
                None
                if dispatch_id is None
                else self._one(connection, dispatches.c.id == dispatch_id)
            )

    def find_by_address(self, channel: str, address: str) -> Dispatch | None:
        with self._reading() as connection:
            dispatch_id = connection.execute(
                select(points_tried.c.dispatch_id)
                .where(
                    points_tried.c.channel == channel,
                    points_tried.c.address == address_key(channel, address),
                )
                .order_by(points_tried.c.tried_at.desc(), points_tried.c.seq.desc())
                .limit(1)
            ).scalar()
            return (
                None
                if dispatch_id is None
                else self._one(connection, dispatches.c.id == dispatch_id)
            )

    def dispatches_that_tried(
        self, channel: str, address: str, statuses: Collection[Status] | None = None
    ) -> list[Dispatch]:
        query = (
            select(dispatches.c.id, dispatches.c.body)
            .join(points_tried, points_tried.c.dispatch_id == dispatches.c.id)
            .where(
                points_tried.c.channel == channel,
                points_tried.c.address == address_key(channel, address),
            )
            .order_by(points_tried.c.seq)
        )
        if statuses is not None:
            query = query.where(dispatches.c.status.in_([status.value for status in statuses]))
        with self._reading() as connection:
            rows = connection.execute(query).all()
        return _readable(rows)[0]

    def due(self, now: datetime, limit: int | None = None) -> list[Dispatch]:
        with self._reading() as connection:
            rows = connection.execute(self._due_query(now, limit)).all()
        return _readable(rows)[0]

    def claim_due(
        self, now: datetime, *, lease: timedelta, owner: str, limit: int | None = None
    ) -> list[Dispatch]:
        """Due dispatches not leased by anyone, now leased to ``owner`` until ``now + lease``."""
        query = self._due_query(now, limit).with_for_update(skip_locked=True)
        with self._writing() as connection:
            claimed, unreadable = _readable(connection.execute(query).all())
            if unreadable:
                connection.execute(
                    update(dispatches)
                    .where(dispatches.c.id.in_(unreadable))
                    .values(status=Status.REVIEW.value, next_action_at=None)
                )
            if claimed:
                connection.execute(
                    update(dispatches)
                    .where(dispatches.c.id.in_([dispatch.id for dispatch in claimed]))
                    .values(lease_owner=owner, lease_until=now + lease)
                )
        return claimed

    def release(self, dispatch_id: str, owner: str) -> None:
        """Give up ``owner``'s lease on a dispatch; another owner's lease is left alone."""
        with self._writing() as connection:
            connection.execute(
                update(dispatches)
                .where(dispatches.c.id == dispatch_id, dispatches.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def dispatches(self, status: Status | None = None) -> Iterator[Dispatch]:
        query = select(dispatches.c.id, dispatches.c.body).order_by(
            dispatches.c.created_at, dispatches.c.id
        )
        if status is not None:
            query = query.where(dispatches.c.status == status.value)
        if self._memory:
            # The one shared connection cannot stay in a read while the caller
            # saves; a database in memory is small enough to read at once.
            with self._reading() as connection:
                rows = connection.execute(query).all()
            yield from _readable(rows)[0]
            return
        with self._reading() as connection:
            for row in connection.execute(query.execution_options(yield_per=500)):
                yield from _readable([row])[0]

    def add_opt_out(self, channel: str, address: str) -> None:
        with self._writing() as connection:
            _insert_ignoring_duplicates(
                connection,
                opt_outs,
                [
                    {
                        "channel": channel,
                        "address": address_key(channel, address),
                        "at": datetime.now(UTC),
                    }
                ],
            )

    def remove_opt_out(self, channel: str, address: str) -> None:
        with self._writing() as connection:
            connection.execute(
                delete(opt_outs).where(
                    opt_outs.c.channel == channel,
                    opt_outs.c.address == address_key(channel, address),
                )
            )

    def opted_out(self, points: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        by_key: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for channel, address in points:
            by_key.setdefault((channel, address_key(channel, address)), []).append(
                (channel, address)
            )
        if not by_key:
            return frozenset()
        with self._reading() as connection:
            rows = connection.execute(
                select(opt_outs.c.channel, opt_outs.c.address).where(
                    tuple_(opt_outs.c.channel, opt_outs.c.address).in_(list(by_key))
                )
            ).all()
        return frozenset(point for row in rows for point in by_key[(row.channel, row.address)])

    def hold_event(self, event: DeliveryEvent, at: datetime, *, forget_before: datetime) -> None:
        with self._writing() as connection:
            connection.execute(delete(held_events).where(held_events.c.held_at < forget_before))
            connection.execute(
                insert(held_events).values(
                    provider_id=event.provider_id or "",
                    held_at=at,
                    body=event.model_dump_json(),
                )
            )

    def held_events(self, provider_id: str) -> list[tuple[int, DeliveryEvent]]:
        with self._reading() as connection:
            rows = connection.execute(
                select(held_events.c.seq, held_events.c.body)
                .where(held_events.c.provider_id == provider_id)
                .order_by(held_events.c.seq)
            ).all()
        return [(row.seq, DeliveryEvent.model_validate_json(row.body)) for row in rows]

    def forget_held_events(self, keys: Iterable[int]) -> None:
        chosen = list(keys)
        if not chosen:
            return
        with self._writing() as connection:
            connection.execute(delete(held_events).where(held_events.c.seq.in_(chosen)))

    def seen_inbound(self, key: str) -> bool:
        with self._reading() as connection:
            found = connection.execute(
                select(inbound_seen.c.key).where(inbound_seen.c.key == key)
            ).scalar()
        return found is not None

    def remember_inbound(self, key: str, at: datetime) -> None:
        with self._writing() as connection:
            _insert_ignoring_duplicates(connection, inbound_seen, [{"key": key, "seen_at": at}])

    # Private helpers.

    @staticmethod
    def _due_query(now: datetime, limit: int | None) -> Any:
        query = (
            select(dispatches.c.id, dispatches.c.body)
            .where(
                dispatches.c.status.in_(_WAITING),
                dispatches.c.next_action_at <= now,
                or_(dispatches.c.lease_until.is_(None), dispatches.c.lease_until < now),
            )
            .order_by(dispatches.c.next_action_at, dispatches.c.created_at)
        )
        return query if limit is None else query.limit(limit)

    @staticmethod
    def _row(dispatch: Dispatch, *, created: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {
            "status": dispatch.status.value,
            "next_action_at": dispatch.next_action_at,
            "updated_at": dispatch.updated_at,
            "body": dispatch.model_dump_json(),
        }
        if created:
            row |= {
                "id": dispatch.id,
                "contact_id": dispatch.contact_id,
                "message_key": dispatch.message.key,
                "created_at": dispatch.created_at,
                "revision": dispatch.revision,
            }
        return row

    @staticmethod
    def _index(connection: Connection, dispatch: Dispatch) -> None:
        ids = {a.provider_id for a in dispatch.attempts if a.provider_id is not None}
        _insert_ignoring_duplicates(
            connection,
            provider_ids,
            [{"provider_id": pid, "dispatch_id": dispatch.id} for pid in sorted(ids)],
        )
        latest: dict[tuple[str, str], datetime] = {}
        for attempt in dispatch.attempts:
            point = (attempt.channel, address_key(attempt.channel, attempt.address))
            latest[point] = max(attempt.at, latest.get(point, attempt.at))
        _upsert_points(
            connection,
            [
                {"channel": ch, "address": ad, "dispatch_id": dispatch.id, "tried_at": at}
                for (ch, ad), at in sorted(latest.items())
            ],
        )

    @staticmethod
    def _one(connection: Connection, condition: Any) -> Dispatch | None:
        body = connection.execute(select(dispatches.c.body).where(condition)).scalar()
        return None if body is None else _decode(body)

    @staticmethod
    def _by_key(connection: Connection, contact_id: str, key: str) -> Dispatch | None:
        return SQLStore._one(
            connection,
            and_(dispatches.c.contact_id == contact_id, dispatches.c.message_key == key),
        )
