"""One suite of store behaviour, run on every store: memory, SQLite (file and memory), PostgreSQL.

Whatever a dispatcher or worker relies on is checked here once and must hold
on each; the last test drives a whole scenario through a Dispatcher and
expects the same statuses on every store.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from _postgres import postgres_schema
from multichannel import (
    Attempt,
    Contact,
    ContactPoint,
    Decision,
    DeliveryEvent,
    Dispatch,
    Dispatcher,
    EventKind,
    ManualClock,
    MemoryStore,
    Message,
    Outbox,
    Outcome,
    Preferences,
    SQLStore,
    Status,
    Store,
    Window,
)
from multichannel.store.base import create_many, release_many

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 09:00 in Detroit
MON_2200 = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)  # Monday 22:00 in Detroit: quiet
TUE_0800 = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # quiet hours end
LEASE = timedelta(minutes=2)
US = timedelta(microseconds=1)


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-memory", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store the library ships, fresh and empty."""
    kind = request.param
    if kind == "memory":
        yield MemoryStore()
    elif kind == "postgres":
        with postgres_schema() as schema:
            yield schema.store()
    else:
        url = f"sqlite:///{tmp_path / 'store.db'}" if kind == "sqlite-file" else "sqlite://"
        sql = SQLStore(url)
        yield sql
        sql.close()


def person(name: str, number: str) -> Contact:
    """A contact in Detroit with an sms and an email point, quiet from 21:00 to 08:00."""
    return Contact(
        id=name,
        timezone="America/Detroit",
        points=[
            ContactPoint(channel="sms", address=number, label="mobile"),
            ContactPoint(channel="email", address=f"{name}@example.com"),
        ],
        preferences=Preferences(
            channels=["sms", "email"], quiet_hours=[Window(start="21:00", end="08:00")]
        ),
    )


ALICE = person("alice", "+17345550100")
BOB = person("bob", "+17345550101")
CAROL = person("carol", "+17345550102")
NOTICE = Message(body="Your parcel arrives today.")
QUESTION = Message(
    body="Can you confirm tomorrow's 10:00 appointment?",
    expects_response=True,
    response_wait=timedelta(hours=2),
)


def make(
    dispatch_id: str,
    *,
    contact: Contact = ALICE,
    message: Message = NOTICE,
    created: datetime = T0,
    due: datetime | None = T0,
    status: Status = Status.SCHEDULED,
    attempts: tuple[Attempt, ...] = (),
) -> Dispatch:
    """A dispatch written by hand, as a dispatcher would store it."""
    return Dispatch(
        id=dispatch_id,
        contact_id=contact.id,
        contact=contact,
        message=message,
        status=status,
        attempts=list(attempts),
        next_action_at=due,
        created_at=created,
        updated_at=created,
    )


def tried(channel: str, address: str, at: datetime, provider_id: str | None = None) -> Attempt:
    """An attempt a provider accepted."""
    return Attempt(
        channel=channel,
        address=address,
        at=at,
        outcome=Outcome.ACCEPTED,
        tries=1,
        provider="outbox",
        provider_id=provider_id,
        accepted_at=at,
    )


def ids(dispatches: list[Dispatch]) -> list[str]:
    return [dispatch.id for dispatch in dispatches]


class TestRoundTrip:
    def test_create_returns_and_get_reads_back_an_equal_dispatch(self, store: Store) -> None:
        kolkata = ZoneInfo("Asia/Kolkata")
        original = make(
            "d1",
            message=QUESTION.model_copy(update={"key": "appt-42", "metadata": {"ref": "A-7"}}),
            status=Status.AWAITING_RESPONSE,
            due=datetime(2026, 3, 2, 21, 30, 0, 123456, tzinfo=kolkata),
            attempts=(tried("sms", ALICE.points[0].address, T0, "p-1"),),
        )
        original.decisions.append(Decision(at=T0, reason="sms is open and ranked first"))

        created = store.create(original)
        read = store.get("d1")

        assert created == original
        assert read == original
        assert read is not None
        assert read.next_action_at is not None
        assert read.next_action_at.utcoffset() == timedelta(hours=5, minutes=30)

    def test_get_of_an_unknown_id_is_none(self, store: Store) -> None:
        assert store.get("nobody") is None

    def test_a_dispatch_read_back_is_a_copy(self, store: Store) -> None:
        store.create(make("d1"))

        read = store.get("d1")
        assert read is not None
        read.status = Status.CANCELLED
        read.attempts.append(tried("sms", "+17345550100", T0))

        assert store.get("d1") == make("d1")

    def test_save_replaces_the_stored_state(self, store: Store) -> None:
        store.create(make("d1"))
        changed = make(
            "d1",
            status=Status.ACCEPTED,
            due=None,
            attempts=(tried("email", "alice@example.com", T0 + timedelta(hours=1), "p-9"),),
        )
        changed.updated_at = T0 + timedelta(hours=1)

        store.save(changed)

        assert store.get("d1") == changed
        assert ids(list(store.dispatches())) == ["d1"]


