"""Signups from a CSV, Parquet or JSON-lines file, read with polars in batches.

A run scans the file lazily: only the rows after the watermark are read (the filter is pushed
into the scan), and they come out in batches of `batch_size`, streamed when the file is in
cursor order already (a product's export usually is), else sorted first (holding the pending
rows, not the file). Rows are numbered as a person finds them in the file: CSV by line (the
header is line 1), JSON lines by line, Parquet by row. A CSV that polars' fast reader refuses
is read again row by row, so one malformed row becomes a dead letter naming its line, not a
failed run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from connectors.errors import SourceError
from connectors.sources.cursor import CURSOR_ID, TIMESTAMP, Cursor
from connectors.sources.frame import CURSOR_ORDER, ROW, canonicalise, out_of_cursor_order
from connectors.sources.lenient_csv import read_lenient

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".jsonl": "ndjson", ".ndjson": "ndjson"}


class FileSource:
    """`pending` yields the rows after the watermark, `between` those of a time window, in batches."""

    def __init__(self, path: Path, columns: dict[str, str], lookback_s: float = 0) -> None:
        self.path = path
        self.columns = columns
        self.lookback_s = lookback_s
        self.key = f"file:{path.resolve()}"

    def usage(self) -> dict[str, Any]:
        return {}

    def check(self) -> None:
        """Fail fast, before a run starts, on a file that is missing, empty or has no email column."""
        header = self._read(n_rows=0)
        canonicalise(header, self.columns, str(self.path))

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        yield from self._batches(lambda id_dtype: after.after(id_dtype, self.lookback_s), batch_size)

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        ts = pl.col(TIMESTAMP)
        yield from self._batches(lambda _: (ts >= start) & (ts < end), batch_size)

    def _batches(self, keep: Callable[[pl.DataType], pl.Expr], batch_size: int) -> Iterator[pl.DataFrame]:
        """The rows `keep` selects, in cursor order, a batch at a time."""
        try:
            scan = canonicalise(self._scan(), self.columns, str(self.path), sort=False)
            rows = scan.filter(keep(scan.collect_schema()[CURSOR_ID]))
            if rows.select(out_of_cursor_order()).collect(engine="streaming").item():
                rows = rows.sort(CURSOR_ORDER, nulls_last=False, maintain_order=True)
        except pl.exceptions.ComputeError:
            # polars' fast reader refuses the file: read it whole, row by row, malformed rows named
            frame = canonicalise(self._read(), self.columns, str(self.path))
            yield from frame.filter(keep(frame.schema[CURSOR_ID])).iter_slices(batch_size)
            return
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            raise SourceError(f"{self.path}: cannot be read: {_first_line(exc)}") from exc
        # the check above read the whole file: a malformed one has failed there, before any batch was handed on
        yield from streamed(rows, batch_size)

    def _scan(self) -> pl.LazyFrame:
        """The file as a lazy scan, every column as text (as `read_table` reads it), rows numbered."""
        read_table(self.path, n_rows=0, needs="a header row with at least an 'email' column")  # names the file's fault
        kind = SUFFIXES[self.path.suffix.lower()]
        if kind == "csv":
            separator = "\t" if self.path.suffix.lower() == ".tsv" else ","
            scan = pl.scan_csv(self.path, infer_schema=False, encoding="utf8-lossy", separator=separator)
            return scan.with_row_index(ROW, offset=2)
        if kind == "parquet":
            return pl.scan_parquet(self.path).with_row_index(ROW, offset=1)
        return pl.scan_ndjson(self.path, infer_schema_length=None).with_row_index(ROW, offset=1)

    def _read(self, n_rows: int | None = None) -> pl.DataFrame:
        frame = read_table(self.path, n_rows, needs="a header row with at least an 'email' column", lenient=True)
        if ROW in frame.columns:
            return frame
        first = 2 if SUFFIXES[self.path.suffix.lower()] == "csv" else 1
        return frame.with_row_index(ROW, offset=first)


_END = object()


def streamed(rows: pl.LazyFrame, batch_size: int, ahead: int = 2) -> Iterator[pl.DataFrame]:
    """The query's rows, `batch_size` at a time, computed by polars' streaming engine at most
    `ahead` batches before the consumer: the engine hands each batch to a bounded queue and waits
    while it is full, so the file is never held whole.

    A consumer that stops early (a CRM limit, a first batch that answers a question) lets the
    engine run to the end, discarding: asking polars to stop mid-stream could leave its thread hung."""
    handoff: queue.Queue[object] = queue.Queue(maxsize=ahead)
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            rows.sink_batches(handoff.put, chunk_size=batch_size, engine="streaming")
        except BaseException as exc:  # handed to the consumer, raised there
            failed.append(exc)
        finally:
            handoff.put(_END)

    worker = threading.Thread(target=produce, name="leadq-source", daemon=True)
    worker.start()
    finished = False
    try:
        while (item := handoff.get()) is not _END:
            assert isinstance(item, pl.DataFrame)
            yield from item.iter_slices(batch_size)
        finished = True
        if failed:
            raise failed[0]
    finally:
        while not finished and handoff.get() is not _END:
            pass
        worker.join()


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
