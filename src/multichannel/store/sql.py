"""A durable store on SQLAlchemy Core: SQLite by default, PostgreSQL for many workers.

Each dispatch is one row holding its JSON, with the columns the queries need
(status, due time, lease) beside it, plus index tables for provider ids, the
points tried and opt-outs. Due steps are claimed under a lease by one
statement: on PostgreSQL ``UPDATE ... RETURNING`` over rows chosen ``FOR UPDATE
SKIP LOCKED``, on SQLite the same inside a write transaction (``BEGIN
IMMEDIATE``), so two workers never claim the same step. A read of one
statement runs without a transaction of its own (autocommit); a longer read on
SQLite uses a deferred transaction, which in WAL mode never waits for a writer,
so a caller may save while iterating `SQLStore.dispatches`.

The per-step path is kept short: statements are built once (`_queries`), a
save is one ``UPDATE ... WHERE revision = ?`` plus index rows only for what is
new since the revision it replaces, and an engine built from a URL checks
(pings) only a pooled connection that sat unused for a while.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from multichannel.contacts import STORED, address_key
from multichannel.dispatch import WAITING, DeliveryEvent, Dispatch, Status
from multichannel.errors import ConfigurationError, StaleDispatch
from multichannel.store import _queries as q
from multichannel.store._queries import Indexed
from multichannel.store._schema import current_version, upgrade

__all__ = ["SQLStore"]

logger = logging.getLogger("multichannel.store")

_WAITING = sorted(status.value for status in WAITING)
_READ = "multichannel_read"
# A pooled connection unused for longer than this is pinged before it is handed
# out: a server restart, a failover or an idle timeout cuts connections while
# they wait in the pool. One in steady use is not, so that a busy worker pays no
# round trip per checkout; should its connection drop, the statement fails, the
# pool is renewed, and the worker's outage handling tries again.
_PING_AFTER_IDLE = 1.0
_IDLE_SINCE = "multichannel_idle_since"


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def _sqlite_on_connect(connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions, so that the "begin"
    # hook below decides how each one starts.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # an in-memory database keeps "memory"
    cursor.execute("PRAGMA busy_timeout=30000")
    # Safe in WAL mode: a commit survives the process dying; only a power cut
    # may lose the last commits, never corrupt the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # A write takes the lock at once, so a claim's reads and writes cannot
    # interleave with another process's; a read takes none, and a read of one
    # statement needs no transaction around it.
    read = connection.get_execution_options().get(_READ)
    if read == "single":
        return
    statement = "BEGIN" if read else "BEGIN IMMEDIATE"
    # Straight to the driver: through SQLAlchemy it costs as much as the write
    # it opens. Its error is wrapped as SQLAlchemy would (a locked database is
    # an OperationalError, which a worker waits out).
    dbapi = connection.dialect.loaded_dbapi
    try:
        connection.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
    except dbapi.Error as err:
        raise exc.DBAPIError.instance(statement, (), err, dbapi.Error) from err


def _prepare_sqlite(engine: Engine) -> None:
    if not event.contains(engine, "connect", _sqlite_on_connect):
        event.listen(engine, "connect", _sqlite_on_connect)
    if not event.contains(engine, "begin", _sqlite_on_begin):
        event.listen(engine, "begin", _sqlite_on_begin)


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it has been idle a while."""

    def checked_in(_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since <= _PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(connection)
        except engine.dialect.loaded_dbapi.Error as err:
            # The pool replaces this connection and every one pooled before now.
            raise exc.InvalidatePoolError(str(err)) from err

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        parsed = make_url(url)
        memory = parsed.database in (None, "", ":memory:")
        return create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )
    # Most recently used first, so that the connections a busy process keeps
    # using stay warm and the rest are the ones left to idle (and be pinged).
    engine = create_engine(url, pool_use_lifo=True)
    _ping_after_idle(engine)
    return engine


def _decode(body: str) -> Dispatch:
    return Dispatch.model_validate_json(body, context=STORED)


def _pair(dispatch: Dispatch) -> tuple[str, str] | None:
    """The (contact id, idempotency key) a dispatch is stored under, if it has a key."""
    key = dispatch.message.key
    return None if key is None else (dispatch.contact_id, key)


