"""One row per lead, joined from the store's tables, for `leadq export`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from connectors.domain import PERSON_FIELDS
from connectors.errors import ConfigError, FatalError
from connectors.store.store import Store

EXPORT_COLUMNS = (
    "email",
    "company_domain",
    "score",
    "tier",
    "confidence",
    "queue",
    "owner",
    "routing_reason",
    "reasons",
    "icp_version",
    "method",
    "needs_review",
    "disqualified_by",
    *PERSON_FIELDS,
    "country",
    "email_type",
    "company_name",
    "industry",
    "employees",
    "company_country",
    "email_provider",
    "technologies",
    "company_sources",
    "enrichment_notes",
    "segment",
    "territory",
    "signed_up_at",
    "assessed_at",
)

_QUERY = """
SELECT l.email, l.company_domain, a.score, a.tier, a.confidence, s.queue, s.owner, s.routing_reason,
       a.reasons,
       l.icp_version, a.method, a.needs_review, a.disqualified_by, l.first_name, l.last_name, l.job_title,
       l.seniority, l.function, l.country, l.email_type, c.name AS company_name, c.industry,
       c.employees, c.country AS company_country, c.email_provider, c.technologies,
       c.sources AS company_sources, c.enrichment_notes, s.segment, s.territory, l.signed_up_at, a.assessed_at
FROM leads l
LEFT JOIN assessments a ON a.email = l.email AND a.icp_version = l.icp_version
LEFT JOIN assignments s ON s.email = l.email
LEFT JOIN companies c ON c.domain = l.company_domain
ORDER BY l.signed_up_at, l.email
"""


def export_leads(store: Store) -> pl.DataFrame:
    if not store.exists():
        raise FatalError(f"nothing to export: no leadq store at {store.url} yet (run `leadq run` first)")
    return store.read(_QUERY).select(EXPORT_COLUMNS)


FORMULA_START = r"^[=+\-@\t\r]"  # what a spreadsheet runs as a formula (OWASP: CSV injection)


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+cmd|…`, `@SUM`, a leading tab
    or CR) get a leading apostrophe, so they open as text; numbers and other cells are unchanged."""
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )


def to_csv(frame: pl.DataFrame, raw: bool = False) -> str:
    """The frame as CSV text, formulas neutralised unless `raw` (values exactly, for machines)."""
    return (frame if raw else neutralise_formulas(frame)).write_csv()


def write_export(frame: pl.DataFrame, path: Path, raw: bool = False) -> None:
    """CSV (formulas neutralised unless `raw`) or Parquet (values exactly), by the file's extension."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out {path}: expected a .csv or .parquet file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        path.write_text(to_csv(frame, raw))
    else:
        frame.write_parquet(path)


def export_labels(store: Store, qualified_tiers: list[str]) -> pl.DataFrame:
    """People's review decisions as a labelled dataset for `leadq eval` and `leadq calibrate`: each lead's
    recorded fields with `label_qualified`, `label_tier`, `label_queue`, `label_by` and `label_why` (the
    latest decision per lead)."""
    if not store.exists():
        raise FatalError(f"no leadq store at {store.url} yet: nothing has been reviewed")
    labels = store.read(
        "SELECT email, decision, label_tier, queue AS label_queue, who AS label_by, why AS label_why, at "
        "FROM labels ORDER BY at, id"
    ).unique("email", keep="last")
    # the signup and the firmographics as recorded; what prepare derives (seniority, email type, …) it derives again
    recorded = (
        "email",
        "first_name",
        "last_name",
        "job_title",
        "country",
        "company_name",
        "company_domain",
        "industry",
        "employees",
        "company_country",
        "signed_up_at",
    )
    leads = export_leads(store).select(recorded)
    labelled = leads.join(labels.drop("at"), on="email", how="inner").with_columns(
        pl.when(pl.col("decision") == "rejected").then(None).otherwise(pl.col("label_queue")).alias("label_queue"),
        (pl.col("label_tier").is_in(qualified_tiers) & (pl.col("decision") == "approved"))
        .cast(pl.Int8)
        .alias("label_qualified"),
    )
    return labelled.drop("decision")
