"""SQLStore's batched and shortened paths: create_many, one-statement claims, saves, idle pings.

Two `SQLStore` objects on one database stand for two processes: each has its
own engine and pool and its own memory of the revisions it read or wrote.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from _postgres import PostgresSchema, postgres_schema
from multichannel import (
    Attempt,
    Contact,
    ContactPoint,
    Dispatch,
    Message,
    Outcome,
    SQLStore,
    StaleDispatch,
    Status,
)
from multichannel.store import sql

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
US = timedelta(microseconds=1)
NOTICE = Message(body="Your parcel arrives today.")


def contact(number: int) -> Contact:
    return Contact(
        id=f"c{number}", points=[ContactPoint(channel="sms", address=f"+1734555{number:04}")]
    )


def make(dispatch_id: str, number: int = 0, *, key: str | None = None) -> Dispatch:
    """A dispatch due at T0 for contact ``number``."""
    person = contact(number)
    return Dispatch(
        id=dispatch_id,
        contact_id=person.id,
        contact=person,
        message=NOTICE.model_copy(update={"key": key}),
        next_action_at=T0,
        created_at=T0,
        updated_at=T0,
    )


def accepted(dispatch: Dispatch, provider_id: str) -> Attempt:
    return Attempt(
        channel="sms",
        address=dispatch.contact.points[0].address,
        at=T0,
        outcome=Outcome.ACCEPTED,
        tries=1,
        provider_id=provider_id,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[SQLStore, SQLStore]]:
    """Two stores, as two processes would have, on one fresh database."""
    if request.param == "postgres":
        with postgres_schema() as schema:
            yield schema.store(), schema.store()
        return
    url = f"sqlite:///{tmp_path / 'store.db'}"
    stores = SQLStore(url), SQLStore(url)
    yield stores
    for store in stores:
        store.close()


def at_once(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run each callable on its own thread, released together; their results in order."""
    start = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(place: int) -> None:
        start.wait()
        try:
            results[place] = workers[place]()
        except BaseException as error:
            results[place] = error

    threads = [threading.Thread(target=run, args=(place,)) for place in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def statements(store: SQLStore) -> list[str]:
    """A list that fills with the first word of every statement SQLAlchemy runs on ``store``."""
    seen: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def record(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0].upper())

    return seen


class TestCreateMany:
    def test_a_taken_id_stores_none_of_the_batch(
        self, two_stores: tuple[SQLStore, SQLStore]
    ) -> None:
        store, _ = two_stores
        store.create(make("taken"))

        with pytest.raises(IntegrityError):
            store.create_many([make("d1", 1), make("taken", 2), make("d3", 3)])

        assert [dispatch.id for dispatch in store.dispatches()] == ["taken"]

    def test_two_processes_creating_overlapping_keys_at_once_store_each_key_once(
        self, two_stores: tuple[SQLStore, SQLStore]
    ) -> None:
        first, second = two_stores
        keys = [f"k{n}" for n in range(40)]
        batches = [[make(f"{side}-{key}", key=key) for key in keys] for side in ("first", "second")]

        results = at_once(
            [lambda: first.create_many(batches[0]), lambda: second.create_many(batches[1])]
        )

        assert not [r for r in results if isinstance(r, BaseException)], results
        stored = {dispatch.message.key: dispatch.id for dispatch in first.dispatches()}
        assert sorted(stored) == sorted(keys)
        for result in results:
            assert [dispatch.id for dispatch in result] == [stored[key] for key in keys]


class TestClaims:
    def test_two_processes_claiming_at_once_never_claim_one_dispatch_twice(
        self, two_stores: tuple[SQLStore, SQLStore]
    ) -> None:
        first, second = two_stores
        first.create_many([make(f"d{n:03}", n) for n in range(150)])

        def drain(store: SQLStore, owner: str) -> Callable[[], list[str]]:
            def claims() -> list[str]:
                mine: list[str] = []
                while batch := store.claim_due(T0, lease=LEASE, owner=owner, limit=7):
                    mine += [dispatch.id for dispatch in batch]
                return mine

            return claims

        claimed = at_once([drain(first, "a"), drain(second, "b"), drain(first, "c")])

        every = [dispatch_id for mine in claimed for dispatch_id in mine]
        assert sorted(every) == [f"d{n:03}" for n in range(150)]

    def test_a_lease_held_by_another_process_ends_when_it_runs_out(
        self, two_stores: tuple[SQLStore, SQLStore]
    ) -> None:
        first, second = two_stores
        first.create_many([make("d1"), make("d2", 2)])
        assert [d.id for d in first.claim_due(T0, lease=LEASE, owner="a", limit=1)] == ["d1"]

        during = second.claim_due(T0 + LEASE, lease=LEASE, owner="b")
        after = second.claim_due(T0 + LEASE + US, lease=LEASE, owner="b")

        assert [d.id for d in during] == ["d2"]
        assert [d.id for d in after] == ["d1"]

    def test_a_row_that_cannot_be_read_goes_to_review_and_the_rest_are_claimed(
        self, two_stores: tuple[SQLStore, SQLStore]
    ) -> None:
        store, _ = two_stores
        store.create_many([make("bad"), make("good", 1)])
        with store.engine.begin() as connection:
            connection.execute(
                text("UPDATE multichannel_dispatches SET body = '{}' WHERE id = 'bad'")
            )

        claimed = store.claim_due(T0, lease=LEASE, owner="a")

        assert [dispatch.id for dispatch in claimed] == ["good"]
        with store.engine.connect() as connection:
            status = connection.execute(
                text("SELECT status FROM multichannel_dispatches WHERE id = 'bad'")
            ).scalar()
        assert status == Status.REVIEW.value
        assert [dispatch.id for dispatch in store.due(T0 + timedelta(days=1))] == ["good"]


