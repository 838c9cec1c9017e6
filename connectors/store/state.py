"""Run bookkeeping: key-value state (watermarks, the SDR rotation), runs, and who was notified."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.sources.cursor import Cursor
from connectors.store.engine import StoreEngine, chunks, table_of, utc_now, write_state
from connectors.store.models import (
    Notification,
    Run,
    SyncState,
)


class StateRecords(StoreEngine):
    def state(self, key: str) -> Any:
        with self.engine.connect() as conn:
            table = table_of(SyncState)
            value = conn.execute(sa.select(table.c.value).where(table.c.key == key)).scalar()
        return json.loads(value) if value is not None else None

    def set_state(self, key: str, value: Any) -> None:
        with self.engine.begin() as conn:
            write_state(conn, key, value)

    def watermark(self, source_key: str) -> Cursor:
        return Cursor.from_json(self.state(f"watermark:{source_key}"))

    def commit_watermark(self, source_key: str, cursor: Cursor) -> None:
        """Advance the watermark; called only after the batch is committed to the CRM."""
        with self.engine.begin() as conn:
            write_state(conn, f"watermark:{source_key}", cursor.to_json())

    def rotation_positions(self) -> dict[str, int]:
        positions = self.state("rotation") or {}
        return {str(k): int(v) for k, v in positions.items()}

    # --- reads --------------------------------------------------------------------

    def mark_crashed_runs(self, current_run: str) -> list[str]:
        """Runs still `running` that are not this one: they died (the caller holds the writer lock, so no
        other run is writing). They become `crashed`, with the time it was noticed."""
        table = table_of(Run)
        with self.engine.begin() as conn:
            stale = [
                row[0]
                for row in conn.execute(
                    sa.select(table.c.run_id).where(table.c.status == "running", table.c.run_id != current_run)
                )
            ]
            if stale:
                conn.execute(
                    sa.update(table).where(table.c.run_id.in_(stale)).values(status="crashed", finished_at=utc_now())
                )
        return stale

    def record_run(self, run: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            self._upsert(conn, Run, [run], ["run_id"])

    def notified(self, emails: Sequence[str], kind: str) -> set[str]:
        """Which of these leads already had a `kind` notification."""
        table = table_of(Notification)
        found: set[str] = set()
        for chunk in chunks(list(emails)):
            query = sa.select(table.c.email).where(self._any_of(table.c.email, chunk), table.c.kind == kind)
            found.update(row[0] for row in self._fetch(query))
        return found

    def mark_notified(self, emails: Sequence[str], kind: str, run_id: str) -> None:
        rows = [{"email": e, "kind": kind, "run_id": run_id, "at": utc_now()} for e in emails]
        with self.engine.begin() as conn:
            self._upsert(conn, Notification, rows, ["email", "kind"], update=False)
