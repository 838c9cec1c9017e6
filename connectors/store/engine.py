"""The store's engine: the database connection, the schema, the writer lock and bulk upserts.

Writes are bulk upserts keyed by email (companies by domain), so writing the same
batch twice changes nothing."""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from connectors.errors import ConfigError, FatalError
from connectors.redact import scrub, secret_url
from connectors.store import bulk
from connectors.store.models import (
    TABLES,
    SyncState,
)

CHUNK = 10_000


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class StoreEngine:
    def __init__(self, url: str) -> None:
        self.url = secret_url(url)
        try:
            # no pool for server databases: a run's few large transactions need no pooled connections,
            # and none is left open when a run's context is dropped
            pool = {} if url.startswith("sqlite") else {"poolclass": sa.pool.NullPool}
            self.engine = sa.create_engine(url, future=True, **pool)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"settings.toml: key 'store.url': cannot use {scrub(url)!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", sqlite_pragmas)

    def close(self) -> None:
        """Close the pooled connections (the store opens new ones when used again). When the last
        connection to a SQLite store closes, SQLite copies its write-ahead log into the database and
        deletes it: a million-lead run otherwise leaves ~600 MB of log that the next run replays."""
        self.engine.dispose()

    def exists(self) -> bool:
        """Whether the store has been created; a dry run on a fresh machine must not create it."""
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:" and not Path(database).exists():
            return False
        try:
            return sa.inspect(self.engine).has_table(SyncState.__tablename__)
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: sa.exc.OperationalError) -> FatalError:
        return FatalError(f"store {self.engine.url.render_as_string(hide_password=True)}: cannot connect: {exc.orig}")

    def create(self) -> None:
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        try:
            SQLModel.metadata.create_all(self.engine, tables=[table_of(t) for t in TABLES])
            self._add_new_columns()
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from exc

    def _add_new_columns(self) -> None:
        """A store made by an older leadq gets the (nullable) columns added since: no data is touched."""
        inspector = sa.inspect(self.engine)
        with self.engine.begin() as conn:
            for model in TABLES:
                table = table_of(model)
                present = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in present and column.nullable:
                        kind = column.type.compile(dialect=conn.dialect)
                        conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))

    @contextmanager
    def writer_lock(self, wait_s: float) -> Iterator[None]:
        """One writing run at a time per store, across processes and machines: the watermark, the SDR
        rotation and the CRM writes are read and advanced by one run only, so no batch is processed twice.

        PostgreSQL: a session advisory lock (released if the process dies); SQLite: a lock on a file
        next to the database. Raises FatalError when another run still holds it after `wait_s`."""
        name = f"leadq-writer:{self.engine.url.database}"
        deadline = time.monotonic() + wait_s
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            try:
                conn = self.engine.connect()
            except sa.exc.OperationalError as exc:
                raise self._unreachable(exc) from exc
            with conn:
                while not conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
                    self._wait_or_fail(deadline, wait_s)
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    conn.commit()
            return
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        with Path(f"{database}.lock").open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self._wait_or_fail(deadline, wait_s)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _wait_or_fail(self, deadline: float, wait_s: float) -> None:
        if time.monotonic() >= deadline:
            raise FatalError(
                f"store {self.engine.url.render_as_string(hide_password=True)}: another leadq run is writing to "
                f"it; this one waited {wait_s:g} s and did nothing (run again, it starts where that one ends; "
                "[run] lock_wait_s sets the wait)"
            )
        time.sleep(0.2)

    # --- small state -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                table_of(t).name: conn.execute(sa.select(sa.func.count()).select_from(table_of(t))).scalar_one()
                for t in TABLES
            }

    def read(self, query: str | sa.Select[Any]) -> pl.DataFrame:
        with self.engine.connect() as conn:
            return pl.read_database(query, conn, infer_schema_length=None)

    def _fetch(self, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query).all()]  # one fetchall, not a fetch per row

    def _any_of(self, column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
        """`column IN values` with the values as one bound parameter (a JSON array on SQLite, an array
        on PostgreSQL): an IN list of thousands of values costs SQLAlchemy a named parameter each."""
        if self.engine.dialect.name == "postgresql":
            return column == sa.any_(sa.literal(list(values), type_=postgresql.ARRAY(sa.String)))
        if self.engine.dialect.name == "sqlite":
            listed = sa.func.json_each(sa.literal(json.dumps(list(values)))).table_valued("value")
            return column.in_(sa.select(listed.c.value))
        return column.in_(list(values))

    # --- writes -------------------------------------------------------------------

    def _upsert(
        self,
        conn: sa.Connection,
        model: type[SQLModel],
        rows: list[dict[str, Any]] | pl.DataFrame,
        keys: list[str],
        update: bool = True,
        keep: tuple[str, ...] = (),
    ) -> None:
        """Insert, or on a key conflict update (or keep) the row, except the `keep` columns; many rows per statement."""
        names = rows.columns if isinstance(rows, pl.DataFrame) else list(rows[0]) if rows else []
        if not names or (isinstance(rows, pl.DataFrame) and rows.is_empty()):
            return
        table = table_of(model)
        if isinstance(rows, pl.DataFrame) and bulk.copies(conn, rows):
            bulk.postgres_upsert(conn, table, rows, keys, update, keep)
            return
        stmt = bulk.upsert_statement(conn, table, names, keys, update, keep)
        if isinstance(rows, pl.DataFrame) and conn.dialect.name == "sqlite":
            bulk.sqlite_upsert(conn, stmt, rows, keys)
            return
        dicts = rows.to_dicts() if isinstance(rows, pl.DataFrame) else rows
        for chunk in chunks(dicts):
            conn.execute(stmt, chunk)

    def _insert_new(self, conn: sa.Connection, model: type[SQLModel], rows: pl.DataFrame, key: str) -> None:
        self._upsert(conn, model, rows, [key], update=False)


def table_of(model: type[SQLModel]) -> sa.Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, sa.Table)
    return table


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """leadq's SQLite settings, on every new connection (bench/floor.py uses them too)."""
    cursor = dbapi_conn.cursor()
    # 32 KB pages for a new store (the default is 4 KB; an existing store keeps its own): a batch's
    # upserts touch fewer, fuller pages of each b-tree (1M signups: flow 56-60 s -> 50-54 s)
    cursor.execute("PRAGMA page_size=32768")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 256 MB of page cache at most (the default is 2 MB), taken as pages are read: upserts into
    # million-row tables touch index pages all over, and with a small cache every batch reads them
    # again (1M signups: sync 36 s with 64 MB, 33 s with 256 MB; peak memory unchanged at 1M)
    cursor.execute("PRAGMA cache_size=-262144")
    # a checkpoint per 16,000 pages of WAL (512 MB of 32 KB pages) rather than per 1,000: a batch's
    # commit writes its dirty pages whole, thousands of them at a million leads, so the default
    # checkpointed after every batch (bench/store_bound.py at 1M: commits 9.2 s with 4,000, 7.7 s with
    # 16,000). SQLite deletes the WAL file when the last connection closes.
    cursor.execute("PRAGMA wal_autocheckpoint=16000")

    cursor.close()


def write_state(conn: sa.Connection, key: str, value: Any) -> None:
    table = table_of(SyncState)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(key=key, value=json.dumps(value, sort_keys=True), updated_at=utc_now())
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
        )
    )


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
