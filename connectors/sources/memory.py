"""Signups already in memory: the leads a review or a dead-letter retry sends through the pipeline again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import polars as pl

from connectors.sources.cursor import TIMESTAMP, Cursor
from connectors.sources.frame import canonicalise


class FrameSource:
    """Every row, whatever the watermark (`pending` ignores it); the key names what the rows stand for."""

    def __init__(self, frame: pl.DataFrame, key: str) -> None:
        self.key = key
        self.frame = canonicalise(frame, {}, key)

    def usage(self) -> dict[str, Any]:
        return {}

    def check(self) -> None:
        return None

    def pending(self, after: Cursor, batch_size: int) -> Iterator[pl.DataFrame]:
        yield from self.frame.iter_slices(batch_size)

    def between(self, start: datetime, end: datetime, batch_size: int) -> Iterator[pl.DataFrame]:
        ts = pl.col(TIMESTAMP)
        yield from self.frame.filter((ts >= start) & (ts < end)).iter_slices(batch_size)
