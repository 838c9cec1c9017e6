"""Prepare: validate, normalise and dedupe a batch of raw signups.

A row that cannot become a lead is returned as a reject with a reason a person can
read (which field, what was found, what was expected); it never stops the batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from connectors.canonical.countries import country_codes
from connectors.domain import EMAIL, SIGNALS, SIGNUP_COLUMNS, EmailType
from connectors.prepare.emails import check_emails, domain_facts, email_type, registrable_domains
from connectors.prepare.people import TitleRules, classify_title, load_title_rules
from connectors.settings import Settings
from connectors.sources.cursor import CURSOR_ID, EARLIEST, ID, TIMESTAMP, in_range
from connectors.sources.frame import RAW_TIMESTAMP, ROW
from connectors.sources.lenient_csv import MALFORMED

__all__ = ["PrepareRules", "Prepared", "prepare_batch"]

REJECT_COLUMNS = (ID, ROW, "reason", "raw")
_RAW_PREVIEW_CHARS = 200

log = logging.getLogger("leadq.prepare")


@dataclass(frozen=True)
class PrepareRules:
    max_field_chars: int
    role_accounts: list[str]
    extra_free_domains: list[str]
    country_aliases: dict[str, str]
    titles: TitleRules
    max_future_s: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PrepareRules:
        p = settings.prepare
        titles = load_title_rules(settings.config_path(p.titles_file))
        return cls(
            p.max_field_chars,
            p.role_accounts,
            p.extra_free_domains,
            p.country_aliases,
            titles,
            settings.source.max_future_s,
        )


@dataclass(frozen=True)
class Prepared:
    """A batch split up: `leads` to decide, `rejects` with reasons, and `seen`, one row per valid source
    row (email, _row, signup_id, signed_up_at, outcome: lead | duplicate | stale | known) for the ledger."""

    leads: pl.DataFrame
    rejects: pl.DataFrame
    duplicates: int
    seen: pl.DataFrame

    @property
    def skipped(self) -> int:
        """Valid rows not decided again: older than the stored signup, or already stored."""
        return self.seen.filter(pl.col("outcome").is_in(["stale", "known"])).height


def prepare_batch(raw: pl.DataFrame, rules: PrepareRules, now: datetime | None = None) -> Prepared:
    """Split a canonical batch into valid, deduplicated leads and rejects with reasons.

    `now` is the run's start: a signup dated more than `max_future_s` after it is rejected."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if MALFORMED not in raw.columns:
        raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(MALFORMED))
    hidden = (RAW_TIMESTAMP, MALFORMED, CURSOR_ID)
    text_columns = [c for c, t in raw.schema.items() if t == pl.String and c not in hidden]
    frame = raw.with_columns(pl.col(c).str.strip_chars().replace("", None) for c in text_columns)
    checked = check_emails(frame[EMAIL].str.to_lowercase())
    frame = frame.with_columns(pl.col(EMAIL).str.to_lowercase().alias("email_in")).join(
        checked, on="email_in", how="left"
    )
    frame = frame.with_columns(_reject_reason(text_columns, rules, now).alias("reason"))
    rejects = frame.filter(pl.col("reason").is_not_null()).select(
        pl.col(ID), pl.col(ROW), pl.col("reason"), _raw_preview(raw.columns).alias("raw")
    )
    valid = (
        frame.filter(pl.col("reason").is_null())
        .with_columns(pl.col("email_norm").alias(EMAIL))
        .drop("email_in", "email_norm", "email_error", "reason", *hidden)
    )
    leads = valid.unique(subset=[EMAIL], keep="last", maintain_order=True).with_columns(
        _signals_json([c for c in raw.columns if c not in SIGNUP_COLUMNS and not c.startswith("_")])
    )
    seen = valid.select(
        EMAIL,
        ROW,
        ID,
        TIMESTAMP,
        pl.when(pl.col(EMAIL).is_last_distinct()).then(pl.lit("lead")).otherwise(pl.lit("duplicate")).alias("outcome"),
    )
    return Prepared(_enrich_person(leads, rules), rejects, valid.height - leads.height, seen)


def _signals_json(columns: list[str]) -> pl.Expr:
    """The signup's product signals as one JSON object (null when the source has none)."""
    signals = pl.struct(columns).struct.json_encode() if columns else pl.lit(None, dtype=pl.String)
    return signals.alias(SIGNALS)


