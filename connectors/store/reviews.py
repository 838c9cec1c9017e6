"""Leads held for a person, and the decisions people made about them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa

from connectors.store.engine import StoreEngine, chunks, table_of, utc_now
from connectors.store.models import (
    Label,
    Review,
)


class ReviewRecords(StoreEngine):
    def reviews(self, status: str | None = "pending", limit: int = 1000) -> pl.DataFrame:
        """Reviews, oldest first; `status` None for all."""
        table = table_of(Review)
        query = sa.select(table).order_by(table.c.held_at, table.c.email).limit(limit)
        if status is not None:
            query = query.where(table.c.status == status)
        return self.read(query)

    def decided_reviews(self, emails: Sequence[str]) -> pl.DataFrame:
        """The decisions people made on these leads; they stand over leadq's own in every later run."""
        table = table_of(Review)
        columns = ["email", "status", "decided_by", "why", "tier_override", "queue_override", "owner_override"]
        rows: list[tuple[Any, ...]] = []
        for chunk in chunks(emails):
            query = sa.select(*(table.c[c] for c in columns)).where(
                self._any_of(table.c.email, chunk), table.c.status != "pending"
            )
            rows += self._fetch(query)
        return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String), orient="row")

    def decide(self, decisions: list[dict[str, Any]], run_id: str | None = None) -> list[str]:
        """Record people's decisions on pending reviews, each also as a labelled example; one transaction.

        A decision names `email`, `decision` (approved | rejected), `who`, `why` and optionally `tier`,
        `queue`, `owner`. Returns the emails decided; raises ValueError naming a lead that is not pending."""
        table, now = table_of(Review), utc_now()
        emails = [d["email"] for d in decisions]
        with self.engine.begin() as conn:
            pending = {
                row.email: row
                for row in conn.execute(sa.select(table).where(table.c.email.in_(emails), table.c.status == "pending"))
            }
            missing = [e for e in emails if e not in pending]
            anonymous = [d["email"] for d in decisions if not str(d.get("who") or "").strip()]
            if anonymous:
                raise ValueError(f"no reviewer given for {', '.join(anonymous)}: every decision records who made it")
            if missing:
                raise ValueError(f"not waiting for review: {', '.join(missing)} (see `leadq review list`)")
            labels = []
            for d in decisions:
                held = pending[d["email"]]
                label_tier = "disqualified" if d["decision"] == "rejected" else d.get("tier") or held.tier
                conn.execute(
                    sa.update(table)
                    .where(table.c.email == d["email"])
                    .values(
                        status=d["decision"],
                        decided_by=d["who"],
                        decided_at=now,
                        why=d["why"],
                        tier_override=d.get("tier"),
                        queue_override=d.get("queue"),
                        owner_override=d.get("owner"),
                        decided_run=run_id,
                    )
                )
                labels.append(
                    {
                        "email": d["email"],
                        "decision": d["decision"],
                        "predicted_tier": held.tier,
                        "label_tier": label_tier,
                        "score": held.score,
                        "queue": d.get("queue") or held.queue,
                        "owner": d.get("owner"),
                        "icp_version": held.icp_version,
                        "who": d["who"],
                        "why": d["why"],
                        "at": now,
                    }
                )
            conn.execute(sa.insert(table_of(Label)), labels)
        return emails

    def pending_reviews(self, emails: Sequence[str]) -> set[str]:
        """Which of these leads wait for a person."""
        table = table_of(Review)
        found: set[str] = set()
        for chunk in chunks(list(emails)):
            query = sa.select(table.c.email).where(self._any_of(table.c.email, chunk), table.c.status == "pending")
            found.update(row[0] for row in self._fetch(query))
        return found

    def decided_in_run(self, run_id: str) -> int:
        table = table_of(Review)
        query = sa.select(sa.func.count()).select_from(table).where(table.c.decided_run == run_id)
        return int(self._fetch(query)[0][0])

    def unapplied_decisions(self) -> list[str]:
        """Leads a person decided on that no run has routed and written since."""
        table = table_of(Review)
        query = sa.select(table.c.email).where(table.c.status != "pending", table.c.applied_run.is_(None))
        return [row[0] for row in self._fetch(query)]
