"""What the CRM sources share: records read page by page become batches cut between two cursor times.

A batch never ends inside the records that share one time: the watermark after it is that time with
the batch's last id, and a record of the same time with a smaller id that came on the next page
would then be skipped for good. Each record is {"id", "time" (any ordered value), "row", "hash"}.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

from connectors.domain import CRM_ID, INPUT_HASH
from connectors.sources.cursor import ID, TIMESTAMP
from connectors.sources.frame import canonicalise


def cut_between_times(pages: Iterable[list[dict[str, Any]]], batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Batches of about `batch_size` records from pages sorted by time, each ending with a whole time."""
    held: list[dict[str, Any]] = []
    for page in pages:
        held += page
        if len(held) >= batch_size and held[-1]["time"] > held[0]["time"]:
            last = held[-1]["time"]  # the records of the last time may go on on the next page
            yield [r for r in held if r["time"] < last]
            held = [r for r in held if r["time"] == last]
    if held:
        yield held


def input_hash(values: Iterable[tuple[str, Any]]) -> str:
    """A short hash of a record's input values: equal when the record says what it said."""
    return hashlib.sha256(repr(sorted(values)).encode()).hexdigest()[:32]


def signup_frame(records: list[dict[str, Any]], source: str, key: str, id_dtype: pl.DataType) -> pl.DataFrame:
    """Canonical signup rows, each with its CRM record id and input hash."""
    frame = pl.DataFrame(
        [{**r["row"], CRM_ID: r["id"], INPUT_HASH: r["hash"], "source": source} for r in records],
        schema_overrides={ID: id_dtype, TIMESTAMP: pl.Datetime("us")},
        infer_schema_length=None,
    )
    return canonicalise(frame, {}, key)
