"""The incremental-load cursor: (signed_up_at, signup_id), compared as a pair.

A source hands out rows strictly after the stored watermark, in cursor order, so a
batch that was not committed is read again and a committed one never is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

TIMESTAMP = "signed_up_at"
ID = "signup_id"


@dataclass(frozen=True)
class Cursor:
    """The position after the last committed signup; `None` fields mean 'from the start'."""

    signed_up_at: datetime | None = None
    signup_id: str | None = None

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

    def after(self) -> pl.Expr:
        """Rows strictly after this cursor; rows with no timestamp always qualify."""
        ts, sid = pl.col(TIMESTAMP), pl.col(ID)
        if self.is_start:
            return pl.lit(True)
        later = (ts > self.signed_up_at) | ((ts == self.signed_up_at) & (sid > (self.signup_id or "")))
        return ts.is_null() | later


def last_cursor(batch: pl.DataFrame, previous: Cursor) -> Cursor:
    """The cursor after a batch that is sorted by (signed_up_at, signup_id)."""
    dated = batch.filter(pl.col(TIMESTAMP).is_not_null())
    if dated.is_empty():
        return previous
    row = dated.row(-1, named=True)
    return Cursor(row[TIMESTAMP], str(row[ID]))
