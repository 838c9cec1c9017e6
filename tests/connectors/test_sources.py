from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from connectors.errors import SourceError
from connectors.sources import Cursor, FileSource, SqlSource, last_cursor

ROWS = {
    "signup_id": ["a", "b", "c"],
    "email": ["x@acme.io", "y@acme.io", "z@beta.io"],
    "signed_up_at": ["2026-01-02T00:00:00Z", "2026-01-01 08:00:00", "2026-01-02T00:00:00+00:00"],
    "plan": ["pro", "free", "team"],
}


START = Cursor()


def _all(source: FileSource | SqlSource, after: Cursor = START, batch: int = 100) -> pl.DataFrame:
    batches = list(source.pending(after, batch))
    return pl.concat(batches) if batches else pl.DataFrame()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_file_format_reads_the_same_rows_in_cursor_order(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"signups{suffix}"
    frame = pl.DataFrame(ROWS)
    {".csv": frame.write_csv, ".parquet": frame.write_parquet, ".jsonl": frame.write_ndjson}[suffix](path)
    rows = _all(FileSource(path, {}))
    assert rows["signup_id"].to_list() == ["b", "a", "c"]
    assert rows["plan"].to_list() == ["free", "pro", "team"]  # unknown columns carried through
    assert rows["signed_up_at"][0] == datetime(2026, 1, 1, 8, 0)


def test_watermark_skips_committed_rows_and_ties_break_on_id(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    pl.DataFrame(ROWS).write_csv(path)
    rows = _all(FileSource(path, {}), Cursor(datetime(2026, 1, 2), "a"))
    assert rows["signup_id"].to_list() == ["c"]


def test_batches_are_cut_by_size_and_cursor_follows_them(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    pl.DataFrame(ROWS).write_csv(path)
    batches = list(FileSource(path, {}).pending(Cursor(), 2))
    assert [b.height for b in batches] == [2, 1]
    assert last_cursor(batches[0], Cursor()) == Cursor(datetime(2026, 1, 2), "a")


@pytest.mark.parametrize("shuffled", [False, True])
def test_a_large_file_streams_in_batches_in_cursor_order(tmp_path: Path, shuffled: bool) -> None:
    """20,000 rows in batches of 1,000, in order whether the file is (streamed) or not (sorted first);
    a reader that stops after one batch leaves nothing running."""
    n = 20_000
    frame = pl.DataFrame(
        {
            "signup_id": [f"s{i:05d}" for i in range(n)],
            "email": [f"p{i}@acme.io" for i in range(n)],
            "signed_up_at": [f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(n)],
        }
    )
    path = tmp_path / "big.csv"
    (frame.sample(fraction=1.0, shuffle=True, seed=1) if shuffled else frame).write_csv(path)
    source = FileSource(path, {})
    batches = list(source.pending(Cursor(), 1000))
    assert [b.height for b in batches] == [1000] * 20
    rows = pl.concat(batches)
    assert rows["signup_id"].to_list() == frame["signup_id"].to_list()
    assert rows["_row"].min() == 2 and rows["_row"].max() == n + 1  # file lines: the header is line 1
    later = _all(source, Cursor(datetime(2026, 1, 1, 5, 0, 0), "s18000"), 1000)
    assert later["signup_id"].to_list() == frame["signup_id"].to_list()[18001:]

    first = source.pending(Cursor(), 1000)
    assert next(first).height == 1000
    first.close()
    assert not [t for t in threading.enumerate() if t.name == "leadq-source"]


def test_a_malformed_row_after_many_good_ones_is_named_by_its_line(tmp_path: Path) -> None:
    """The fast reader refuses the file; the row-by-row reader keeps every good row and names the bad one."""
    lines = ["signup_id,email,signed_up_at"]
    lines += [f"s{i},p{i}@acme.io,2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(500)]
    lines += ["s-bad,x@acme.io,2026-01-02T00:00:00,one too many"]
    path = tmp_path / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    rows = _all(FileSource(path, {}), batch=100)
    assert rows.height == 501
    bad = rows.filter(pl.col("_malformed").is_not_null())
    assert bad["_row"].to_list() == [502] and "4 fields where the header has 3" in bad["_malformed"][0]


def test_columns_are_mapped_from_settings(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    pl.DataFrame({"user_email": ["x@acme.io"], "created": ["2026-01-01"]}).write_csv(path)
    rows = _all(FileSource(path, {"email": "user_email", "signed_up_at": "created"}))
    assert rows["email"].to_list() == ["x@acme.io"]
    assert rows["signup_id"].to_list() == ["x@acme.io|2026-01-01"]  # derived, stable across runs


def test_missing_email_column_names_the_file_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("name,mail\nAna,ana@acme.io\n")
    with pytest.raises(SourceError) as err:
        FileSource(path, {}).check()
    assert str(path) in str(err.value) and "'email'" in str(err.value) and "mail" in str(err.value)


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="file is empty"):
        FileSource(path, {}).check()


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unsupported file type"):
        FileSource(tmp_path / "s.xlsx", {}).check()
    with pytest.raises(SourceError, match="file not found"):
        FileSource(tmp_path / "nope.csv", {}).check()


def test_non_utf8_bytes_do_not_break_the_read(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"email,first_name\nana@acme.io,Jos\xe9\nbob@acme.io,Bob\n")
    rows = _all(FileSource(path, {}))
    assert rows["email"].to_list() == ["ana@acme.io", "bob@acme.io"]
    assert rows["first_name"][0].startswith("Jos")


def test_sql_source_reads_a_mapped_table_incrementally(tmp_path: Path) -> None:
    db = tmp_path / "product.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table users (id integer, user_email text, created_at timestamp, plan text)")
        conn.executemany(
            "insert into users values (?, ?, ?, ?)",
            [(1, "a@acme.io", "2026-01-01 10:00:00", "pro"), (2, "b@acme.io", "2026-01-02 10:00:00", "free")],
        )
    source = SqlSource(
        f"sqlite:///{db}", "users", {"email": "user_email", "signed_up_at": "created_at", "signup_id": "id"}
    )
    source.check()
    rows = _all(source)
    assert rows["email"].to_list() == ["a@acme.io", "b@acme.io"]
    after = last_cursor(rows.head(1), Cursor())
    assert _all(source, after)["email"].to_list() == ["b@acme.io"]


def test_sql_source_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "product.db"
    sqlite3.connect(db).close()
    with pytest.raises(SourceError, match="table 'signups' not found"):
        SqlSource(f"sqlite:///{db}", "signups", {}).check()
