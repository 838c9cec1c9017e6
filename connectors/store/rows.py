"""How a decided batch becomes rows of the store's tables: one polars expression per table.

Kept apart from `Store` so the mapping can be read (and tested) without a database.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import polars as pl

from connectors.domain import CRM_ID, INPUT_HASH, PERSON_FIELDS, SIGNALS
from connectors.redact import scrubbed


def column(frame: pl.DataFrame, name: str) -> pl.Expr:
    """The column, or nulls under its name when this batch lacks it."""
    return pl.col(name) if name in frame.columns else pl.lit(None).alias(name)


def companies_rows(leads: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Companies enrichment changed (all of them when the batch does not say)."""
    rows = leads.filter(pl.col("company_domain").is_not_null()).unique("company_domain", keep="last")
    if "company_changed" in rows.columns:
        rows = rows.filter(pl.col("company_changed"))
    return rows.select(
        pl.col("company_domain").alias("domain"),
        column(rows, "company_legal_name").alias("name"),
        column(rows, "industry"),
        column(rows, "employees").cast(pl.Int64),
        column(rows, "company_country").alias("country"),
        column(rows, "founded_year").cast(pl.Int64),
        column(rows, "linkedin_url"),
        column(rows, "description"),
        column(rows, "email_provider"),
        column(rows, "technologies"),
        column(rows, "company_sources").alias("sources"),
        column(rows, "company_provenance").alias("provenance"),
        column(rows, "enrichment_notes"),
        pl.lit(now).alias("updated_at"),
    )