class TestIdempotencyKeys:
    def test_the_same_key_for_the_same_contact_returns_the_stored_dispatch(
        self, store: Store
    ) -> None:
        keyed = NOTICE.model_copy(update={"key": "k-1"})
        first = store.create(make("d1", message=keyed))

        second = store.create(make("d2", message=keyed, created=T0 + timedelta(minutes=5)))

        assert second == first
        assert store.get("d2") is None
        assert ids(list(store.dispatches())) == ["d1"]

    def test_the_same_key_for_another_contact_is_a_new_dispatch(self, store: Store) -> None:
        keyed = NOTICE.model_copy(update={"key": "k-1"})
        store.create(make("d1", message=keyed))

        other = store.create(make("d2", contact=BOB, message=keyed))

        assert other.id == "d2"
        assert sorted(ids(list(store.dispatches()))) == ["d1", "d2"]

    def test_without_a_key_every_dispatch_is_new(self, store: Store) -> None:
        store.create(make("d1"))
        store.create(make("d2"))

        assert sorted(ids(list(store.dispatches()))) == ["d1", "d2"]


class TestCreateMany:
    """`create_many`: one call (one transaction on SQL) with `create`'s idempotency keys."""

    def test_each_new_dispatch_is_stored_and_returned_in_the_order_given(
        self, store: Store
    ) -> None:
        batch = [make("d1"), make("d2", contact=BOB), make("d3", contact=CAROL, due=None)]

        created = create_many(store, batch)

        assert created == batch
        assert [store.get(dispatch.id) for dispatch in batch] == batch
        assert ids(store.due(T0)) == ["d1", "d2"]

    def test_an_empty_batch_stores_nothing(self, store: Store) -> None:
        assert create_many(store, []) == []
        assert list(store.dispatches()) == []

    def test_a_key_used_twice_in_one_batch_stores_the_first_and_returns_it_for_both(
        self, store: Store
    ) -> None:
        keyed = NOTICE.model_copy(update={"key": "k-1"})
        batch = [
            make("d1", message=keyed),
            make("d2", contact=BOB, message=keyed),
            make("d3", message=keyed, created=T0 + timedelta(minutes=5)),
            make("d4"),
        ]

        created = create_many(store, batch)

        assert ids(created) == ["d1", "d2", "d1", "d4"]
        assert created[2] == batch[0]
        assert created[2] is not created[0]
        assert store.get("d3") is None
        assert sorted(ids(list(store.dispatches()))) == ["d1", "d2", "d4"]

    def test_a_key_already_stored_returns_the_stored_dispatch_and_writes_nothing(
        self, store: Store
    ) -> None:
        keyed = NOTICE.model_copy(update={"key": "k-1"})
        stored = store.create(
            make("d1", message=keyed, attempts=(tried("sms", ALICE.points[0].address, T0),))
        )

        created = create_many(
            store, [make("d2", message=keyed), make("d3", message=keyed), make("d4", contact=BOB)]
        )

        assert ids(created) == ["d1", "d1", "d4"]
        assert created[0] == stored
        assert store.get("d2") is None
        assert store.get("d3") is None
        assert sorted(ids(list(store.dispatches()))) == ["d1", "d4"]

    def test_dispatches_created_with_attempts_are_indexed(self, store: Store) -> None:
        create_many(
            store,
            [
                make("d1", attempts=(tried("sms", ALICE.points[0].address, T0, "p-1"),)),
                make("d2", contact=BOB, attempts=(tried("email", "bob@example.com", T0, "p-2"),)),
            ],
        )

        assert [
            d.id for d in [store.find_by_provider_id("p-1"), store.find_by_provider_id("p-2")] if d
        ] == [
            "d1",
            "d2",
        ]
        assert ids(store.dispatches_that_tried("sms", ALICE.points[0].address)) == ["d1"]

    def test_the_fallback_without_create_many_gives_the_same_results(self, store: Store) -> None:
        keyed = NOTICE.model_copy(update={"key": "k-1"})
        store.create(make("d0", message=keyed))

        created = create_many(OneAtATime(store), [make("d1", message=keyed), make("d2")])

        assert ids(created) == ["d0", "d2"]
        assert sorted(ids(list(store.dispatches()))) == ["d0", "d2"]