def _row(dispatch: Dispatch, body: str) -> dict[str, Any]:
    return {
        "id": dispatch.id,
        "contact_id": dispatch.contact_id,
        "message_key": dispatch.message.key,
        "status": dispatch.status.value,
        "next_action_at": dispatch.next_action_at,
        "created_at": dispatch.created_at,
        "updated_at": dispatch.updated_at,
        "revision": dispatch.revision,
        "body": body,
    }


class _Revisions:
    """Dispatches as stored at a revision, recently read or saved here, by (id, revision).

    A stored revision never changes (every save makes a new one), so what was
    read or written for it holds in every process: reading it again needs no
    decoding (a clone is handed out), and a save writes only the index rows
    its own revision adds. Forgetting is always safe.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._known: dict[tuple[str, int], Dispatch] = {}
        self._lock = threading.Lock()

    def get(self, dispatch_id: str, revision: int) -> Dispatch | None:
        with self._lock:
            return self._known.get((dispatch_id, revision))

    def remember(self, dispatch: Dispatch) -> None:
        """Keep ``dispatch``, which must be a copy nobody else holds."""
        with self._lock:
            self._known[(dispatch.id, dispatch.revision)] = dispatch
            if len(self._known) > self._size:
                del self._known[next(iter(self._known))]


class SQLStore:
    """Dispatches, indexes, opt-outs and due steps in a SQL database.

    ``url`` is a SQLAlchemy URL (``"sqlite:///dispatch.db"``,
    ``"postgresql+psycopg://user@host/db"``) or an Engine; a SQLite Engine gets
    the same connection hooks (WAL, write locks) as one built from a URL, so
    pass it before it has opened connections. An Engine passed in keeps its own
    pool settings (``pool_pre_ping`` and the like). With ``migrate`` the schema
    is brought up to date on first use. Raises ConfigurationError for a
    database the library cannot use.
    """

    def __init__(self, url: str | Engine, *, migrate: bool = True) -> None:
        try:
            self.engine = url if isinstance(url, Engine) else _engine(url)
        except Exception as err:
            raise ConfigurationError(f"cannot use the database URL: {err}") from None
        self._dialect = self.engine.dialect.name
        if self._dialect == "sqlite":
            _prepare_sqlite(self.engine)
        # An in-memory SQLite database is one connection shared by every
        # thread, and a connection holds one transaction at a time.
        self._memory = _in_memory(self.engine)
        self._lock: AbstractContextManager[Any] = (
            threading.RLock() if self._memory else nullcontext()
        )
        self._revisions = _Revisions()
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
    def _reading(self, *, single: bool = False) -> Iterator[Connection]:
        """A connection for reading; ``single``: for one statement, outside any transaction."""
        with self._lock, self.engine.connect() as connection:
            if single and self._dialect == "postgresql":
                # No BEGIN and ROLLBACK round trips around a lone SELECT.
                connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection.execution_options(**{_READ: "single" if single else "snapshot"})

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
        try:
            return self.create_many([dispatch])[0]
        except IntegrityError:
            # Another process stored the same key first; theirs is the dispatch.
            pair = _pair(dispatch)
            found = None if pair is None else self._by_keys([pair]).get(pair)
            if found is None:
                raise
            return _decode(found)

    def create_many(self, dispatches: Iterable[Dispatch]) -> list[Dispatch]:
        """Store new dispatches in one transaction; for each, what `create` would return.

        For a (contact, key) already stored the stored dispatch is returned and
        nothing written; of two given with one (contact, key), the first is
        stored and returned for both. Raises IntegrityError, storing none,
        when an id is taken.
        """
        batch = list(dispatches)
        # Of those sharing a (contact, key), the first stands for all, as if created in turn.
        first: dict[tuple[str, str], int] = {}
        fresh: list[Dispatch] = []
        for place, dispatch in enumerate(batch):
            pair = _pair(dispatch)
            if pair is not None:
                if pair in first:
                    continue
                first[pair] = place
            fresh.append(dispatch)
        bodies = {dispatch.id: dispatch.model_dump_json() for dispatch in fresh}
        with self._writing() as connection:
            if q.returns_inserted(connection):
                # A key stored already (or by another process meanwhile) is skipped by the INSERT.
                inserted = q.insert_new(connection, [_row(d, bodies[d.id]) for d in fresh])
                taken = [pair for pair, place in first.items() if batch[place].id not in inserted]
                stored = self._by_keys(taken, connection)
            else:
                stored = self._by_keys(list(first), connection)
                new = [d for d in fresh if _pair(d) not in stored]
                inserted = q.insert_new(connection, [_row(d, bodies[d.id]) for d in new])
            created = [(d.id, Indexed.of(d), None) for d in fresh if d.id in inserted]
            q.write_index(connection, created)

        def result(place: int, dispatch: Dispatch) -> Dispatch:
            pair = _pair(dispatch)
            if pair is None:
                return dispatch  # inserted: what is stored is its JSON
            winner = batch[first[pair]]
            if winner.id not in inserted:
                return _decode(stored[pair])
            return dispatch if first[pair] == place else _decode(bodies[winner.id])

        return [result(place, dispatch) for place, dispatch in enumerate(batch)]

    def save(self, dispatch: Dispatch) -> None:
        known = self._revisions.get(dispatch.id, dispatch.revision)
        saved = dispatch.clone()
        saved.revision = dispatch.revision + 1
        with self._writing() as connection:
            written = connection.execute(
                q.SAVE,
                {
                    "b_id": dispatch.id,
                    "b_revision": dispatch.revision,
                    "status": saved.status.value,
                    "next_action_at": saved.next_action_at,
                    "updated_at": saved.updated_at,
                    "body": saved.model_dump_json(),
                    "revision": saved.revision,
                },
            )
            if written.rowcount != 1:
                raise StaleDispatch(
                    f"dispatch {dispatch.id} changed since revision {dispatch.revision} was read"
                )
            before = None if known is None else Indexed.of(known)
            q.write_index(connection, [(dispatch.id, Indexed.of(saved), before)])
        self._revisions.remember(saved)
        dispatch.revision = saved.revision

    def get(self, dispatch_id: str) -> Dispatch | None:
        return self._one(q.GET, {"id": dispatch_id})

    def find_by_provider_id(self, provider_id: str) -> Dispatch | None:
        return self._one(q.BY_PROVIDER_ID, {"provider_id": provider_id})

    def find_by_address(self, channel: str, address: str) -> Dispatch | None:
        return self._one(
            q.BY_ADDRESS, {"channel": channel, "address": address_key(channel, address)}
        )

    def dispatches_that_tried(
        self, channel: str, address: str, statuses: Collection[Status] | None = None
    ) -> list[Dispatch]:
        params: dict[str, Any] = {"channel": channel, "address": address_key(channel, address)}
        if statuses is not None:
            params["statuses"] = [status.value for status in statuses]
        with self._reading(single=True) as connection:
            rows = connection.execute(q.tried_by(statuses is not None), params).all()
        return self._readable(rows)[0]

    def due(self, now: datetime, limit: int | None = None) -> list[Dispatch]:
        with self._reading(single=True) as connection:
            rows = connection.execute(q.due(limit is not None), self._due(now, limit)).all()
        return self._readable(rows)[0]

    def claim_due(
        self, now: datetime, *, lease: timedelta, owner: str, limit: int | None = None
    ) -> list[Dispatch]:
        """Due dispatches not leased by anyone, now leased to ``owner`` until ``now + lease``."""
        params = self._due(now, limit) | {"owner": owner, "until": now + lease}
        with self._writing() as connection:
            rows = q.claim(connection, params, limited=limit is not None)
            claimed, unreadable = self._readable(rows)
            if unreadable:
                connection.execute(q.TO_REVIEW, {"ids": unreadable, "status": Status.REVIEW.value})
        return claimed

    def release(self, dispatch_id: str, owner: str) -> None:
        """Give up ``owner``'s lease on a dispatch; another owner's lease is left alone."""
        self.release_many([dispatch_id], owner)

    def release_many(self, dispatch_ids: Iterable[str], owner: str) -> None:
        """Give up ``owner``'s leases on these dispatches in one statement; others' stay."""
        chosen = list(dispatch_ids)
        if not chosen:
            return
        with self._writing() as connection:
            connection.execute(q.RELEASE, {"ids": chosen, "owner": owner})

    def dispatches(self, status: Status | None = None) -> Iterator[Dispatch]:
        query = q.every(status is not None)
        params = {} if status is None else {"status": status.value}
        if self._memory:
            # The one shared connection cannot stay in a read while the caller
            # saves; a database in memory is small enough to read at once.
            with self._reading() as connection:
                rows = connection.execute(query, params).all()
            yield from self._readable(rows, remember=False)[0]
            return
        with self._reading() as connection:
            for row in connection.execute(query.execution_options(yield_per=500), params):
                yield from self._readable([row], remember=False)[0]

    def add_opt_out(self, channel: str, address: str) -> None:
        with self._writing() as connection:
            q.insert_ignoring_duplicates(
                connection,
                "opt_outs",
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
                q.REMOVE_OPT_OUT, {"channel": channel, "address": address_key(channel, address)}
            )

    def opted_out(self, points: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        by_key: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for channel, address in points:
            by_key.setdefault((channel, address_key(channel, address)), []).append(
                (channel, address)
            )
        if not by_key:
            return frozenset()
        params: dict[str, Any] = {}
        if len(by_key) > q.FEW_POINTS:
            query, params["points"] = q.OPTED_OUT, list(by_key)
        else:
            query = q.opted_out(len(by_key))
            for n, (channel, address) in enumerate(by_key):
                params[f"channel{n}"], params[f"address{n}"] = channel, address
        with self._reading(single=True) as connection:
            rows = connection.execute(query, params).all()
        return frozenset(point for row in rows for point in by_key[(row.channel, row.address)])

    def hold_event(self, event: DeliveryEvent, at: datetime, *, forget_before: datetime) -> None:
        with self._writing() as connection:
            connection.execute(q.FORGET_HELD_BEFORE, {"before": forget_before})
            connection.execute(
                q.HOLD,
                {
                    "provider_id": event.provider_id or "",
                    "held_at": at,
                    "body": event.model_dump_json(),
                },
            )

    def held_events(self, provider_id: str) -> list[tuple[int, DeliveryEvent]]:
        with self._reading(single=True) as connection:
            rows = connection.execute(q.HELD, {"provider_id": provider_id}).all()
        return [(row.seq, DeliveryEvent.model_validate_json(row.body)) for row in rows]

    def forget_held_events(self, keys: Iterable[int]) -> None:
        chosen = list(keys)
        if not chosen:
            return
        with self._writing() as connection:
            connection.execute(q.FORGET_HELD, {"keys": chosen})

    def seen_inbound(self, key: str) -> bool:
        with self._reading(single=True) as connection:
            found = connection.execute(q.SEEN_INBOUND, {"key": key}).scalar()
        return found is not None

    def remember_inbound(self, key: str, at: datetime) -> None:
        with self._writing() as connection:
            q.insert_ignoring_duplicates(connection, "inbound_seen", [{"key": key, "seen_at": at}])

    # Private helpers.

    @staticmethod
    def _due(now: datetime, limit: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"now": now, "waiting": _WAITING}
        if limit is not None:
            params["limit"] = limit
        return params

    def _one(self, query: Any, params: dict[str, Any]) -> Dispatch | None:
        with self._reading(single=True) as connection:
            row = connection.execute(query, params).first()
        return None if row is None else self._readable([row])[0][0]

    def _readable(
        self, rows: Iterable[Any], *, remember: bool = True
    ) -> tuple[list[Dispatch], list[str]]:
        """The dispatches of (id, revision, body) rows, and the ids of rows that cannot be read."""
        readable, unreadable = [], []
        for row in rows:
            known = self._revisions.get(row.id, row.revision)
            if known is not None:
                readable.append(known.clone())
                continue
            try:
                dispatch = _decode(row.body)
            except ValidationError as err:
                # One bad row must not stop the queue; the ids go to review.
                logger.error(
                    "stored dispatch %s cannot be read (%s)", row.id, err.errors()[0]["msg"]
                )
                unreadable.append(row.id)
                continue
            if remember:
                self._revisions.remember(dispatch.clone())
            readable.append(dispatch)
        return readable, unreadable

    def _by_keys(
        self, pairs: Sequence[tuple[str, str]], connection: Connection | None = None
    ) -> dict[tuple[str, str], str]:
        """The bodies stored under these (contact id, key) pairs."""
        if not pairs:
            return {}
        if connection is None:
            with self._reading(single=True) as reader:
                return self._by_keys(pairs, reader)
        rows = connection.execute(q.BY_KEYS, {"pairs": list(pairs)}).all()
        return {(row.contact_id, row.message_key): row.body for row in rows}
