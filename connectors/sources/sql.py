"""Signups from a table in any SQLAlchemy database (the product database, usually).

The table and its columns are mapped in settings, so no code changes to fit a schema.
Rows are streamed in cursor order with a WHERE clause on the watermark, compared in the
columns' own types: integer ids as integers, and the naive-UTC watermark as UTC against a
`timestamptz` column whatever the session's time zone. A table has no row numbers, so
rows carry none (`_row` is null); their signup id names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles

from connectors.errors import ConfigError, SourceError
from connectors.redact import secret_url
from connectors.sources.cursor import ID, TIMESTAMP, Cursor
from connectors.sources.frame import ROW, canonicalise


class SqlSource:
    def __init__(self, url: str, table: str, columns: dict[str, str], lookback_s: float = 0) -> None:
        if not url:
            raise ConfigError("settings.toml: key 'source.url': a SQLAlchemy URL is required when source.kind = 'sql'")
        try:
            self._url = make_url(secret_url(url))
        except sa.exc.ArgumentError as exc:
            raise ConfigError(f"settings.toml: key 'source.url': not a SQLAlchemy URL: {exc}") from exc
        self.table = table
        self.columns = columns
        self.lookback_s = lookback_s
        self.key = f"sql:{self._url.render_as_string(hide_password=True)}#{table}"

    def usage(self) -> dict[str, Any]:
        return {}

    def check(self) -> None:
        """Fail fast on an unreachable database, a missing table or missing columns."""
        engine = sa.create_engine(self._url)
        try:
            self._query(self._table(engine), Cursor())
        finally:
            engine.dispose()

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        engine = sa.create_engine(self._url)
        try:
            yield from self._batches(engine, self._query(self._table(engine), after), batch_size)
        finally:
            engine.dispose()

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        engine = sa.create_engine(self._url)
        try:
            table = self._table(engine)
            ts = table.c[self.columns.get(TIMESTAMP, TIMESTAMP)]
            query = self._query(table, Cursor()).where(_at(ts) >= _bound(ts, start), _at(ts) < _bound(ts, end))
            yield from self._batches(engine, query, batch_size)
        finally:
            engine.dispose()

    def _batches(self, engine: sa.Engine, query: sa.Select[tuple[object, ...]], size: int) -> Iterator[pl.DataFrame]:
        # stream_results: PostgreSQL sends the rows through a server-side cursor, a batch at a time,
        # instead of the whole result at once; SQLite steps through its cursor anyway
        with engine.connect().execution_options(stream_results=True) as conn:
            result = conn.execute(query)
            try:
                for part in result.partitions(size):
                    rows = pl.DataFrame(
                        [tuple(row) for row in part], schema=list(result.keys()), orient="row", infer_schema_length=None
                    )
                    rows = rows.with_columns(pl.lit(None, dtype=pl.UInt32).alias(ROW))
                    yield canonicalise(rows, self.columns, self.key, sort=False)
            finally:
                result.close()  # a reader that stops early closes the server-side cursor, too

    def _table(self, engine: sa.Engine) -> sa.Table:
        try:
            table = sa.Table(self.table, sa.MetaData(), autoload_with=engine)
        except sa.exc.NoSuchTableError as exc:
            raise SourceError(f"{self.key}: table '{self.table}' not found") from exc
        except sa.exc.OperationalError as exc:
            raise SourceError(f"{self.key}: cannot connect: {exc.orig}") from exc
        email = self.columns.get("email", "email")
        if email not in table.c:
            raise SourceError(f"{self.key}: required column '{email}' (email) not found in table '{self.table}'")
        return table

    def _query(self, table: sa.Table, after: Cursor) -> sa.Select[tuple[object, ...]]:
        ts_name, id_name = self.columns.get(TIMESTAMP, TIMESTAMP), self.columns.get(ID, ID)
        if ts_name not in table.c:
            raise SourceError(
                f"{self.key}: column '{ts_name}' (signed_up_at) not found; an incremental SQL source needs it"
            )
        ts = table.c[ts_name]
        order = [_at(ts).asc().nulls_first()]
        query = sa.select(table)
        if id_name in table.c:
            order.append(table.c[id_name].asc())
        if not after.is_start:
            assert after.signed_up_at is not None
            start = _bound(ts, after.signed_up_at)
            later = _at(ts) > start
            if id_name in table.c:
                column = table.c[id_name]
                typed = after.typed_id(_is_integer(column))
                if typed is not None:
                    later = later | ((_at(ts) == start) & (column > typed))
            if self.lookback_s > 0:
                later = later | (_at(ts) >= _bound(ts, after.signed_up_at - timedelta(seconds=self.lookback_s)))
            query = query.where(ts.is_(None) | later)
        return query.order_by(*order)


def _is_integer(column: sa.ColumnElement[object]) -> bool:
    try:
        return issubclass(column.type.python_type, int)
    except NotImplementedError:
        return False


def _at(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The time column as the database compares times. SQLite keeps times as text in whatever format
    the product wrote ('2026-03-01 09:00:00' is not '2026-03-01 09:00:00.000000' as text), so there
    both sides are compared as julian days."""
    return _SqliteTime(column)


class _SqliteTime(sa.sql.expression.FunctionElement[Any]):
    """julianday(column) on SQLite, the column itself elsewhere."""

    inherit_cache = True
    name = "leadq_time"


@compiles(_SqliteTime)
def _plain_time(element: _SqliteTime, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(next(iter(element.clauses)), **kw))


@compiles(_SqliteTime, "sqlite")
def _julian_time(element: _SqliteTime, compiler: Any, **kw: Any) -> str:
    return f"julianday({compiler.process(next(iter(element.clauses)), **kw)})"


def _bound(column: sa.ColumnElement[Any], when: datetime) -> sa.ColumnElement[Any]:
    """A naive-UTC time as the column compares it: aware UTC for `timestamptz` (a naive value would be
    read in the session's time zone), naive for a plain timestamp; a julian day on SQLite."""
    value = when.replace(tzinfo=UTC) if getattr(column.type, "timezone", False) else when
    return _SqliteTime(sa.literal(value, type_=column.type))
