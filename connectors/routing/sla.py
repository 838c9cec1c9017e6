"""Speed to lead: was each owned lead touched within its tier's `sla_minutes`, and how fast per queue.

The clock starts when the current owner got the lead (`owned_at`). A touch is the store's
own (`leadq lead status EMAIL worked`) or the CRM's last activity, when it is later than
that. A lead is breached when its time is up and nobody touched it; one touched late is
not alerted (it has been worked) but counts against the queue's share within SLA.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

REPORT_SCHEMA = {
    "queue": pl.String(),
    "leads": pl.UInt32(),
    "touched": pl.UInt32(),
    "within_sla": pl.UInt32(),
    "open_breaches": pl.UInt32(),
    "median_minutes_to_touch": pl.Float64(),
    "p90_minutes_to_touch": pl.Float64(),
}


def sla_status(owned: pl.DataFrame, activity: pl.DataFrame, minutes: dict[str, int], now: datetime) -> pl.DataFrame:
    """`owned` (email, queue, owner, tier, owned_at, touched_at) of the tiers with an SLA, with `due_at`,
    `touched_at` (the first touch known), `new_touch` (learnt from the CRM now), `minutes_to_touch`,
    `breached` (time up, no touch) and `overdue_minutes`. Times are naive UTC; `activity` is
    (email, activity_at) from the CRM."""
    frame = owned.filter(pl.col("tier").is_in(list(minutes))).join(activity.unique("email"), on="email", how="left")
    crm_touch = pl.when(pl.col("activity_at") >= pl.col("owned_at")).then(pl.col("activity_at"))
    frame = frame.with_columns(
        (pl.col("touched_at").is_null() & crm_touch.is_not_null()).fill_null(False).alias("new_touch"),
        pl.coalesce("touched_at", crm_touch).alias("touched_at"),
        (pl.col("owned_at") + pl.duration(minutes=pl.col("tier").replace_strict(minutes, return_dtype=pl.Int64))).alias(
            "due_at"
        ),
    )
    waited = (pl.lit(now) - pl.col("due_at")).dt.total_seconds() / 60
    return frame.with_columns(
        ((pl.col("touched_at") - pl.col("owned_at")).dt.total_seconds() / 60).round(1).alias("minutes_to_touch"),
        (pl.col("touched_at").is_null() & (pl.col("due_at") <= now)).alias("breached"),
        pl.when(pl.col("touched_at").is_null() & (pl.col("due_at") <= now))
        .then(waited.round(0))
        .alias("overdue_minutes"),
    ).drop("activity_at")


def first_touch_report(status: pl.DataFrame) -> pl.DataFrame:
    """Per queue: leads with an SLA, how many were touched, how many within the SLA, open breaches,
    and the median and 90th percentile of minutes to the first touch."""
    if status.is_empty():
        return pl.DataFrame(schema=REPORT_SCHEMA)
    within = pl.col("touched_at").is_not_null() & (pl.col("touched_at") <= pl.col("due_at"))
    return (
        status.group_by("queue")
        .agg(
            pl.len().alias("leads"),
            pl.col("touched_at").is_not_null().sum().alias("touched"),
            within.sum().alias("within_sla"),
            pl.col("breached").sum().alias("open_breaches"),
            pl.col("minutes_to_touch").median().round(1).alias("median_minutes_to_touch"),
            pl.col("minutes_to_touch").quantile(0.9, "nearest").round(1).alias("p90_minutes_to_touch"),
        )
        .sort("queue")
        .cast(REPORT_SCHEMA)  # type: ignore[arg-type]
    )


def breach_alert(breaches: pl.DataFrame, listed: int) -> str:
    """One alert for the leads newly past their SLA, the most overdue first, at most `listed` named."""
    rows = breaches.sort("overdue_minutes", descending=True)
    named = "; ".join(
        f"{r['email']} (tier {r['tier']}, {r['owner']}, {r['queue']}, {int(r['overdue_minutes'])} min over)"
        for r in rows.head(listed).iter_rows(named=True)
    )
    more = f"; and {rows.height - listed} more" if rows.height > listed else ""
    return f"{rows.height} qualified leads have no activity within their SLA: {named}{more}"