class TestReleaseMany:
    def test_the_owners_leases_end_and_anothers_stay(self, store: Store) -> None:
        for name in ("d1", "d2", "d3"):
            store.create(make(name))
        store.claim_due(T0, lease=LEASE, owner="a", limit=2)
        store.claim_due(T0, lease=LEASE, owner="b")

        release_many(store, ["d1", "d2", "d3", "nobody"], "a")
        release_many(store, [], "a")

        assert ids(store.claim_due(T0, lease=LEASE, owner="c")) == ["d1", "d2"]

    def test_the_fallback_without_release_many_releases_each(self, store: Store) -> None:
        for name in ("d1", "d2"):
            store.create(make(name))
        store.claim_due(T0, lease=LEASE, owner="a")

        release_many(OneAtATime(store), ["d1", "d2"], "a")

        assert ids(store.claim_due(T0, lease=LEASE, owner="b")) == ["d1", "d2"]


class OneAtATime:
    """A store of one's own written before `create_many` and `release_many` existed."""

    def __init__(self, inner: Store) -> None:
        self.create = inner.create
        self.release = inner.release


class TestIndexes:
    def test_every_provider_id_of_a_dispatch_finds_it(self, store: Store) -> None:
        store.create(make("d1", attempts=(tried("sms", "+17345550100", T0, "p-1"),)))
        later = make(
            "d1",
            attempts=(
                tried("sms", "+17345550100", T0, "p-1"),
                tried("email", "alice@example.com", T0 + timedelta(minutes=1), "p-2"),
            ),
        )
        store.save(later)
        store.create(make("d2", contact=BOB, attempts=(tried("sms", "+17345550101", T0, "p-3"),)))

        found = {pid: store.find_by_provider_id(pid) for pid in ("p-1", "p-2", "p-3")}

        assert {pid: None if d is None else d.id for pid, d in found.items()} == {
            "p-1": "d1",
            "p-2": "d1",
            "p-3": "d2",
        }
        assert found["p-1"] == later
        assert store.find_by_provider_id("p-404") is None

    def test_find_by_address_returns_the_dispatch_that_tried_the_point_last(
        self, store: Store
    ) -> None:
        # d1 was created first but deferred, so it reached the phone after d2.
        number = "+17345550100"
        store.create(make("d1", attempts=(tried("sms", number, T0 + timedelta(hours=2)),)))
        store.create(
            make(
                "d2",
                created=T0 + timedelta(hours=1),
                attempts=(tried("sms", number, T0 + timedelta(hours=1)),),
            )
        )

        found = store.find_by_address("sms", number)

        assert found is not None
        assert found.id == "d1"

    def test_of_two_tries_at_one_instant_the_later_to_start_is_the_latest(
        self, store: Store
    ) -> None:
        number = "+17345550100"
        first = make("d1", attempts=(tried("sms", number, T0),))
        store.create(first)
        store.create(make("d2", attempts=(tried("sms", number, T0),)))
        store.save(first)  # saving again, e.g. for a delivery report, changes no order

        found = store.find_by_address("sms", number)

        assert found is not None
        assert found.id == "d2"

    def test_trying_a_point_again_makes_that_dispatch_the_latest(self, store: Store) -> None:
        number = "+17345550100"
        store.create(make("d1", attempts=(tried("sms", number, T0),)))
        store.create(make("d2", attempts=(tried("sms", number, T0 + timedelta(hours=1)),)))
        store.save(
            make(
                "d1",
                attempts=(
                    tried("sms", number, T0),
                    tried("sms", number, T0 + timedelta(hours=2)),
                ),
            )
        )

        found = store.find_by_address("sms", number)

        assert found is not None
        assert found.id == "d1"

    def test_find_by_address_needs_the_channel_and_the_address(self, store: Store) -> None:
        store.create(make("d1", attempts=(tried("sms", "+17345550100", T0),)))

        assert store.find_by_address("voice", "+17345550100") is None
        assert store.find_by_address("sms", "+17345550199") is None
        assert store.find_by_address("sms", "+17345550100") is not None


