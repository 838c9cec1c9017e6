"""Bulk upserts of a batch's frame, each database its fastest way, with no Python per value where it can.

SQLite: one executemany over plain tuples, with the values every row shares written into the
statement once. PostgreSQL (psycopg): polars writes the frame as CSV, COPY loads it into a
temporary table, and one INSERT ... SELECT ... ON CONFLICT moves it into the table; all in the
caller's transaction.
"""

from __future__ import annotations

import io
import itertools
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_QMARK_SQLITE = sqlite.dialect(paramstyle="qmark")
_TEMPORARY = itertools.count()


def sqlite_upsert(conn: sa.Connection, stmt: sa.Insert, frame: pl.DataFrame, keys: list[str]) -> None:
    """`stmt` (an upsert with a bound parameter per column) for every row of `frame`, by SQLite's executemany."""
    # in key order, stably (of two rows under one key the later wins, as before): consecutive rows
    # land on the same b-tree pages instead of all over a million-row index
    typed = sqlite_typed(frame.sort(keys, maintain_order=True, nulls_last=True))
    compiled = stmt.compile(dialect=_QMARK_SQLITE)  # ? placeholders; positiontup names the column of each
    # a value every row shares (the run, the time, a null column) is written once into the statement
    # rather than bound row by row, as binding is most of a big write (1M signups: the upserts 25 -> 22 s)
    sql, bound = with_literals(str(compiled), list(compiled.positiontup or []), shared_literals(typed, keys))
    conn.exec_driver_sql(sql, typed.select(bound).rows())


def copies(conn: sa.Connection, frame: pl.DataFrame) -> bool:
    """Whether `postgres_upsert` can write this frame: PostgreSQL through psycopg, flat columns only."""
    flat = not any(isinstance(t, pl.List | pl.Array | pl.Struct | pl.Object) for t in frame.schema.values())
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg" and flat


def postgres_upsert(
    conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, keys: list[str], update: bool, keep: tuple[str, ...]
) -> None:
    """`upsert_statement`'s upsert for every row of `frame`: COPY into a temporary table, then one INSERT ... SELECT.

    Of two rows under one key the later wins, as row-by-row upserts would have it (one INSERT may not
    touch a row twice). Text is always quoted in the CSV and a null never is, so COPY tells them apart."""
    frame = frame.unique(keys, keep="last", maintain_order=True)
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in frame.columns)
    temporary = f"leadq_batch_{next(_TEMPORARY)}"
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {temporary} ON COMMIT DROP AS SELECT {columns} FROM {quote(table.name)} WITH NO DATA"
    )
    csv = io.BytesIO()
    frame.write_csv(
        csv, include_header=False, quote_style="non_numeric", null_value="", datetime_format="%Y-%m-%d %H:%M:%S%.6f"
    )
    cursor = conn.connection.cursor()
    try:
        with cursor.copy(f"COPY {temporary} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(csv.getbuffer())
    finally:
        cursor.close()
    source = sa.table(temporary, *(sa.column(c) for c in frame.columns))
    rows = sa.select(*(source.c[c] for c in frame.columns))
    conn.execute(upsert_statement(conn, table, frame.columns, keys, update, keep, rows_from=rows))


def upsert_statement(
    conn: sa.Connection,
    table: sa.Table,
    names: list[str],
    keys: list[str],
    update: bool,
    keep: tuple[str, ...],
    rows_from: sa.Select[Any] | None = None,
) -> sa.Insert:
    """INSERT of `names` (a bound parameter each, or the rows of `rows_from`); on a key conflict, update
    every column but the keys and `keep` (or, `update` false, leave the stored row as it is)."""
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    if rows_from is None:
        insert = insert.values({c: sa.bindparam(c) for c in names})
    else:
        insert = insert.from_select(names, rows_from)
    columns = [c for c in names if c not in keys and c not in keep]
    if update and columns:
        return insert.on_conflict_do_update(index_elements=keys, set_={c: insert.excluded[c] for c in columns})
    return insert.on_conflict_do_nothing(index_elements=keys)


def sqlite_typed(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame as SQLite stores it: times as SQLAlchemy writes them (so the ORM reads them back
    unchanged), booleans as 0/1."""
    return frame.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S.%6f") for c, t in frame.schema.items() if isinstance(t, pl.Datetime)
    ).with_columns(pl.col(c).cast(pl.Int8) for c, t in frame.schema.items() if t == pl.Boolean)


def shared_literals(frame: pl.DataFrame, keys: list[str]) -> dict[str, str]:
    """{column: SQL literal} of the columns (never a key) that hold one value in every row: null, text
    or an integer. Floats and text with a NUL character are always bound."""
    columns = [c for c in frame.columns if c not in keys]
    if frame.height < 2 or not columns:
        return {}
    nulls = pl.col(columns).null_count()
    same = (nulls == pl.len()) | ((nulls == 0) & (pl.col(columns) == pl.col(columns).first()).all())
    one_value = frame.select(same).row(0, named=True)
    shared: dict[str, str] = {}
    for name in (c for c in columns if one_value[c]):
        value = frame[name][0]
        if value is None:
            shared[name] = "NULL"
        elif isinstance(value, int):
            shared[name] = str(int(value))
        elif isinstance(value, str) and "\x00" not in value:
            shared[name] = _text_literal(value)
    return shared


def with_literals(sql: str, order: list[str], literals: dict[str, str]) -> tuple[str, list[str]]:
    """The compiled statement with the ? of each column in `literals` replaced by its literal, and the
    columns still bound, in order. Done on the final text, so no literal is read as SQL or a placeholder."""
    pieces = sql.split("?")
    if len(pieces) != len(order) + 1:
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(order)} columns in {sql!r}")
    text = pieces[0] + "".join(literals.get(name, "?") + piece for name, piece in zip(order, pieces[1:], strict=True))
    return text, [name for name in order if name not in literals]


def _text_literal(value: str) -> str:
    render = sa.String().literal_processor(_QMARK_SQLITE)  # type: ignore[no-untyped-call]  # SQLAlchemy's quoting
    assert render is not None
    return str(render(value))
