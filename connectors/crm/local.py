"""The embedded CRM: the store's lead, company and assignment tables are the system of record."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from connectors.store import Store


@dataclass(frozen=True)
class SyncResult:
    written: int
    failed: int = 0


class LocalCrm:
    name = "local"

    def __init__(self, store: Store) -> None:
        self.store = store

    def publish(
        self, leads: pl.DataFrame, rejects: pl.DataFrame, positions: dict[str, int], run_id: str, source_key: str
    ) -> SyncResult:
        """Upsert one batch in one transaction; publishing it again changes nothing."""
        self.store.record_batch(leads, rejects, positions, run_id, source_key)
        return SyncResult(written=leads.height)