class TestDue:
    def test_a_step_due_at_exactly_now_is_due_and_one_a_microsecond_later_is_not(
        self, store: Store
    ) -> None:
        store.create(make("now", due=T0))
        store.create(make("later", due=T0 + US))

        assert ids(store.due(T0)) == ["now"]
        assert ids(store.due(T0 + US)) == ["now", "later"]

    @pytest.mark.parametrize("status", list(Status))
    def test_only_scheduled_and_awaiting_dispatches_are_ever_due(
        self, store: Store, status: Status
    ) -> None:
        store.create(make("d1", status=status, due=T0 - timedelta(days=1)))

        due = ids(store.due(T0))

        assert due == ([] if status.is_final else ["d1"])

    def test_a_dispatch_with_nothing_to_do_is_not_due(self, store: Store) -> None:
        store.create(make("d1", due=None))

        assert store.due(T0 + timedelta(days=365)) == []

    def test_due_steps_come_oldest_first_and_limit_takes_the_first(self, store: Store) -> None:
        store.create(make("c", created=T0, due=T0 + timedelta(minutes=3)))
        store.create(make("a2", created=T0 + timedelta(seconds=2), due=T0 + timedelta(minutes=1)))
        store.create(make("a1", created=T0 + timedelta(seconds=1), due=T0 + timedelta(minutes=1)))
        store.create(make("b", created=T0, due=T0 + timedelta(minutes=2)))
        now = T0 + timedelta(hours=1)

        assert ids(store.due(now)) == ["a1", "a2", "b", "c"]
        assert ids(store.due(now, limit=2)) == ["a1", "a2"]

    def test_now_may_be_given_in_any_zone(self, store: Store) -> None:
        store.create(make("d1", due=T0))
        tokyo_now = T0.astimezone(ZoneInfo("Asia/Tokyo"))

        assert ids(store.due(tokyo_now)) == ["d1"]
        assert store.due(tokyo_now - US) == []


class TestLeases:
    def test_a_claimed_step_is_nobody_elses_until_the_lease_ends(self, store: Store) -> None:
        store.create(make("d1"))

        mine = store.claim_due(T0, lease=LEASE, owner="a")

        assert ids(mine) == ["d1"]
        assert mine[0] == make("d1")
        assert store.claim_due(T0, lease=LEASE, owner="b") == []
        assert store.due(T0) == []
        assert store.claim_due(T0 + LEASE, lease=LEASE, owner="b") == []
        assert ids(store.claim_due(T0 + LEASE + US, lease=LEASE, owner="b")) == ["d1"]

    def test_release_frees_a_step_at_once(self, store: Store) -> None:
        store.create(make("d1"))
        store.claim_due(T0, lease=LEASE, owner="a")

        store.release("d1", "a")

        assert ids(store.due(T0)) == ["d1"]
        assert ids(store.claim_due(T0, lease=LEASE, owner="b")) == ["d1"]

    def test_another_owners_release_leaves_the_lease_alone(self, store: Store) -> None:
        store.create(make("d1"))
        store.claim_due(T0, lease=LEASE, owner="a")

        store.release("d1", "b")
        store.release("nobody", "b")

        assert store.claim_due(T0, lease=LEASE, owner="b") == []

    def test_a_claim_takes_at_most_limit_steps_oldest_first_and_only_due_ones(
        self, store: Store
    ) -> None:
        for index in range(3):
            store.create(make(f"d{index}", due=T0 + timedelta(seconds=index)))
        store.create(make("future", due=T0 + timedelta(hours=1)))
        now = T0 + timedelta(minutes=1)

        first = store.claim_due(now, lease=LEASE, owner="a", limit=2)
        second = store.claim_due(now, lease=LEASE, owner="b", limit=2)

        assert ids(first) == ["d0", "d1"]
        assert ids(second) == ["d2"]
        assert store.claim_due(now, lease=LEASE, owner="c") == []

    def test_owners_claiming_from_threads_at_once_never_share_a_step(self, store: Store) -> None:
        for index in range(40):
            store.create(make(f"d{index:02}"))
        start = threading.Barrier(4)
        claims: dict[str, list[str]] = {}

        def claim(owner: str) -> None:
            start.wait()
            mine: list[str] = []
            while batch := store.claim_due(T0, lease=LEASE, owner=owner, limit=3):
                mine += ids(batch)
            claims[owner] = mine

        threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        every_claim = [dispatch_id for mine in claims.values() for dispatch_id in mine]
        assert len(claims) == 4
        assert sorted(every_claim) == [f"d{index:02}" for index in range(40)]


