"""Sources on the data real users have: integer ids, rows committed late, malformed CSV, wide files."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from connectors.errors import SourceError
from connectors.sources import Cursor, FileSource, SqlSource, last_cursor
from connectors.sources.lenient_csv import MALFORMED

T = "2026-03-01 09:00:00"


def _drain(source: FileSource | SqlSource, batch_size: int) -> list[str]:
    """Read like scheduled runs do: a batch, then the watermark after it, until nothing is new."""
    seen: list[str] = []
    cursor = Cursor()
    for _ in range(20):
        batches = list(source.pending(cursor, batch_size))
        if not batches:
            return seen
        batch = batches[0]
        seen += batch["email"].to_list()
        cursor = last_cursor(batch, cursor)
    raise AssertionError(f"still reading after 20 runs: {seen}")


def _users(db: Path, rows: list[tuple[int, str, str]]) -> SqlSource:
    with sqlite3.connect(db) as conn:
        conn.execute("create table if not exists users (id integer primary key, email text, created_at timestamp)")
        conn.executemany("insert into users values (?, ?, ?)", rows)
    return SqlSource(f"sqlite:///{db}", "users", {"signed_up_at": "created_at", "signup_id": "id"})


def test_integer_ids_at_one_timestamp_are_compared_as_integers(tmp_path: Path) -> None:
    source = _users(tmp_path / "p.db", [(i, f"u{i}@acme.io", T) for i in (1, 2, 10, 11)])
    # as text, the cursor (T, "2") would sort after "10" and "11": the second run saw nothing
    assert _drain(source, batch_size=2) == ["u1@acme.io", "u2@acme.io", "u10@acme.io", "u11@acme.io"]


def test_integer_ids_in_parquet_are_compared_as_integers(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pl.DataFrame(
        {"signup_id": [11, 2, 10, 1], "email": [f"u{i}@a.io" for i in (11, 2, 10, 1)], "signed_up_at": [T] * 4}
    ).write_parquet(path)
    assert _drain(FileSource(path, {}), batch_size=2) == ["u1@a.io", "u2@a.io", "u10@a.io", "u11@a.io"]


def test_a_watermark_written_with_a_text_id_still_works_on_an_integer_column(tmp_path: Path) -> None:
    source = _users(tmp_path / "p.db", [(i, f"u{i}@acme.io", T) for i in (1, 2, 10, 11)])
    old = Cursor(datetime(2026, 3, 1, 9), "2")  # as leadq stored it before ids kept their type
    rows = pl.concat(source.pending(old, 100))
    assert rows["email"].to_list() == ["u10@acme.io", "u11@acme.io"]


def test_lookback_reads_rows_committed_late_behind_the_watermark(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    source = _users(db, [(1, "a@acme.io", "2026-03-01 09:00:00"), (3, "c@acme.io", "2026-03-01 09:05:00")])
    cursor = last_cursor(pl.concat(source.pending(Cursor(), 100)), Cursor())
    _users(db, [(2, "late@acme.io", "2026-03-01 09:04:00")])  # its transaction committed after the read
    assert list(source.pending(cursor, 100)) == []  # without a lookback it is never seen
    source.lookback_s = 120
    again = pl.concat(source.pending(cursor, 100))
    assert again["email"].to_list() == ["late@acme.io", "c@acme.io"]
    assert last_cursor(again.head(1), cursor) == cursor  # a re-read never moves the watermark back


def test_far_future_signups_do_not_move_the_watermark() -> None:
    batch = pl.DataFrame(
        {
            "signed_up_at": [datetime(2026, 3, 1), datetime(9999, 12, 31), datetime(1970, 1, 1)],
            "signup_id": ["a", "b", "c"],
            "_cursor_id": ["a", "b", "c"],
        }
    ).sort("signed_up_at")
    now = datetime(2026, 3, 2)
    assert last_cursor(batch, Cursor(), now, max_future_s=300) == Cursor(datetime(2026, 3, 1), "a")


def test_a_malformed_csv_row_is_named_by_its_line_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(
        b"email,company_name,signed_up_at\n"
        b"a@acme.io,Acme,2026-03-01T09:00:00\n"
        b"b@acme.io,Acme,2026-03-01T09:01:00,surplus\n"  # line 3: a field too many
        b'c@acme.io,"Acme\nMultiline",2026-03-01T09:02:00\n'  # lines 4-5: a quoted newline is fine
        b"d@acme.io,Ac\rme,2026-03-01T09:03:00\n"  # line 6: a lone carriage return
        b"e@acme.io,Acme,2026-03-01T09:04:00\n"
        b'f@acme.io,"Acme,2026-03-01T09:05:00\n'  # line 8: a quote that never closes
        b"g@acme.io,Acme,2026-03-01T09:06:00\n"
    )
    rows = pl.concat(FileSource(path, {}).pending(Cursor(), 100)).sort("_row")
    good = rows.filter(pl.col(MALFORMED).is_null())
    assert good["email"].to_list() == ["a@acme.io", "c@acme.io", "e@acme.io", "g@acme.io"]
    assert good["company_name"][1] == "Acme\nMultiline"
    bad = rows.filter(pl.col(MALFORMED).is_not_null())
    assert bad["_row"].to_list() == [3, 6, 8]
    assert bad[MALFORMED][0].startswith("malformed CSV at line 3: 4 fields where the header has 3")
    assert "carriage return" in bad[MALFORMED][1] and "never closed" in bad[MALFORMED][2]


def test_a_file_that_cannot_be_read_at_all_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(SourceError, match=r"s\.parquet: cannot be read as parquet"):
        FileSource(path, {}).check()


def _wide_file(path: Path, columns: int, rows: int = 20) -> Path:
    header = ",".join(["email", "signed_up_at", *(f"c{i}" for i in range(columns))])
    body = "".join(f"u{r}@acme.io,2026-03-01T09:00:00," + ",".join(["x"] * columns) + "\n" for r in range(rows))
    path.write_text(header + "\n" + body)
    return path


def test_reading_cost_grows_linearly_with_the_column_count(tmp_path: Path) -> None:
    """Not a timing test of speed: a ratio. Four times the columns may cost about four times as much,
    never sixteen (a per-column schema lookup made 5,000 columns take minutes)."""

    def seconds(columns: int) -> float:
        source = FileSource(_wide_file(tmp_path / f"w{columns}.csv", columns), {})
        started = time.perf_counter()
        list(source.pending(Cursor(), 100))
        return time.perf_counter() - started

    seconds(250)  # warm up
    small, large = min(seconds(500) for _ in range(3)), min(seconds(2000) for _ in range(3))
    assert large < 10 * small + 0.5, f"500 columns {small:.3f} s, 2000 columns {large:.3f} s"