def leads_rows(leads: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    signal_json = pl.col(SIGNALS) if SIGNALS in leads.columns else pl.lit(None, dtype=pl.String)
    return leads.select(
        "email",
        "signup_id",
        *PERSON_FIELDS,
        "company_domain",
        "email_type",
        "country",
        "phone",
        "source",
        "signed_up_at",
        signal_json.alias("signals"),
        column(leads, CRM_ID).cast(pl.String).alias("crm_id"),
        column(leads, INPUT_HASH).cast(pl.String).alias("input_hash"),
        "icp_version",
        pl.lit(run_id).alias("updated_run"),
        pl.lit(now).alias("updated_at"),
    )


def assessments_rows(leads: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    return leads.select(
        "email",
        "icp_version",
        "score",
        "tier",
        "confidence",
        "reasons",
        "disqualified_by",
        column(leads, "method").fill_null("rules").alias("method"),
        column(leads, "needs_review").fill_null(False).cast(pl.Boolean).alias("needs_review"),
        column(leads, "evidence").cast(pl.String).alias("evidence"),
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).alias("assessed_at"),
    )


def assignments_rows(leads: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    disqualified = pl.col("tier") == "disqualified"
    return leads.select(
        "email",
        "queue",
        "owner",
        pl.when(disqualified)
        .then(pl.lit("disqualified"))
        .when(column(leads, "waiting").fill_null(False))
        .then(pl.lit("waiting"))
        .otherwise(pl.lit("active"))
        .alias("status"),
        "segment",
        "territory",
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).alias("assigned_at"),
        column(leads, "routing_reason").cast(pl.String).alias("routing_reason"),
        pl.when(pl.col("owner").is_not_null()).then(pl.lit(now)).alias("owned_at"),
        pl.lit(None, dtype=pl.Datetime("us")).alias("touched_at"),
    )


def newly_owned(leads: pl.DataFrame) -> pl.Series:
    """Which leads routing gave an owner now (not kept): their SLA clock starts again."""
    if "load_day" not in leads.columns:
        return pl.Series([True] * leads.height, dtype=pl.Boolean)
    return leads["load_day"].is_not_null()


def load_rows(leads: pl.DataFrame) -> pl.DataFrame:
    """(owner, day, assigned): the leads this batch gave each owner, by the day its caps count them."""
    if "load_day" not in leads.columns:
        return pl.DataFrame(schema={"owner": pl.String, "day": pl.String, "assigned": pl.Int64})
    given = leads.filter(pl.col("load_day").is_not_null() & pl.col("owner").is_not_null())
    return given.group_by("owner", pl.col("load_day").alias("day")).agg(pl.len().cast(pl.Int64).alias("assigned"))


def audit_rows(leads: pl.DataFrame, run_id: str, now: datetime, kind: str = "decided") -> pl.DataFrame:
    decision = ["icp_version", "score", "tier", "queue", "owner"]
    leads = leads.with_columns(column(leads, c) for c in ("queue", "owner"))
    key = pl.concat_str(
        [pl.lit(kind), pl.col("email"), *(pl.col(c).cast(pl.String).fill_null("") for c in decision)],
        separator="|",
    )
    detail = pl.struct(
        [
            *decision,
            "confidence",
            "reasons",
            "disqualified_by",
            column(leads, "method").fill_null("rules").alias("method"),
        ]
    )
    return leads.select(
        key.alias("event_key"),
        pl.lit(run_id).alias("run_id"),
        "email",
        pl.lit(kind).alias("kind"),
        detail.struct.json_encode().alias("detail"),
        pl.lit(now).alias("at"),
    )


def held_rows(held: pl.DataFrame, run_id: str, now: datetime) -> pl.DataFrame:
    return held.select(
        "email",
        pl.lit("pending").alias("status"),
        pl.col("hold_reason").alias("held_because"),
        "company_domain",
        pl.col("score").cast(pl.Int64),
        "tier",
        column(held, "queue"),
        "reasons",
        "icp_version",
        pl.lit(run_id).alias("held_run"),
        pl.lit(now).alias("held_at"),
    )


def dead_letter_keys(rejects: pl.DataFrame, source_key: str) -> pl.Series:
    """One key per rejected row: source, row position and a hash of the row's content.

    N rejected rows give N keys even when they share a signup id (or have none), and reading the
    same row again gives the same key. A SQL table has no row numbers: there the position is the
    row's place among identical rows of its batch."""
    digest = pl.Series(
        [hashlib.sha256((raw or "").encode()).hexdigest()[:16] for raw in rejects["raw"].to_list()], dtype=pl.String
    )
    frame = rejects.select(pl.col("_row").cast(pl.String), digest.alias("_hash"))
    occurrence = pl.int_range(pl.len()).over("_hash").cast(pl.String)
    position = pl.coalesce(pl.format("row:{}", pl.col("_row")), pl.format("n:{}", occurrence))
    key = pl.concat_str([pl.lit(source_key), position, pl.col("_hash")], separator="|")
    return frame.select(key.alias("key"))["key"]


def dead_letters_rows(rejects: pl.DataFrame, source_key: str, run_id: str, now: datetime) -> pl.DataFrame:
    if rejects.is_empty():
        return pl.DataFrame()
    return rejects.select(
        dead_letter_keys(rejects, source_key).alias("key"),
        pl.lit(source_key).alias("source_key"),
        "signup_id",
        pl.col("_row").cast(pl.Int64).alias("row_number"),
        scrubbed("reason"),
        "raw",
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).alias("created_at"),
    )


def crm_dead_letters_rows(failures: pl.DataFrame, crm_name: str, run_id: str, now: datetime) -> pl.DataFrame:
    """Inputs the CRM refused, one row per lead (or company), with the CRM's message; a retry replaces it."""
    subject = pl.coalesce(pl.col("email"), pl.col("raw").str.slice(0, 200))
    return failures.select(
        pl.concat_str([pl.lit(f"crm:{crm_name}"), subject], separator="|").alias("key"),
        pl.lit(f"crm:{crm_name}").alias("source_key"),
        "signup_id",
        pl.lit(None, dtype=pl.Int64).alias("row_number"),
        scrubbed("reason"),
        "raw",
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).alias("created_at"),
    ).unique("key", keep="last")


def signup_rows(seen: pl.DataFrame, source_key: str, run_id: str, now: datetime) -> pl.DataFrame:
    """The source rows a batch read, each under a key that reading it again gives again."""
    position = pl.coalesce(pl.format("row:{}", pl.col("_row")), pl.lit(""))
    key = pl.concat_str([pl.lit(source_key), position, pl.col("signup_id").fill_null("")], separator="|")
    return seen.select(
        key.alias("key"),
        "email",
        pl.lit(source_key).alias("source_key"),
        pl.col("_row").cast(pl.Int64).alias("row_number"),
        "signup_id",
        "signed_up_at",
        "outcome",
        pl.lit(run_id).alias("run_id"),
        pl.lit(now).alias("seen_at"),
    ).unique("key", keep="last")
