"""The incremental-load cursor: (signed_up_at, signup_id), compared as a pair.

A source hands out rows strictly after the stored watermark, in cursor order, so a
batch that was not committed is read again and a committed one never is. The id is
compared in the source column's own type (integer ids as integers: 2 < 10), and a
signup dated outside the plausible range (`in_range`) never moves the watermark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

TIMESTAMP = "signed_up_at"
ID = "signup_id"
CURSOR_ID = "_cursor_id"  # the signup id in the source's own type (Int64 or String), for ordering
EARLIEST = datetime(1990, 1, 1)  # before this, a signup time is a data error, not a signup


@dataclass(frozen=True)
class Cursor:
    """The position after the last committed signup; `None` fields mean 'from the start'."""

    signed_up_at: datetime | None = None
    signup_id: str | int | None = None

    @property
    def is_start(self) -> bool:
        return self.signed_up_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "signed_up_at": self.signed_up_at.isoformat() if self.signed_up_at else None,
            "signup_id": self.signup_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Cursor:
        if not data or not data.get("signed_up_at"):
            return cls()
        return cls(datetime.fromisoformat(data["signed_up_at"]), data.get("signup_id"))

    def typed_id(self, integer: bool) -> str | int | None:
        """The id as the column's type compares it (a watermark written as text before still works)."""
        if self.signup_id is None:
            return None
        if integer:
            try:
                return int(self.signup_id)
            except ValueError:
                return None
        return str(self.signup_id)

    def after(self, id_dtype: pl.DataType | type[pl.DataType] = pl.String, lookback_s: float = 0) -> pl.Expr:
        """Rows strictly after this cursor, and those of the last `lookback_s` seconds before it;
        rows with no timestamp always qualify."""
        ts, sid = pl.col(TIMESTAMP), pl.col(CURSOR_ID)
        if self.signed_up_at is None:
            return pl.lit(True)
        typed = self.typed_id(id_dtype.is_integer())
        same_time = (ts == self.signed_up_at) & (sid > typed) if typed is not None else pl.lit(False)
        later = (ts > self.signed_up_at) | same_time.fill_null(False)
        if lookback_s > 0:
            later = later | (ts >= self.signed_up_at - timedelta(seconds=lookback_s))
        return ts.is_null() | later

    def _key(self) -> tuple[datetime, str | int]:
        assert self.signed_up_at is not None
        return self.signed_up_at, self.signup_id if self.signup_id is not None else ""

    def max(self, other: Cursor) -> Cursor:
        """The later of two cursors: a watermark never moves back (a lookback re-read ends before it)."""
        if self.is_start:
            return other
        if other.is_start:
            return self
        mine, theirs = self._key(), other._key()
        if mine[0] != theirs[0]:
            return self if mine[0] > theirs[0] else other
        if type(mine[1]) is not type(theirs[1]):
            return other  # ids of another type: the newer read wins
        return self if mine[1] >= theirs[1] else other  # type: ignore[operator]


def in_range(now: datetime, max_future_s: float) -> pl.Expr:
    """Whether a signup's time is plausible: not before 1990, not more than `max_future_s` after `now`.

    A null time is in range (it is judged elsewhere): only a real, implausible time is out."""
    ts = pl.col(TIMESTAMP)
    return ts.is_null() | ((ts >= EARLIEST) & (ts <= now + timedelta(seconds=max_future_s)))


def last_cursor(
    batch: pl.DataFrame, previous: Cursor, now: datetime | None = None, max_future_s: float = 300
) -> Cursor:
    """The cursor after a batch in cursor order: its last dated row in range (a row dated in the far
    future is a dead letter and must not move the watermark), never before `previous`."""
    dated = batch.filter(pl.col(TIMESTAMP).is_not_null())
    if now is not None:
        dated = dated.filter(in_range(now, max_future_s))
    if dated.is_empty():
        return previous
    row = dated.row(-1, named=True)
    value = row[CURSOR_ID] if CURSOR_ID in row else row[ID]
    return previous.max(Cursor(row[TIMESTAMP], value if isinstance(value, int) else str(value)))
