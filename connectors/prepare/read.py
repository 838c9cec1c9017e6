"""Prepare what a run read: validate and normalise, then skip what the store already holds.

Pure batch logic (no Prefect): the prepare step runs it per batch, and `leadq run` asks it first
whether a run would find anything new at all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from connectors.prepare import Prepared, PrepareRules, prepare_batch
from connectors.prepare.known import BEHIND, OUTCOME, split_known
from connectors.sources.cursor import CURSOR_ID, Cursor
from connectors.store import Store
from connectors.store.rows import dead_letter_keys


@dataclass(frozen=True)
class ReadScope:
    """What a run reads: `started_at` (naive UTC) bounds plausible signup times; a live run's starting
    `watermark` tells the rows it reads again for the lookback; a `replay` sends stored leads again."""

    started_at: datetime
    watermark: Cursor | None = None
    replay: bool = False


def prepare_read(
    raw: pl.DataFrame, rules: PrepareRules, store: Store | None, source_key: str, scope: ReadScope
) -> tuple[Prepared, int]:
    """The batch validated and normalised, less what the store (if there is one yet) holds already
    in this or a newer version; and how many rows that skipped."""
    if scope.watermark is not None and not scope.watermark.is_start:
        raw = raw.with_columns((~scope.watermark.after(raw.schema[CURSOR_ID])).alias(BEHIND))
    prepared = prepare_batch(raw, rules, scope.started_at)
    if store is None:
        return dataclasses.replace(prepared, leads=prepared.leads.drop(BEHIND, strict=False)), 0
    leads, skipped = split_known(prepared.leads, store.stored_signups(prepared.leads["email"].to_list()), scope.replay)
    outcome = dict(skipped.select("email", OUTCOME).iter_rows())
    seen = prepared.seen.with_columns(
        pl.when(pl.col(OUTCOME) == "lead")
        .then(pl.col("email").replace_strict(outcome, default="lead", return_dtype=pl.String))
        .otherwise(pl.col(OUTCOME))
        .alias(OUTCOME)
    )
    if scope.replay:  # the rows come from the store (a review, a retry), not from a source: nothing new was read
        seen = seen.clear()
    rejects = prepared.rejects
    if not scope.replay and not rejects.is_empty():
        keys = dead_letter_keys(rejects, source_key)
        rejects = rejects.filter(~keys.is_in(list(store.known_dead_letters(keys.to_list()))))
    skipped_rows = skipped.height + prepared.rejects.height - rejects.height
    return Prepared(leads, rejects, prepared.duplicates, seen), skipped_rows