class TestSaves:
    def test_another_processs_save_is_read_and_a_copy_from_before_it_is_refused(
        self, two_stores: tuple[SQLStore, SQLStore]
    ) -> None:
        first, second = two_stores
        first.create(make("d1"))
        mine = first.get("d1")
        theirs = second.get("d1")
        assert mine is not None
        assert theirs is not None
        mine.note(T0, "first")
        first.save(mine)
        stale = first.get("d1")  # read here at the revision just saved
        assert stale is not None

        again = second.get("d1")
        assert again is not None
        again.attempts.append(accepted(again, "p-9"))
        again.status = Status.ACCEPTED
        second.save(again)
        with pytest.raises(StaleDispatch):
            second.save(theirs)
        with pytest.raises(StaleDispatch):
            first.save(stale)

        read = first.get("d1")
        found = first.find_by_provider_id("p-9")
        assert read == again
        assert found == again
        assert first.find_by_address("sms", again.contact.points[0].address) == again

    def test_a_save_writes_index_rows_only_for_what_its_revision_adds(self, tmp_path: Path) -> None:
        store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
        dispatch = store.create(make("d1"))
        seen = statements(store)
        try:
            dispatch.attempts.append(accepted(dispatch, "p-1"))
            store.save(dispatch)
            adding = list(seen)
            seen.clear()
            dispatch.note(T0, "delivered, say")
            store.save(dispatch)
            unchanged = list(seen)
        finally:
            store.close()

        assert adding == ["UPDATE", "INSERT", "INSERT"]
        assert unchanged == ["UPDATE"]

    def test_after_forgetting_a_revision_a_save_writes_every_index_row_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
        store._revisions = sql._Revisions(size=0)
        try:
            dispatch = store.create(make("d1"))
            dispatch.attempts.append(accepted(dispatch, "p-1"))
            store.save(dispatch)
            seen = statements(store)
            dispatch.note(T0, "again")
            store.save(dispatch)
            found = store.find_by_provider_id("p-1")
        finally:
            store.close()

        assert seen == ["UPDATE", "INSERT", "INSERT", "SELECT"]
        assert found == dispatch


class TestReads:
    def test_a_read_of_one_statement_opens_no_transaction_on_sqlite(self, tmp_path: Path) -> None:
        store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
        store.create(make("d1"))
        run: list[str] = []
        event.listen(
            store.engine,
            "checkout",
            lambda dbapi, *_: dbapi.set_trace_callback(lambda sql: run.append(sql.split()[0])),
        )
        try:
            store.get("d1")
            store.opted_out([("sms", "+17345550000")])
            reads = list(run)
            run.clear()
            store.release("d1", "nobody")
            write = list(run)
        finally:
            store.close()

        assert reads == ["SELECT", "SELECT"]
        assert write == ["BEGIN", "UPDATE", "COMMIT"]


@pytest.fixture
def pg() -> Iterator[PostgresSchema]:
    with postgres_schema() as schema:
        yield schema


class TestIdlePing:
    def pings(self, store: SQLStore, monkeypatch: pytest.MonkeyPatch) -> list[object]:
        made: list[object] = []
        ping = store.engine.dialect.do_ping

        def counted(connection: Any) -> bool:
            made.append(connection)
            return ping(connection)

        monkeypatch.setattr(store.engine.dialect, "do_ping", counted)
        return made

    def test_a_connection_in_steady_use_is_not_pinged(
        self, pg: PostgresSchema, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = SQLStore(pg.url)
        try:
            made = self.pings(store, monkeypatch)
            store.create(make("d1"))
            for _ in range(5):
                store.get("d1")
        finally:
            store.close()

        assert made == []

    def test_a_connection_cut_while_idle_is_replaced_before_use(
        self, pg: PostgresSchema, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(sql, "_PING_AFTER_IDLE", 0.0)
        store = SQLStore(pg.url)
        try:
            made = self.pings(store, monkeypatch)
            store.create(make("d1"))
            with store.engine.connect() as connection:
                pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            admin = pg.engine()
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
                connection.commit()

            found = store.get("d1")
        finally:
            store.close()

        assert found is not None
        assert len(made) >= 2, "the idle connection was not pinged"
