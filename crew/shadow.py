"""Shadow report: how leadq's decisions compare with what people did in the CRM.

A person's verdict on a lead is its lead status: one of `[shadow] qualified_statuses`
means they worked it, one of `disqualified_statuses` means they dropped it, anything
else (New, Open, none) is no verdict yet and is not counted. Owners are compared where
the CRM has a person as owner. Everything is a polars join and group-by, so a report
over a whole store takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from connectors.errors import SourceError
from connectors.sources.files import read_table, yes_no

PEOPLE_COLUMNS = ("email", "crm_owner", "crm_status")


@dataclass
class ShadowReport:
    overall: dict[str, Any]
    by_tier: pl.DataFrame
    by_queue: pl.DataFrame
    leads: pl.DataFrame  # one row per lead: leadq's decision, the person's, and whether they agree

    def as_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "by_tier": self.by_tier.to_dicts(), "by_queue": self.by_queue.to_dicts()}


def read_actual(path: Path) -> pl.DataFrame:
    """A file of what people did: `email` and at least one of `owner`, `status` (or a 0/1 `qualified`)."""
    frame = read_table(path, needs="a header row with 'email' and 'owner' and/or 'status' columns")
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if "email" not in frame.columns or not {"owner", "status", "qualified"} & set(frame.columns):
        raise SourceError(
            f"{path}: expected an 'email' column and an 'owner', 'status' or 'qualified' column; "
            f"found {', '.join(frame.columns) or 'none'}"
        )
    people = frame.select(
        pl.col("email").cast(pl.String).str.strip_chars().str.to_lowercase(),
        _text(frame, "owner").str.to_lowercase().alias("crm_owner"),
        _text(frame, "status").alias("crm_status"),
        yes_no(frame, "qualified", path) if "qualified" in frame.columns else pl.lit(None, pl.Int8).alias("qualified"),
    )
    return people.filter(pl.col("email").is_not_null() & (pl.col("email") != ""))


def _text(frame: pl.DataFrame, name: str) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit(None, pl.String).alias(name)
    value = pl.col(name).cast(pl.String).str.strip_chars()
    return pl.when(value != "").then(value).alias(name)


def compare(
    decisions: pl.DataFrame,
    people: pl.DataFrame,
    qualified_tiers: list[str],
    qualified_statuses: list[str],
    disqualified_statuses: list[str],
) -> ShadowReport:
    """`decisions`: the store's leads (email, tier, queue, owner); `people`: email, crm_owner, crm_status
    and optionally a 0/1 `qualified` that stands for the status."""
    if "qualified" not in people.columns:
        people = people.with_columns(pl.lit(None, pl.Int8).alias("qualified"))
    status = pl.col("crm_status")
    verdict = (
        pl.when(pl.col("qualified").is_not_null())
        .then(pl.col("qualified") == 1)
        .when(status.is_in(qualified_statuses))
        .then(True)
        .when(status.is_in(disqualified_statuses))
        .then(False)
    )
    joined = (
        decisions.select("email", "tier", "queue", "owner")
        .join(people.select(*PEOPLE_COLUMNS, "qualified").unique("email", keep="last"), on="email", how="left")
        .with_columns(
            pl.col("tier").is_in(qualified_tiers).alias("leadq_qualified"),
            verdict.alias("person_qualified"),
            pl.col("crm_owner").str.to_lowercase(),
        )
        .with_columns(
            (pl.col("leadq_qualified") == pl.col("person_qualified")).alias("verdict_agrees"),
            # null where the CRM has no person as owner; leadq having none where it has one disagrees
            pl.when(pl.col("crm_owner").is_not_null())
            .then((pl.col("owner").str.to_lowercase() == pl.col("crm_owner")).fill_null(False))
            .alias("owner_agrees"),
        )
        .drop("qualified")
    )
    return ShadowReport(
        overall=_overall(joined, people),
        by_tier=_grouped(joined, "tier"),
        by_queue=_grouped(joined, "queue"),
        leads=joined,
    )


def _grouped(joined: pl.DataFrame, key: str) -> pl.DataFrame:
    return (
        joined.group_by(pl.col(key).fill_null("(none)"))
        .agg(
            pl.len().alias("leads"),
            pl.col("person_qualified").is_not_null().sum().alias("with_verdict"),
            pl.col("person_qualified").fill_null(False).sum().alias("people_qualified"),
            pl.col("verdict_agrees").fill_null(False).sum().alias("verdict_agrees"),
            pl.col("owner_agrees").is_not_null().sum().alias("with_owner"),
            pl.col("owner_agrees").fill_null(False).sum().alias("owner_agrees"),
        )
        .with_columns(
            _rate("verdict_agrees", "with_verdict").alias("verdict_agreement"),
            _rate("owner_agrees", "with_owner").alias("owner_agreement"),
        )
        .sort(key)
    )


def _rate(part: str, whole: str) -> pl.Expr:
    return pl.when(pl.col(whole) > 0).then((pl.col(part) / pl.col(whole)).round(3))


def _overall(joined: pl.DataFrame, people: pl.DataFrame) -> dict[str, Any]:
    judged = joined.filter(pl.col("person_qualified").is_not_null())
    owned = joined.filter(pl.col("owner_agrees").is_not_null())
    both_yes = judged.filter(pl.col("leadq_qualified") & pl.col("person_qualified")).height
    leadq_yes = judged.filter(pl.col("leadq_qualified")).height
    person_yes = judged.filter(pl.col("person_qualified")).height
    return {
        "leads": joined.height,
        "in_crm": joined.filter(pl.col("email").is_in(people["email"].implode())).height,
        "with_verdict": judged.height,
        "verdict_agreement": _share(judged["verdict_agrees"]),
        "precision": round(both_yes / leadq_yes, 3) if leadq_yes else None,  # of leadq's qualified, people worked
        "recall": round(both_yes / person_yes, 3) if person_yes else None,  # of people's qualified, leadq qualified
        "with_owner": owned.height,
        "owner_agreement": _share(owned["owner_agrees"]),
    }


def _share(flags: pl.Series) -> float | None:
    return round(int(flags.sum()) / flags.len(), 3) if flags.len() else None
