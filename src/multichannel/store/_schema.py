"""The SQL schema and its versioned migrations, kept by the project instead of Alembic.

Each migration is a function that takes a connection inside a transaction and
moves the schema up by one version. `upgrade` applies those not yet applied and
records each in ``multichannel_schema``; it is safe to run twice and from two
processes at once: the version row is written in the same transaction, which
holds SQLite's write lock or, on PostgreSQL, an advisory lock taken first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    insert,
    inspect,
    select,
    text,
)

__all__ = ["MIGRATIONS", "current_version", "metadata", "tables", "upgrade"]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC and read back aware, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_versions = Table(
    "multichannel_schema",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", UTCDateTime, nullable=False),
)

dispatches = Table(
    "multichannel_dispatches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("contact_id", Text, nullable=False),
    Column("message_key", Text),
    Column("status", String(32), nullable=False),
    Column("next_action_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_until", UTCDateTime),
    Column("revision", BigInteger, nullable=False, default=0),
    Column("body", Text, nullable=False),
    UniqueConstraint("contact_id", "message_key", name="uq_multichannel_dispatch_key"),
)
Index("ix_multichannel_due", dispatches.c.status, dispatches.c.next_action_at)

provider_ids = Table(
    "multichannel_provider_ids",
    metadata,
    Column("provider_id", Text, primary_key=True),
    Column("dispatch_id", String(64), nullable=False),
)

# ``seq`` records the order in which dispatches first tried a point, so that
# "the latest dispatch on this address" has one answer even when two tried it
# at the same instant; ``tried_at`` is the latest try on the point.
points_tried = Table(
    "multichannel_points_tried",
    metadata,
    Column(
        "seq",
        Integer().with_variant(BigInteger(), "postgresql"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("channel", String(64), nullable=False),
    Column("address", Text, nullable=False),
    Column("dispatch_id", String(64), nullable=False),
    Column("tried_at", UTCDateTime, nullable=False),
    UniqueConstraint("channel", "address", "dispatch_id", name="uq_multichannel_point_dispatch"),
)
Index("ix_multichannel_points", points_tried.c.channel, points_tried.c.address)

opt_outs = Table(
    "multichannel_opt_outs",
    metadata,
    Column("channel", String(64), primary_key=True),
    Column("address", Text, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)

# Provider events that arrived before the send saved the id they name.
held_events = Table(
    "multichannel_held_events",
    metadata,
    Column(
        "seq",
        Integer().with_variant(BigInteger(), "postgresql"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("provider_id", Text, nullable=False),
    Column("held_at", UTCDateTime, nullable=False),
    Column("body", Text, nullable=False),
)
Index("ix_multichannel_held_events", held_events.c.provider_id)

# Inbound messages already recorded, so a replayed one changes nothing.
inbound_seen = Table(
    "multichannel_inbound_seen",
    metadata,
    Column("key", Text, primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
)

tables = {
    "dispatches": dispatches,
    "provider_ids": provider_ids,
    "points_tried": points_tried,
    "opt_outs": opt_outs,
    "held_events": held_events,
    "inbound_seen": inbound_seen,
}


def _v1_initial(connection: Connection) -> None:
    for table in (dispatches, provider_ids, points_tried, opt_outs):
        table.create(connection, checkfirst=True)


def _v2_events_held_and_inbound_seen(connection: Connection) -> None:
    for table in (held_events, inbound_seen):
        table.create(connection, checkfirst=True)


MIGRATIONS: tuple[Callable[[Connection], Any], ...] = (
    _v1_initial,
    _v2_events_held_and_inbound_seen,
)


def current_version(connection: Connection) -> int:
    """The schema version of the database, 0 when the library has never run there."""
    if not inspect(connection).has_table(schema_versions.name):
        return 0
    found = connection.execute(select(schema_versions.c.version)).scalars().all()
    return max(found, default=0)


# Any constant will do; it only has to be the same in every process.
_UPGRADE_LOCK = 0x6D756C7469636831


def upgrade(connection: Connection, now: datetime) -> list[int]:
    """Apply every migration not yet applied; return the versions applied."""
    if connection.dialect.name == "postgresql":
        # Without it, two processes creating the tables at once collide in the
        # catalog; the lock is held until this transaction ends.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
    schema_versions.create(connection, checkfirst=True)
    applied = []
    for version, migration in enumerate(MIGRATIONS, start=1):
        if version <= current_version(connection):
            continue
        migration(connection)
        connection.execute(insert(schema_versions).values(version=version, applied_at=now))
        applied.append(version)
    return applied
