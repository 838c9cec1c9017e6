"""Signups from a CSV, Parquet or JSON-lines file, read with polars.

Rows are numbered as a person finds them in the file: CSV by line (the header is line 1),
JSON lines by line, Parquet by row. A CSV that polars' fast reader refuses is read again
row by row, so one malformed row becomes a dead letter naming its line, not a failed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import polars as pl

from connectors.errors import SourceError
from connectors.sources.cursor import CURSOR_ID, TIMESTAMP, Cursor
from connectors.sources.frame import ROW, canonicalise
from connectors.sources.lenient_csv import read_lenient

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".jsonl": "ndjson", ".ndjson": "ndjson"}


class FileSource:
    """Reads the whole file once per run; `pending` yields the rows after the watermark."""

    def __init__(self, path: Path, columns: dict[str, str], lookback_s: float = 0) -> None:
        self.path = path
        self.columns = columns
        self.lookback_s = lookback_s
        self.key = f"file:{path.resolve()}"

    def check(self) -> None:
        """Fail fast, before a run starts, on a file that is missing, empty or has no email column."""
        header = self._read(n_rows=0)
        canonicalise(header, self.columns, str(self.path))

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        frame = canonicalise(self._read(), self.columns, str(self.path))
        frame = frame.filter(after.after(frame.schema[CURSOR_ID], self.lookback_s))
        yield from frame.iter_slices(batch_size)

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        frame = canonicalise(self._read(), self.columns, str(self.path))
        ts = pl.col(TIMESTAMP)
        yield from frame.filter((ts >= start) & (ts < end)).iter_slices(batch_size)

    def _read(self, n_rows: int | None = None) -> pl.DataFrame:
        frame = read_table(self.path, n_rows, needs="a header row with at least an 'email' column", lenient=True)
        if ROW in frame.columns:
            return frame
        first = 2 if SUFFIXES[self.path.suffix.lower()] == "csv" else 1
        return frame.with_row_index(ROW, offset=first)


def read_table(
    path: Path, n_rows: int | None = None, needs: str = "a header row", lenient: bool = False
) -> pl.DataFrame:
    """A CSV (every column as text), Parquet or JSON-lines file; SourceError naming the file otherwise.

    `lenient`: a CSV with malformed rows is read row by row; those rows come back with their line
    (`_row`) and what is wrong (`_malformed`), and only a file that cannot be read at all fails."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SourceError(f"{path}: unsupported file type '{path.suffix}' (expected .csv, .parquet or .jsonl)")
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty (expected {needs})")
    try:
        if kind == "csv":
            separator = "\t" if path.suffix.lower() == ".tsv" else ","
            try:
                return pl.read_csv(path, infer_schema=False, encoding="utf8-lossy", separator=separator, n_rows=n_rows)
            except pl.exceptions.ComputeError:
                if not lenient:
                    raise
                return read_lenient(path, separator)
        if kind == "parquet":
            return pl.read_parquet(path, n_rows=n_rows)
        return pl.read_ndjson(path, infer_schema_length=None, n_rows=n_rows)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot be read as {kind}: {_first_line(exc)}") from exc


YES = ("1", "true", "yes", "converted", "won", "qualified")
NO = ("0", "false", "no", "lost", "unqualified")


def yes_no(frame: pl.DataFrame, column: str, path: Path, required: bool = False) -> pl.Series:
    """A label column as 0/1 (Int8; a blank cell is null unless `required`); any other value is a
    SourceError naming the file, the first such row (header = row 1) and the value."""
    text = frame[column].cast(pl.String).str.strip_chars().str.to_lowercase().replace("", None)
    known = text.is_in(YES + NO).fill_null(False)
    bad = frame.with_row_index("row", offset=2).filter(~known if required else text.is_not_null() & ~known)
    if not bad.is_empty():
        row = bad.row(0, named=True)
        value = "empty" if row[column] is None or not str(row[column]).strip() else repr(row[column])
        raise SourceError(
            f"{path}: row {row['row']}: column '{column}' is {value}; expected 1/0, true/false, "
            f"yes/no, converted/won or lost ({bad.height} such rows)"
        )
    return text.is_in(YES).cast(pl.Int8).alias(column)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
