"""Which prepared leads the store already holds in a newer (or the same) version, and skips.

A lead's stored signup is the newest one seen, so a row older than it (a backfill over
old days, a file with rows out of order) never overwrites it. A row the run reads again
only because it lies behind the watermark (`[source] lookback_s`) is skipped when the
store holds it already; so is a row with no signup time whose lead is known. A replay
(a review decision, a dead-letter retry) sends stored leads through on purpose: only
older rows are skipped there.
"""

from __future__ import annotations

import polars as pl

from connectors.domain import INPUT_HASH
from connectors.sources.cursor import TIMESTAMP

BEHIND = "_behind"  # the row lies at or before the watermark: it is read again only for the lookback
OUTCOME = "outcome"  # stale: older than the stored signup; known: the store holds it already


def split_known(leads: pl.DataFrame, stored: pl.DataFrame, replay: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(leads to decide, leads skipped with their `outcome`); `stored` holds (email, signed_up_at)
    of the leads in the store."""
    hashes = pl.col("input_hash") if "input_hash" in stored.columns else pl.lit(None, dtype=pl.String)
    frame = leads.join(
        stored.select(
            "email", pl.col(TIMESTAMP).alias("_stored_at"), hashes.alias("_stored_hash"), pl.lit(True).alias("_known")
        ),
        on="email",
        how="left",
    )
    ts, stored_at, known = pl.col(TIMESTAMP), pl.col("_stored_at"), pl.col("_known").fill_null(False)
    behind = pl.col(BEHIND).fill_null(False) if BEHIND in frame.columns else pl.lit(False)
    stale = known & (ts < stored_at).fill_null(False)
    # a CRM record that comes back saying what it said (leadq's own write touched it) is not news
    unchanged = (
        (pl.col(INPUT_HASH) == pl.col("_stored_hash")).fill_null(False)
        if INPUT_HASH in frame.columns
        else pl.lit(False)
    )
    again = known & (ts.is_null() | (behind & (ts <= stored_at).fill_null(False)) | unchanged)
    again = again & pl.lit(not replay)
    outcome = pl.when(stale).then(pl.lit("stale")).when(again).then(pl.lit("known")).otherwise(None)
    frame = frame.with_columns(outcome.alias(OUTCOME)).drop("_stored_at", "_stored_hash", "_known")
    skipped = pl.col(OUTCOME).is_not_null()
    return frame.filter(~skipped).drop(OUTCOME, BEHIND, strict=False), frame.filter(skipped).drop(BEHIND, strict=False)
