"""The statements `SQLStore` runs, built once, and the index rows a dispatch needs.

A statement built on every call costs more in SQLAlchemy than the database
takes to run it, so each one here is made once with named parameters and
compiled once per dialect (SQLAlchemy's compiled cache); dialect-specific
forms (upserts, the claim) are made once per dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from multichannel.contacts import address_key
from multichannel.dispatch import WAITING, Dispatch, Status
from multichannel.store._schema import (
    UTCDateTime,
    dispatches,
    held_events,
    inbound_seen,
    opt_outs,
    points_tried,
    provider_ids,
    tables,
)

__all__ = ["Indexed"]

_d = dispatches.c


def _many(name: str) -> Any:
    return bindparam(name, expanding=True)


def _at(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime)


# Reads of dispatches return (id, revision, body): a revision read before needs no decoding.
_READ = (_d.id, _d.revision, _d.body)
GET = select(*_READ).where(_d.id == bindparam("id"))
BY_KEYS = select(_d.contact_id, _d.message_key, _d.body).where(
    tuple_(_d.contact_id, _d.message_key).in_(_many("pairs"))
)
BY_PROVIDER_ID = (
    select(*_READ)
    .join(provider_ids, provider_ids.c.dispatch_id == _d.id)
    .where(provider_ids.c.provider_id == bindparam("provider_id"))
)
# Of dispatches that tried the point at one instant, the one that first tried it later.
BY_ADDRESS = (
    select(*_READ)
    .join(points_tried, points_tried.c.dispatch_id == _d.id)
    .where(
        points_tried.c.channel == bindparam("channel"),
        points_tried.c.address == bindparam("address"),
    )
    .order_by(points_tried.c.tried_at.desc(), points_tried.c.seq.desc())
    .limit(1)
)
# The SET clause comes from the parameters' other names: status, body, revision, ...
SAVE = update(dispatches).where(_d.id == bindparam("b_id"), _d.revision == bindparam("b_revision"))
TO_REVIEW = (
    update(dispatches)
    .where(_d.id.in_(_many("ids")))
    .values(status=Status.REVIEW.value, next_action_at=None)
)
RELEASE = (
    update(dispatches)
    .where(_d.id.in_(_many("ids")), _d.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_until=None)
)
REMOVE_OPT_OUT = delete(opt_outs).where(
    opt_outs.c.channel == bindparam("channel"), opt_outs.c.address == bindparam("address")
)
HOLD = insert(held_events)
HELD = (
    select(held_events.c.seq, held_events.c.body)
    .where(held_events.c.provider_id == bindparam("provider_id"))
    .order_by(held_events.c.seq)
)
FORGET_HELD = delete(held_events).where(held_events.c.seq.in_(_many("keys")))
FORGET_HELD_BEFORE = delete(held_events).where(held_events.c.held_at < _at("before"))
SEEN_INBOUND = select(inbound_seen.c.key).where(inbound_seen.c.key == bindparam("key"))

# The statuses are constants, written into the SQL once rather than bound on every call.
_DUE = (
    _d.status.in_([literal_column(f"'{status}'") for status in sorted(WAITING)]),
    _d.next_action_at <= _at("now"),
    or_(_d.lease_until.is_(None), _d.lease_until < _at("now")),
)
_OLDEST_DUE_FIRST = (_d.next_action_at, _d.created_at)


OPTED_OUT = select(opt_outs.c.channel, opt_outs.c.address).where(
    tuple_(opt_outs.c.channel, opt_outs.c.address).in_(_many("points"))
)
FEW_POINTS = 16


@cache
def opted_out(count: int) -> Select[Any]:
    """Which of ``count`` points (``channel0``, ``address0``, ...) have opted out.

    One pair of parameters per point rather than a list expanded on every call
    (`OPTED_OUT`, for more than `FEW_POINTS`): a contact has a handful of
    points, and each count is compiled once.
    """
    return select(opt_outs.c.channel, opt_outs.c.address).where(
        or_(
            *(
                and_(
                    opt_outs.c.channel == bindparam(f"channel{n}"),
                    opt_outs.c.address == bindparam(f"address{n}"),
                )
                for n in range(count)
            )
        )
    )


@cache
def due(limited: bool) -> Select[Any]:
    """Due dispatches (``now``), oldest first, up to ``limit`` when ``limited``."""
    query = select(*_READ).where(*_DUE).order_by(*_OLDEST_DUE_FIRST)
    return query.limit(bindparam("limit")) if limited else query


@cache
def tried_by(with_statuses: bool) -> Select[Any]:
    """Dispatches that tried (``channel``, ``address``), in ``statuses`` when given."""
    query = (
        select(*_READ)
        .join(points_tried, points_tried.c.dispatch_id == _d.id)
        .where(
            points_tried.c.channel == bindparam("channel"),
            points_tried.c.address == bindparam("address"),
        )
        .order_by(points_tried.c.seq)
    )
    return query.where(_d.status.in_(_many("statuses"))) if with_statuses else query


@cache
def every(with_status: bool) -> Select[Any]:
    """Every dispatch, oldest first, or those in ``status``."""
    query = select(*_READ).order_by(_d.created_at, _d.id)
    return query.where(_d.status == bindparam("status")) if with_status else query


@cache
def _claim(dialect: str, limited: bool, materialized: bool) -> Any:
    chosen = select(_d.id).where(*_DUE).order_by(*_OLDEST_DUE_FIRST)
    if limited:
        chosen = chosen.limit(bindparam("limit"))
    returning = (*_READ, _d.next_action_at, _d.created_at)
    claim = update(dispatches).values(lease_owner=bindparam("owner"), lease_until=_at("until"))
    if dialect == "postgresql":
        # Chosen once, in a CTE the planner may not fold into the UPDATE, so that
        # the LIMIT and the rows skipped as locked by others hold for the statement.
        picked = chosen.with_for_update(skip_locked=True).cte("chosen")
        if materialized:
            picked = picked.prefix_with("MATERIALIZED")
        return claim.where(_d.id.in_(select(picked.c.id))).returning(*returning)
    return claim.where(_d.id.in_(chosen)).returning(*returning)


def claim(connection: Connection, params: Mapping[str, Any], *, limited: bool) -> list[Any]:
    """Lease the due dispatches to ``owner`` until ``until``; their rows, oldest due first."""
    dialect = connection.dialect
    if dialect.update_returning and dialect.name in ("postgresql", "sqlite"):
        version = dialect.server_version_info or ()
        statement = _claim(dialect.name, limited, dialect.name == "postgresql" and version >= (12,))
        rows = list(connection.execute(statement, params))
        # RETURNING comes in no particular order.
        return sorted(rows, key=lambda row: (row.next_action_at, row.created_at))
    # Without UPDATE ... RETURNING (SQLite before 3.35, other backends): read, then lease.
    query = due(limited).with_for_update(skip_locked=True)
    rows = list(connection.execute(query, params))
    if rows:
        connection.execute(
            update(dispatches)
            .where(_d.id.in_(_many("ids")))
            .values(lease_owner=bindparam("owner"), lease_until=_at("until")),
            {"ids": [row.id for row in rows], "owner": params["owner"], "until": params["until"]},
        )
    return rows


@dataclass(frozen=True)
class Indexed:
    """The index rows one dispatch needs: its provider ids, and its latest try on each point."""

    provider_ids: frozenset[str]
    points: Mapping[tuple[str, str], datetime]

    @classmethod
    def of(cls, dispatch: Dispatch) -> Indexed:
        """The index rows of ``dispatch`` as it is now."""
        ids = frozenset(a.provider_id for a in dispatch.attempts if a.provider_id is not None)
        latest: dict[tuple[str, str], datetime] = {}
        for attempt in dispatch.attempts:
            point = (attempt.channel, address_key(attempt.channel, attempt.address))
            latest[point] = max(attempt.at, latest.get(point, attempt.at))
        return cls(ids, latest)


def write_index(
    connection: Connection, changes: Sequence[tuple[str, Indexed, Indexed | None]]
) -> None:
    """Write each (dispatch id, index rows) beyond those known to be stored already.

    Index rows are only ever added or moved forward, so what a stored revision
    had indexed is still there, and rows it had are skipped.
    """
    ids: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    for dispatch_id, now, known in changes:
        ids += [
            {"provider_id": provider_id, "dispatch_id": dispatch_id}
            for provider_id in sorted(now.provider_ids)
            if known is None or provider_id not in known.provider_ids
        ]
        for (channel, address), at in sorted(now.points.items()):
            before = None if known is None else known.points.get((channel, address))
            if before is None or before < at:
                points.append(
                    {
                        "channel": channel,
                        "address": address,
                        "dispatch_id": dispatch_id,
                        "tried_at": at,
                    }
                )
    insert_ignoring_duplicates(connection, "provider_ids", ids)
    _upsert_points(connection, points)


@cache
def _ignoring_duplicates(dialect: str, table: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(tables[table]).on_conflict_do_nothing()


def insert_ignoring_duplicates(
    connection: Connection, table: str, rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows`` into ``tables[table]``, skipping those whose key is there already."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect in ("postgresql", "sqlite"):
        connection.execute(_ignoring_duplicates(dialect, table), rows)
        return
    for row in rows:  # pragma: no cover - other backends: one row at a time
        try:
            with connection.begin_nested():
                connection.execute(insert(tables[table]), row)
        except IntegrityError:
            continue


@cache
def _points_upsert(dialect: str) -> Any:
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(points_tried)
    return statement.on_conflict_do_update(
        index_elements=["channel", "address", "dispatch_id"],
        set_={"tried_at": statement.excluded.tried_at},
        where=points_tried.c.tried_at < statement.excluded.tried_at,
    )


def _upsert_points(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Index the points tried, moving ``tried_at`` forward for a point tried again."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):  # pragma: no cover - other backends
        insert_ignoring_duplicates(connection, "points_tried", rows)
        return
    connection.execute(_points_upsert(dialect), rows)


def returns_inserted(connection: Connection) -> bool:
    """Whether `insert_new` can skip a stored key itself, in the INSERT (else: look first)."""
    dialect = connection.dialect
    return dialect.name in ("postgresql", "sqlite") and dialect.insert_executemany_returning


@cache
def _insert_new(dialect: str) -> Any:
    module = postgresql if dialect == "postgresql" else sqlite
    return (
        module.insert(dispatches)
        .on_conflict_do_nothing(index_elements=["contact_id", "message_key"])
        .returning(_d.id)
    )


def insert_new(connection: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert dispatch rows; the ids inserted, leaving out those whose (contact, key) is taken.

    Without `returns_inserted` every row is inserted (the caller has left out
    the taken keys), and a key taken meanwhile raises IntegrityError.
    """
    if not rows:
        return set()
    if returns_inserted(connection):
        # One row goes as it is; many go through SQLAlchemy's batched VALUES.
        result = connection.execute(
            _insert_new(connection.dialect.name), rows[0] if len(rows) == 1 else rows
        )
        return {row.id for row in result}
    connection.execute(insert(dispatches), rows)
    return {row["id"] for row in rows}
