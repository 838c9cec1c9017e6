"""Human review: which leads wait for a person, and how a person's decision overrides leadq's.

Both are pure functions over a batch, so the pipeline, backfills and tests share them.
A decided review stands over leadq's own verdict in every later run of that lead.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from connectors.domain import Tier
from connectors.settings import AutonomySettings, Settings
from crew.icp import Icp

HOLD = "hold_reason"


@dataclass(frozen=True)
class HoldRules:
    """What holds a lead: the crew's flag, borderline scores, named accounts, and actions set to `approve`."""

    qualified_threshold: float
    borderline_points: int
    approval_domains: list[str]
    autonomy: AutonomySettings
    notify_tiers: list[str]  # empty when notifications are off
    staffed_queues: list[str]

    @classmethod
    def from_settings(cls, settings: Settings, icp: Icp, approval_domains: list[str], staffed: list[str]) -> HoldRules:
        thresholds = [icp.tiers[t] for t in icp.qualified_tiers if t in icp.tiers]
        notify_on = settings.notify.kind != "off" and settings.run.mode == "live"
        return cls(
            qualified_threshold=min(thresholds) if thresholds else 101.0,
            borderline_points=settings.review.borderline_points,
            approval_domains=approval_domains,
            autonomy=settings.autonomy,
            notify_tiers=settings.notify.tiers if notify_on else [],
            staffed_queues=staffed,
        )


def apply_decisions(leads: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """Apply people's decisions (email, status, decided_by, why, tier/queue/owner overrides).

    Rejected leads become disqualified by the reviewer; approved ones keep leadq's verdict
    unless a tier, queue or owner was overridden. Either way the method is `review` and the
    lead is no longer held. Adds `review_status`, `queue_override` and `owner_override`."""
    decided = decisions.select(
        "email",
        pl.col("status").alias("review_status"),
        "decided_by",
        "why",
        "tier_override",
        "queue_override",
        "owner_override",
    )
    frame = leads.drop("review_status", "queue_override", "owner_override", strict=False)
    frame = frame.join(decided, on="email", how="left")
    reviewed = pl.col("review_status").is_not_null()
    rejected = pl.col("review_status") == "rejected"
    note = pl.format("review by {}: {}", pl.col("decided_by"), pl.col("why"))
    return frame.with_columns(
        pl.when(rejected)
        .then(pl.lit(Tier.DISQUALIFIED.value))
        .when(reviewed)
        .then(pl.coalesce("tier_override", "tier"))
        .otherwise("tier")
        .alias("tier"),
        pl.when(rejected).then(note).otherwise(pl.col("disqualified_by")).alias("disqualified_by"),
        pl.when(reviewed).then(pl.lit("review")).otherwise(pl.col("method")).alias("method"),
        pl.when(reviewed).then(pl.lit(False)).otherwise(pl.col("needs_review")).alias("needs_review"),
        pl.when(reviewed).then(pl.format("{}; {}", note, pl.col("reasons"))).otherwise("reasons").alias("reasons"),
        pl.when(rejected).then(None).otherwise(pl.col("queue_override")).alias("queue_override"),
        pl.when(rejected).then(None).otherwise(pl.col("owner_override")).alias("owner_override"),
    ).drop("decided_by", "why", "tier_override")


def mark_holds(leads: pl.DataFrame, rules: HoldRules) -> pl.DataFrame:
    """Add `hold_reason`: why a person must look first (null: leadq may act). Reviewed leads are never held.

    `leads` has its queue already (routing's queue step), so `owner_assignment = approve`
    holds only leads whose queue has SDRs to assign."""
    score, tier = pl.col("score"), pl.col("tier")
    live = tier != Tier.DISQUALIFIED.value
    threshold, points = rules.qualified_threshold, rules.borderline_points
    borderline = live & (score >= threshold - points) & (score < threshold + points) if points else pl.lit(False)
    auto = rules.autonomy
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (pl.col("needs_review").fill_null(False), pl.lit("the crew flagged it (see reasons)")),
        (
            pl.col("company_domain").is_in(rules.approval_domains).fill_null(False),
            pl.format("account {} requires approval", pl.col("company_domain")),
        ),
        (
            borderline,
            pl.format("score {} is within {} of the qualified threshold {}", score, pl.lit(points), pl.lit(threshold)),
        ),
        (pl.lit(auto.crm_write == "approve"), pl.lit("crm_write is set to approve")),
        (
            pl.lit(auto.owner_assignment == "approve") & pl.col("queue").is_in(rules.staffed_queues).fill_null(False),
            pl.lit("owner_assignment is set to approve"),
        ),
        (pl.lit(auto.notify == "approve") & tier.is_in(rules.notify_tiers), pl.lit("notify is set to approve")),
    ]
    reasons = pl.concat_list([pl.when(hit).then(why) for hit, why in checks]).list.drop_nulls().list.join("; ")
    reviewed = pl.col("review_status").is_not_null() if "review_status" in leads.columns else pl.lit(False)
    return leads.with_columns(pl.when(~reviewed & (reasons != "")).then(reasons).alias(HOLD))
