"""SQLStore itself: migrations, a process restart, WAL, time zones, secrets, racing writers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, inspect, text

from _postgres import PostgresSchema, postgres_schema
from multichannel import (
    ConfigurationError,
    Contact,
    ContactPoint,
    Dispatch,
    Dispatcher,
    ManualClock,
    Message,
    Outbox,
    Preferences,
    SQLStore,
    Status,
    Window,
)

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Monday 22:00 in Detroit: quiet
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # quiet hours end
TABLES = [
    "multichannel_dispatches",
    "multichannel_held_events",
    "multichannel_inbound_seen",
    "multichannel_opt_outs",
    "multichannel_points_tried",
    "multichannel_provider_ids",
    "multichannel_schema",
]
ALICE = Contact(
    id="alice",
    timezone="America/Detroit",
    points=[ContactPoint(channel="sms", address="+17345550100")],
    preferences=Preferences(channels=["sms"], quiet_hours=[Window(start="21:00", end="08:00")]),
)
NOTICE = Message(body="Your parcel arrives today.")
_T = TypeVar("_T")


def make(dispatch_id: str, *, key: str | None = None, due: datetime | None = T0) -> Dispatch:
    """A dispatch for Alice written by hand."""
    return Dispatch(
        id=dispatch_id,
        contact_id=ALICE.id,
        contact=ALICE,
        message=NOTICE.model_copy(update={"key": key}),
        next_action_at=due,
        created_at=T0,
        updated_at=T0,
    )


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'dispatch.db'}"


@pytest.fixture
def pg() -> Iterator[PostgresSchema]:
    """An empty PostgreSQL schema of its own; the test is skipped without a server."""
    with postgres_schema() as schema:
        yield schema


def at_once(count: int, work: Callable[[], _T]) -> list[_T | BaseException]:
    """Run ``work`` on ``count`` threads released together; what each returned or raised."""
    start = threading.Barrier(count)
    results: list[_T | BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        try:
            result: _T | BaseException = work()
        except BaseException as error:
            result = error
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def tables(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        return sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()


class TestMigrations:
    def test_the_version_is_0_before_and_the_latest_after_the_first_upgrade(
        self, db_url: str
    ) -> None:
        store = SQLStore(db_url, migrate=False)
        try:
            before = store.version()
            applied = store.upgrade()
            again = store.upgrade()
            after = store.version()
        finally:
            store.close()

        assert (before, applied, again, after) == (0, [1, 2], [], 2)
        assert tables(db_url) == TABLES

    def test_migrate_is_the_default(self, db_url: str) -> None:
        store = SQLStore(db_url)
        try:
            assert store.version() == 2
            assert store.upgrade() == []
        finally:
            store.close()

    def test_migrate_false_leaves_an_empty_database_untouched(self, db_url: str) -> None:
        store = SQLStore(db_url, migrate=False)
        store.version()
        store.close()

        assert tables(db_url) == []

    def test_two_stores_on_one_fresh_file_both_upgrade(self, db_url: str) -> None:
        stores = [SQLStore(db_url, migrate=False) for _ in range(2)]
        waiting = list(stores)
        try:
            results = at_once(2, lambda: waiting.pop().upgrade())
            versions = [store.version() for store in stores]
        finally:
            for store in stores:
                store.close()

        assert sorted(map(str, results)) == ["[1, 2]", "[]"]
        assert versions == [2, 2]
        assert tables(db_url) == TABLES

    def test_two_stores_on_one_fresh_postgres_schema_both_upgrade(self, pg: PostgresSchema) -> None:
        stores = [pg.store(migrate=False), pg.store(migrate=False)]

        results = at_once(2, lambda: stores.pop().upgrade())

        assert sorted(map(str, results)) == ["[1, 2]", "[]"]
        assert pg.tables() == TABLES
        assert pg.store(migrate=False).version() == 2

    def test_a_migrated_postgres_schema_holds_only_the_librarys_tables(
        self, pg: PostgresSchema
    ) -> None:
        assert pg.tables() == []

        pg.store()

        assert pg.tables() == TABLES


class TestRestart:
    def test_a_step_scheduled_before_a_restart_is_performed_after_it(self, db_url: str) -> None:
        before_outbox = Outbox()
        before_store = SQLStore(db_url)
        before = Dispatcher(
            adapters=[before_outbox], clock=ManualClock(MON_2200), store=before_store
        )
        scheduled = before.send(ALICE, NOTICE)
        before_store.close()
        del before, before_store

        after_outbox = Outbox()
        after_store = SQLStore(db_url)
        after = Dispatcher(adapters=[after_outbox], clock=ManualClock(TUE_0800), store=after_store)
        try:
            [performed] = after.run_due()
            assert after.run_due() == []
            reread = after.get(scheduled.id)
        finally:
            after_store.close()

        assert scheduled.status is Status.SCHEDULED
        assert scheduled.next_action_at == TUE_0800
        assert before_outbox.sent == []
        assert performed.id == scheduled.id
        assert performed.status is Status.ACCEPTED
        assert reread == performed
        assert [sent.address for sent in after_outbox.sent] == ["+17345550100"]
        assert after_outbox.sent[0].context.dispatch_id == scheduled.id


class TestSQLite:
    def test_a_file_database_is_in_wal_mode(self, db_url: str) -> None:
        store = SQLStore(db_url)
        try:
            with store.engine.connect() as connection:
                mode = connection.execute(text("PRAGMA journal_mode")).scalar()
        finally:
            store.close()

        assert mode == "wal"

    def test_an_engine_passed_in_gets_the_same_setup(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite:///{tmp_path / 'given.db'}")
        store = SQLStore(engine)
        again = SQLStore(engine)  # a second store on the engine adds no second hook
        try:
            with engine.connect() as connection:
                mode = connection.execute(text("PRAGMA journal_mode")).scalar()
            store.create(make("d1"))
            claimed = again.claim_due(T0, lease=timedelta(minutes=1), owner="a")
        finally:
            store.close()

        assert mode == "wal"
        assert [dispatch.id for dispatch in claimed] == ["d1"]


class TestTime:
    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    def test_aware_datetimes_come_back_aware_and_equal(
        self, backend: str, db_url: str, request: pytest.FixtureRequest
    ) -> None:
        if backend == "postgres":
            schema: PostgresSchema = request.getfixturevalue("pg")
            store = schema.store()
        else:
            store = SQLStore(db_url)
        eastern = datetime(2026, 7, 1, 9, 30, 15, 250000, tzinfo=ZoneInfo("America/New_York"))
        dispatch = make("d1", due=eastern)
        try:
            store.create(dispatch)
            [due] = store.due(eastern)
            with store.engine.connect() as connection:
                column = connection.execute(
                    text("SELECT next_action_at FROM multichannel_dispatches")
                ).scalar()
        finally:
            store.close()

        assert due.next_action_at == eastern
        assert due.next_action_at is not None
        assert due.next_action_at.tzinfo is not None
        assert due.created_at == T0
        # The column the due query reads holds the same instant, in UTC.
        stored = column if isinstance(column, datetime) else datetime.fromisoformat(str(column))
        assert stored.replace(tzinfo=stored.tzinfo or UTC) == eastern


class TestSafety:
    def test_repr_hides_the_password(self) -> None:
        store = SQLStore("postgresql+psycopg://mc:s3cret-pw@db.invalid:5432/mc", migrate=False)

        shown = repr(store)

        assert "s3cret-pw" not in shown
        assert shown == "SQLStore('postgresql+psycopg://mc:***@db.invalid:5432/mc')"

    def test_a_url_no_driver_understands_is_a_configuration_error(self) -> None:
        with pytest.raises(ConfigurationError, match="cannot use the database URL"):
            SQLStore("nosuchdb://somewhere/db")


class TestRacingWriters:
    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    def test_two_threads_creating_with_one_key_make_one_dispatch(
        self, backend: str, db_url: str, request: pytest.FixtureRequest
    ) -> None:
        if backend == "postgres":
            schema: PostgresSchema = request.getfixturevalue("pg")
            store = schema.store()
        else:
            store = SQLStore(db_url)
        try:
            for round_number in range(10):
                key = f"key-{round_number}"
                candidates = [make(f"first-{key}", key=key), make(f"second-{key}", key=key)]

                def create_one(pending: list[Dispatch] = candidates) -> Dispatch:
                    return store.create(pending.pop())

                results = at_once(2, create_one)

                winners = {r.id if isinstance(r, Dispatch) else repr(r) for r in results}
                assert len(winners) == 1, results
            stored = list(store.dispatches())
        finally:
            store.close()

        assert len(stored) == 10
        assert sorted(d.message.key or "" for d in stored) == sorted(f"key-{n}" for n in range(10))
