"""Turn whatever a source holds into canonical signup columns, in cursor order.

Every value stays text until prepare validates it, so one odd row never breaks a
read; only `signed_up_at` is parsed here because the cursor needs it.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

from connectors.domain import EMAIL
from connectors.errors import SourceError
from connectors.sources.cursor import CURSOR_ID, ID, TIMESTAMP

ROW = "_row"  # 1-based row number in the source, for error messages
RAW_TIMESTAMP = "_signed_up_at_raw"

_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def canonicalise(frame: Frame, columns: dict[str, str], where: str, sort: bool = True) -> Frame:
    """Rename mapped columns, check `email` exists, type the cursor columns, sort (unless the rows
    come in cursor order already, as a SQL source's do: the database's order is the cursor's).

    Works alike on a frame and on a lazy scan of a file (then nothing is read here but the header).
    The cost is linear in cells: the schema is read once, never per column."""
    names = frame.collect_schema().names()
    renames = {source: canonical for canonical, source in columns.items() if source in names and source != canonical}
    frame = frame.rename(renames)
    names = frame.collect_schema().names()
    if EMAIL not in names:
        mapped = columns.get(EMAIL, EMAIL)
        found = ", ".join(names[:20]) or "no columns"
        raise SourceError(f"{where}: required column '{mapped}' (email) not found; columns are: {found}")
    if ROW not in names:
        frame = frame.with_row_index(ROW, offset=1)
    schema = frame.collect_schema()
    integer_id = ID in schema and schema[ID].is_integer()
    if integer_id:
        frame = frame.with_columns(pl.col(ID).cast(pl.Int64).alias(CURSOR_ID))
    frame = frame.with_columns(
        pl.col(name).cast(pl.String)
        for name, dtype in schema.items()
        if name not in (ROW, CURSOR_ID) and not dtype.is_temporal()
    )
    if TIMESTAMP not in schema:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(TIMESTAMP))
    frame = frame.with_columns(
        pl.col(TIMESTAMP).cast(pl.String).alias(RAW_TIMESTAMP),
        _parse_timestamp(schema.get(TIMESTAMP, pl.String()), TIMESTAMP),
    )
    if ID not in schema:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(ID))
    derived = pl.concat_str(
        pl.col(EMAIL).str.strip_chars().str.to_lowercase(), pl.col(RAW_TIMESTAMP).fill_null(""), separator="|"
    )
    frame = frame.with_columns(pl.coalesce(pl.col(ID).str.strip_chars().replace("", None), derived).alias(ID))
    if not integer_id:
        frame = frame.with_columns(pl.col(ID).alias(CURSOR_ID))
    return frame.sort(CURSOR_ORDER, nulls_last=False, maintain_order=True) if sort else frame


CURSOR_ORDER = [TIMESTAMP, CURSOR_ID]


def out_of_cursor_order() -> pl.Expr:
    """True when some row comes before the row above it in cursor order (time, nulls first; then id)."""
    ts, sid = pl.col(TIMESTAMP), pl.col(CURSOR_ID)
    before, before_id = ts.shift(1), sid.shift(1)
    back_in_time = (before > ts) | (ts.is_null() & before.is_not_null())
    back_in_id = ((before == ts) | (before.is_null() & ts.is_null())) & (before_id > sid)
    return (back_in_time | back_in_id).fill_null(False).any()


def _parse_timestamp(dtype: pl.DataType, name: str) -> pl.Expr:
    """Timestamps as naive UTC; several ISO-8601 spellings are accepted, anything else is null."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return (
            (col.dt.convert_time_zone("UTC") if dtype.time_zone else col)
            .dt.replace_time_zone(None)
            .cast(pl.Datetime("us"))
        )
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us"))
    text = col.cast(pl.String).str.strip_chars()
    parsed = [text.str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us") for f in _AWARE_FORMATS]
    parsed += [
        text.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC") for f in _NAIVE_FORMATS
    ]
    return pl.coalesce(parsed).dt.replace_time_zone(None).alias(name)
