"""The run summary: counts a person checks after a run, built up batch by batch."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from connectors.crm import CrmPlan
from connectors.errors import LedgerError

LEDGER = ("processed", "leads", "duplicates", "rejected", "skipped_known")


@dataclass
class RunTotals:
    processed: int = 0
    rejected: int = 0
    duplicates: int = 0
    skipped_known: int = 0
    leads: int = 0
    qualified: int = 0
    batches: int = 0
    by_tier: Counter[str] = field(default_factory=Counter)
    by_queue: Counter[str] = field(default_factory=Counter)
    reject_reasons: Counter[str] = field(default_factory=Counter)
    step_seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    domains: set[str] = field(default_factory=set)
    by_method: Counter[str] = field(default_factory=Counter)
    needs_review: int = 0
    held: int = 0
    held_reasons: Counter[str] = field(default_factory=Counter)
    waiting: Counter[str] = field(default_factory=Counter)  # queue -> leads left unowned: nobody could take them
    crm_written: int = 0
    crm_failed: int = 0
    crm_stopped: str | None = None
    crm_plan: CrmPlan = field(default_factory=CrmPlan)

    def add_batch(
        self,
        signups: int,
        routed: pl.DataFrame,
        rejects: pl.DataFrame,
        qualified_tiers: list[str],
        held: pl.DataFrame | None = None,
    ) -> None:
        """Count one batch: `routed` leads went on to queues and the CRM, `held` ones wait for a person."""
        self.batches += 1
        self.processed += signups
        self.rejected += rejects.height
        if held is not None and not held.is_empty():
            self.held += held.height
            why = held["hold_reason"].str.split("; ").explode().str.replace(r"^account \S+", "account")
            self.held_reasons.update(dict(why.str.replace(r"^score \d+", "score").value_counts().iter_rows()))
        queues = routed.filter(pl.col("queue").is_not_null())["queue"].value_counts()
        self.by_queue.update(dict(queues.iter_rows()))
        if "waiting" in routed.columns:
            self.waiting.update(dict(routed.filter("waiting")["queue"].value_counts().iter_rows()))
        leads = pl.concat([routed, held], how="diagonal_relaxed") if held is not None else routed
        self.leads += leads.height
        self.domains.update(leads["company_domain"].drop_nulls().unique().to_list())
        self.qualified += leads.filter(pl.col("tier").is_in(qualified_tiers)).height
        self.by_tier.update(dict(leads["tier"].value_counts().iter_rows()))
        self.by_method.update(dict(leads["method"].value_counts().iter_rows()))
        self.needs_review += int(leads["needs_review"].sum())
        # the reason's first words ("email 'x' is not valid" → "email is not valid") group alike rejects
        kinds = rejects["reason"].str.replace(r" '[^']*'", "").str.replace(r" is \d+ characters long.*", " is too long")
        self.reject_reasons.update(dict(kinds.value_counts().iter_rows()))

    def ledger(self) -> dict[str, int]:
        """The run's books: every row read is a lead, a duplicate, a reject or a row already known."""
        return {name: getattr(self, name) for name in LEDGER}

    def check_books(self) -> None:
        """processed = leads + duplicates + rejected + skipped_known over the run, or LedgerError."""
        check_books(self.ledger(), f"the run (after {self.batches} batches)")

    def as_dict(self, run_id: str, duration_s: float, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "ledger": {**self.ledger(), "balanced": True},
            "processed": self.processed,
            "rejected": self.rejected,
            "qualified": self.qualified,
            "leads": self.leads,
            "company_domains": len(self.domains),
            "duplicates": self.duplicates,
            "skipped_known": self.skipped_known,
            "by_tier": dict(sorted(self.by_tier.items())),
            "by_queue": dict(sorted(self.by_queue.items())),
            "by_method": dict(sorted(self.by_method.items())),
            "needs_review": self.needs_review,
            "held_for_review": self.held,
            "held_reasons": dict(self.held_reasons.most_common()),
            "waiting": sum(self.waiting.values()),
            "waiting_by_queue": dict(sorted(self.waiting.items())),
            "reject_reasons": dict(self.reject_reasons.most_common()),
            "batches": self.batches,
            "step_seconds": {k: round(v, 3) for k, v in self.step_seconds.items()},
            "duration_s": round(duration_s, 3),
            "crm_written": self.crm_written,
            "crm_failed": self.crm_failed,
            "crm_stopped": self.crm_stopped,
            **extra,
        }


def check_books(books: dict[str, int], what: str) -> None:
    """Raise LedgerError unless processed = leads + duplicates + rejected + skipped_known."""
    accounted = books["leads"] + books["duplicates"] + books["rejected"] + books["skipped_known"]
    if accounted != books["processed"]:
        terms = ", ".join(f"{k} {books[k]}" for k in LEDGER)
        raise LedgerError(
            f"the books of {what} do not balance: {terms}; {books['processed'] - accounted} rows are "
            "unaccounted for. This is a bug in leadq, and the run stops here; please report it with this line"
        )