class TestOptOuts:
    def test_opt_outs_are_remembered_per_channel_and_address(self, store: Store) -> None:
        store.add_opt_out("sms", "+17345550100")
        store.add_opt_out("sms", "+17345550100")
        store.add_opt_out("email", "alice@example.com")

        asked = [
            ("sms", "+17345550100"),
            ("voice", "+17345550100"),
            ("sms", "+17345550101"),
            ("email", "alice@example.com"),
        ]

        assert store.opted_out(asked) == {("sms", "+17345550100"), ("email", "alice@example.com")}
        assert store.opted_out(iter(asked)) == store.opted_out(asked)
        assert store.opted_out([]) == frozenset()

    def test_removing_an_opt_out_lifts_only_that_one(self, store: Store) -> None:
        store.add_opt_out("sms", "+17345550100")
        store.add_opt_out("email", "alice@example.com")

        store.remove_opt_out("sms", "+17345550100")
        store.remove_opt_out("sms", "+17345550199")

        both = [("sms", "+17345550100"), ("email", "alice@example.com")]
        assert store.opted_out(both) == {("email", "alice@example.com")}


class TestWhoTriedAPoint:
    def test_every_dispatch_that_tried_a_point_in_the_order_they_first_tried_it(
        self, store: Store
    ) -> None:
        sms = ALICE.points[0].address
        store.create(make("d1", attempts=(tried("sms", sms, T0),)))
        store.create(make("d2", contact=BOB, attempts=(tried("sms", BOB.points[0].address, T0),)))
        store.create(
            make("d3", status=Status.CANCELLED, attempts=(tried("sms", " +1 734-555-0100 ", T0),))
        )
        store.create(make("d4", attempts=(tried("email", "ALICE@example.com", T0),)))
        store.create(make("d5"))

        assert ids(store.dispatches_that_tried("sms", sms)) == ["d1", "d3"]
        assert ids(store.dispatches_that_tried("sms", sms, {Status.SCHEDULED})) == ["d1"]
        assert ids(store.dispatches_that_tried("email", "alice@EXAMPLE.com")) == ["d4"]
        assert store.dispatches_that_tried("voice", sms) == []

    def test_a_point_tried_by_a_later_save_is_found(self, store: Store) -> None:
        dispatch = store.create(make("d1"))
        dispatch.attempts.append(tried("sms", ALICE.points[0].address, T0))
        store.save(dispatch)

        assert ids(store.dispatches_that_tried("sms", ALICE.points[0].address)) == ["d1"]


class TestKeptEvents:
    def test_events_are_kept_per_provider_id_oldest_first_until_forgotten(
        self, store: Store
    ) -> None:
        first = DeliveryEvent(kind=EventKind.DELIVERED, provider_id="p-1")
        second = DeliveryEvent(kind=EventKind.FAILED, provider_id="p-1", detail="30003")
        other = DeliveryEvent(kind=EventKind.FAILED, provider_id="p-2")
        for event in (first, other, second):
            store.hold_event(event, T0, forget_before=T0 - LEASE)

        held = store.held_events("p-1")
        assert [event for _, event in held] == [first, second]
        assert store.held_events("p-1") == held  # reading forgets nothing

        store.forget_held_events([held[0][0]])

        assert [event for _, event in store.held_events("p-1")] == [second]
        assert [event for _, event in store.held_events("p-2")] == [other]
        store.forget_held_events([])

    def test_events_kept_longer_than_their_send_can_take_are_forgotten(self, store: Store) -> None:
        old = DeliveryEvent(kind=EventKind.FAILED, provider_id="p-1")
        new = DeliveryEvent(kind=EventKind.FAILED, provider_id="p-2")
        store.hold_event(old, T0, forget_before=T0 - LEASE)
        store.hold_event(new, T0 + LEASE + US, forget_before=T0 + US)

        assert store.held_events("p-1") == []
        assert [event for _, event in store.held_events("p-2")] == [new]


class TestInboundSeen:
    def test_an_inbound_key_is_seen_once_remembered(self, store: Store) -> None:
        assert not store.seen_inbound("opted_in:SM1")

        store.remember_inbound("opted_in:SM1", T0)
        store.remember_inbound("opted_in:SM1", T0 + LEASE)

        assert store.seen_inbound("opted_in:SM1")
        assert not store.seen_inbound("responded:SM1")