def _reject_reason(text_columns: list[str], rules: PrepareRules, now: datetime) -> pl.Expr:
    limit = rules.max_field_chars
    too_long = [
        pl.when(pl.col(c).str.len_chars() > limit).then(
            pl.format(f"field '{c}' is {{}} characters long (limit {limit})", pl.col(c).str.len_chars())
        )
        for c in text_columns
    ]
    email_missing = pl.when(pl.col("email_in").is_null()).then(pl.lit("email is empty"))
    email_bad = pl.when(pl.col("email_error").is_not_null()).then(
        pl.format("email '{}' is not valid: {}", pl.col("email_in").str.slice(0, 80), pl.col("email_error"))
    )
    bad_time = pl.when(
        pl.col(TIMESTAMP).is_null() & pl.col(RAW_TIMESTAMP).str.strip_chars().str.len_chars().gt(0)
    ).then(pl.format("signed_up_at '{}' is not an ISO-8601 date or time", pl.col(RAW_TIMESTAMP).str.slice(0, 40)))
    out_of_range = pl.when(~in_range(now, rules.max_future_s)).then(
        pl.format(
            f"signed_up_at '{{}}' is not plausible: before {EARLIEST:%Y} or more than {rules.max_future_s:g} s "
            f"after the run started ({now:%Y-%m-%dT%H:%M:%S}Z)",
            pl.col(RAW_TIMESTAMP).str.slice(0, 40),
        )
    )
    return pl.coalesce([pl.col(MALFORMED), *too_long, email_missing, email_bad, bad_time, out_of_range])


def _raw_preview(columns: list[str]) -> pl.Expr:
    """The rejected row as JSON, each value cut short, so a 10 MB field never reaches the store.

    `signed_up_at` is kept as it was written (not as parsed), so a retry sees what the source had;
    leadq's own bookkeeping columns (`_row`, `_cursor_id`, ...) are left out."""
    shown = [pl.col(RAW_TIMESTAMP if c == TIMESTAMP else c).alias(c) for c in columns if not c.startswith("_")]
    return pl.struct(c.cast(pl.String).str.slice(0, _RAW_PREVIEW_CHARS) for c in shown).struct.json_encode()


def _enrich_person(leads: pl.DataFrame, rules: PrepareRules) -> pl.DataFrame:
    """Add email_type, company_domain, ISO country, seniority and function."""
    facts = domain_facts(leads["email_domain"], rules.extra_free_domains)
    leads = leads.join(facts, on="email_domain", how="left")
    local_part = pl.col(EMAIL).str.split("@").list.first()
    leads = leads.with_columns(email_type(local_part, rules.role_accounts).alias("email_type"))
    leads = _company_domain(leads)
    for name in ("job_title", "country", "website", "company_name", "first_name", "last_name", "phone", "source"):
        if name not in leads.columns:
            leads = leads.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    countries = country_codes(leads["country"], rules.country_aliases)
    for note in countries["country_note"].drop_nulls():
        log.warning("signups: %s; the lead's country is left empty", note)
    leads = leads.join(countries, left_on="country", right_on="country_in", how="left").with_columns(
        pl.col("country_code").alias("country")
    )
    return leads.drop(
        "registrable", "is_free", "is_disposable", "country_code", "country_note", "website_domain"
    ).with_columns(
        classify_title(pl.col("job_title"), rules.titles.seniority).alias("seniority"),
        classify_title(pl.col("job_title"), rules.titles.function).alias("function"),
    )


def _company_domain(leads: pl.DataFrame) -> pl.DataFrame:
    """A work address names the company; for free mail, fall back to the website typed in."""
    website = pl.col("website") if "website" in leads.columns else pl.lit(None, dtype=pl.String)
    host = website.str.to_lowercase().str.replace(r"^[a-z][a-z0-9+.-]*://", "").str.split("/").list.first()
    leads = leads.with_columns(host.str.split(":").list.first().alias("website_host"))
    hosts = leads["website_host"].unique().drop_nulls()
    lookup = pl.DataFrame({"website_host": hosts, "website_domain": registrable_domains(hosts)})
    personal = pl.col("email_type").is_in([EmailType.FREE.value, EmailType.DISPOSABLE.value])
    return (
        leads.join(lookup, on="website_host", how="left")
        .with_columns(
            pl.when(personal).then(pl.col("website_domain")).otherwise(pl.col("registrable")).alias("company_domain")
        )
        .drop("website_host")
    )
