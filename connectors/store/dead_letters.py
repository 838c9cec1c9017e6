"""Dead letters: source rows that could not become leads and records the CRM refused."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import sqlalchemy as sa

from connectors.store.engine import StoreEngine, chunks, table_of
from connectors.store.models import (
    DeadLetter,
    Lead,
)


class DeadLetterRecords(StoreEngine):
    def known_dead_letters(self, keys: Sequence[str]) -> set[str]:
        """Which of these dead-letter keys are recorded already (the row was rejected by an earlier run)."""
        table = table_of(DeadLetter)
        found: set[str] = set()
        for chunk in chunks(list(keys)):
            found.update(row[0] for row in self._fetch(sa.select(table.c.key).where(self._any_of(table.c.key, chunk))))
        return found

    def dead_letters(
        self,
        crm: bool | None = None,
        limit: int = 100_000,
        newest_first: bool = False,
        keys: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """Dead letters: all, only the CRM's refusals (crm=True) or only source rows (crm=False); oldest
        first unless `newest_first`; only these `keys` when given."""
        table = table_of(DeadLetter)
        order = (table.c.created_at.desc(), table.c.key) if newest_first else (table.c.created_at, table.c.key)
        query = sa.select(table).order_by(*order).limit(limit)
        if crm is not None:
            from_crm = table.c.source_key.like("crm:%")
            query = query.where(from_crm if crm else ~from_crm)
        if keys is not None:
            query = query.where(table.c.key.in_(list(keys)))
        return self.read(query)

    def clear_fixed(self, keys: Sequence[str], run_id: str) -> int:
        """Delete the retried dead letters that run `run_id` did not refuse again and recorded as leads."""
        table, lead = table_of(DeadLetter), table_of(Lead)
        email = sa.func.substr(table.c.key, sa.func.length(table.c.source_key) + 2)
        recorded = sa.select(lead.c.email).where(lead.c.updated_run == run_id)
        by_crm = table.c.source_key.like("crm:%") & email.in_(recorded)
        by_row = ~table.c.source_key.like("crm:%") & table.c.signup_id.in_(
            sa.select(lead.c.signup_id).where(lead.c.updated_run == run_id)
        )
        deleted = 0
        with self.engine.begin() as conn:
            for chunk in chunks(list(keys)):
                stmt = sa.delete(table).where(
                    self._any_of(table.c.key, chunk), table.c.run_id != run_id, by_crm | by_row
                )
                deleted += conn.execute(stmt).rowcount
        return deleted