class TestIteration:
    def test_dispatches_come_oldest_first_and_filter_by_status(self, store: Store) -> None:
        store.create(make("c", created=T0 + timedelta(minutes=2), status=Status.REVIEW))
        store.create(make("a", created=T0))
        store.create(make("b", created=T0 + timedelta(minutes=1), status=Status.REVIEW))

        assert ids(list(store.dispatches())) == ["a", "b", "c"]
        assert ids(list(store.dispatches(Status.REVIEW))) == ["b", "c"]
        assert list(store.dispatches(Status.FAILED)) == []

    def test_a_caller_may_save_while_iterating(self, store: Store) -> None:
        for index in range(5):
            store.create(make(f"d{index}", created=T0 + timedelta(seconds=index)))

        for dispatch in store.dispatches(Status.SCHEDULED):
            dispatch.status = Status.CANCELLED
            store.save(dispatch)

        assert Counter(d.status for d in store.dispatches()) == {Status.CANCELLED: 5}


def scenario(store: Store) -> tuple[list[tuple[str, Status, list[str]]], list[str]]:
    """Quiet hours, a bounce, silence, a reply and an opt-out; what each step left behind."""
    clock = ManualClock(MON_2200)
    outbox = Outbox()
    dispatcher = Dispatcher(adapters=[outbox], clock=clock, store=store)
    steps: list[tuple[str, Status, list[str]]] = []

    def seen(step: str, dispatch: Dispatch) -> Dispatch:
        stored = dispatcher.get(dispatch.id)
        assert stored == dispatch, f"{step}: the store holds another state than was returned"
        tries = [f"{a.channel}:{a.outcome.value}" for a in stored.attempts]
        steps.append((step, stored.status, tries))
        return stored

    deferred = seen("quiet hours", dispatcher.send(ALICE, NOTICE))
    clock.set(TUE_0800)
    [opened] = dispatcher.run_due()
    opened = seen("quiet hours end", opened)
    assert opened.current is not None
    seen(
        "bounce",
        dispatcher.record(
            DeliveryEvent(
                kind=EventKind.FAILED, provider_id=opened.current.provider_id, detail="unreachable"
            )
        ),
    )

    asked = seen("question", dispatcher.send(BOB, QUESTION))
    clock.advance(timedelta(hours=2))
    [escalated] = dispatcher.run_due()
    seen("silence", escalated)
    reply = DeliveryEvent(kind=EventKind.RESPONDED, channel="email", address="bob@example.com")
    seen("reply", dispatcher.record(reply))

    stopped = dispatcher.send(CAROL, QUESTION)
    assert stopped.current is not None
    stop = DeliveryEvent(kind=EventKind.OPTED_OUT, provider_id=stopped.current.provider_id)
    seen("stop", dispatcher.record(stop))
    seen("after stop", dispatcher.send(CAROL, NOTICE))

    clock.advance(timedelta(days=2))
    assert dispatcher.run_due() == []
    assert {deferred.id, asked.id} <= {d.id for d in store.dispatches()}
    return steps, [f"{sent.channel}:{sent.address}" for sent in outbox.sent]


def test_a_dispatcher_gives_the_same_results_on_every_store(store: Store) -> None:
    steps, sent = scenario(store)

    assert steps == [
        ("quiet hours", Status.SCHEDULED, []),
        ("quiet hours end", Status.ACCEPTED, ["sms:accepted"]),
        ("bounce", Status.ACCEPTED, ["sms:failed", "email:accepted"]),
        ("question", Status.AWAITING_RESPONSE, ["sms:accepted"]),
        ("silence", Status.AWAITING_RESPONSE, ["sms:unanswered", "email:accepted"]),
        ("reply", Status.RESPONDED, ["sms:unanswered", "email:responded"]),
        ("stop", Status.CANCELLED, ["sms:accepted"]),
        ("after stop", Status.ACCEPTED, ["email:accepted"]),
    ]
    assert sent == [
        "sms:+17345550100",
        "email:alice@example.com",
        "sms:+17345550101",
        "email:bob@example.com",
        "sms:+17345550102",
        "email:carol@example.com",
    ]
    statuses = Counter(dispatch.status for dispatch in store.dispatches())
    assert statuses == {
        Status.ACCEPTED: 2,
        Status.RESPONDED: 1,
        Status.CANCELLED: 1,
    }
