"""Offline enrichment from a company reference file (CSV or Parquet), joined by domain.

Column layouts come as presets: `leadq` (the bundled demo file) and `pdl`, the People
Data Labs free company dataset. `[enrichment.reference] columns` overrides single
columns of a preset, so another vendor's file fits with settings alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from connectors.canonical.countries import country_codes
from connectors.enrichment.base import Found, Lookup
from connectors.errors import ConfigError
from connectors.prepare.emails import registrable_domains
from connectors.settings import Settings

# leadq field -> column in the file
PRESETS: dict[str, dict[str, str]] = {
    "leadq": {
        "domain": "domain",
        "company_legal_name": "name",
        "industry": "industry",
        "employees": "employees",
        "company_country": "country",
        "founded_year": "founded_year",
        "linkedin_url": "linkedin_url",
    },
    "pdl": {
        "domain": "domain",
        "company_legal_name": "name",
        "industry": "industry",
        "employees": "current employee estimate",
        "size_range": "size range",
        "company_country": "country",
        "founded_year": "year founded",
        "linkedin_url": "linkedin url",
    },
}
OPTIONAL = {"size_range", "founded_year", "linkedin_url", "company_country", "company_legal_name"}
OUTPUT = ("company_legal_name", "industry", "employees", "company_country", "founded_year", "linkedin_url")

log = logging.getLogger("leadq.enrichment")


class ReferenceFile:
    """A company file loaded once per run, looked up by domain in memory (never cached, never billed)."""

    name = "reference"
    fields = frozenset(OUTPUT)
    cached = False

    def __init__(
        self,
        path: Path,
        preset: str,
        overrides: dict[str, str],
        country_aliases: dict[str, str],
        confidence: float = 0.9,
    ) -> None:
        self.path = path
        self.mapping = {**PRESETS[preset], **overrides}
        self.preset = preset
        self.confidence = confidence
        self.companies = self._load(country_aliases)
        self._by_domain = {row["domain"]: row for row in self.companies.drop("_matched").to_dicts()}
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
        self._fetched_at = modified.isoformat(timespec="seconds")  # provenance: when the file was written

    def lookup(self, domain: str) -> Lookup:
        row = self._by_domain.get(domain)
        if row is None:
            return Lookup("not_found", reason=f"{self.path.name}: no row for {domain}")
        method = f"reference file {self.path.name}"
        found = {f: Found(row[f], self.confidence, method) for f in OUTPUT if row[f] is not None}
        return Lookup("ok", found, fetched_at=self._fetched_at)

    def answers(self, domains: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The whole batch at once: (answers, notes) in the waterfall's long form (`choose.ANSWERS`,
        `choose.NOTES`), one answer row per field found, one note per domain the file lacks."""
        asked = pl.DataFrame({"domain": domains})
        rows = asked.join(self.companies.drop("_matched"), on="domain", how="inner")
        found = (
            rows.select("domain", *(pl.col(f).cast(pl.String) for f in OUTPUT))
            .unpivot(index="domain", variable_name="field", value_name="value")
            .filter(pl.col("value").is_not_null())
            .select(
                "domain",
                pl.lit(self.name).alias("provider"),
                "field",
                "value",
                pl.lit(self.confidence, dtype=pl.Float64).alias("confidence"),
                pl.lit(f"reference file {self.path.name}").alias("method"),
                pl.lit(self._fetched_at).alias("fetched_at"),
            )
        )
        missing = asked.join(rows, on="domain", how="anti").select(
            "domain",
            pl.lit(self.name).alias("provider"),
            pl.format("not_found: {}: no row for {}", pl.lit(self.path.name), pl.col("domain")).alias("note"),
        )
        return found, missing

    def usage(self) -> tuple[int, float]:
        return 0, 0.0

    def off_reason(self) -> str | None:
        return None

    @classmethod
    def from_settings(cls, settings: Settings) -> ReferenceFile:
        ref = settings.enrichment.reference
        return cls(
            settings.config_path(ref.path), ref.preset, ref.columns, settings.prepare.country_aliases, ref.confidence
        )

    def _load(self, country_aliases: dict[str, str]) -> pl.DataFrame:
        path = self.path
        if not path.is_file():
            raise ConfigError(f"{path}: company reference file not found (key 'enrichment.reference.path')")
        try:
            raw = pl.read_parquet(path) if path.suffix.lower() == ".parquet" else pl.read_csv(path, infer_schema=False)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ConfigError(f"{path}: cannot read the company reference file: {exc}") from exc
        columns = {}
        for field, column in {**dict.fromkeys(OPTIONAL, ""), **self.mapping}.items():
            if column in raw.columns:
                columns[field] = pl.col(column).cast(pl.String).str.strip_chars().replace("", None)
            elif field not in OPTIONAL:
                raise ConfigError(
                    f"{path}: column '{column}' not found for '{field}' (preset '{self.preset}', "
                    f"key 'enrichment.reference.columns.{field}'); columns are: {', '.join(raw.columns[:20])}"
                )
            else:
                columns[field] = pl.lit(None, dtype=pl.String)
        frame = raw.select(**columns)
        frame = _domains(frame)
        countries = country_codes(frame["company_country"], country_aliases)
        for note in countries["country_note"].drop_nulls().head(5):
            log.warning("%s: %s", path, note)
        frame = frame.join(countries, left_on="company_country", right_on="country_in", how="left")
        return (
            frame.with_columns(
                pl.col("industry").str.to_lowercase(),
                pl.coalesce(
                    pl.col("employees").str.replace_all(",", "").cast(pl.Float64, strict=False).cast(pl.Int64),
                    _size_midpoint(),
                ).alias("employees"),
                pl.col("country_code").alias("company_country"),
                pl.col("founded_year").cast(pl.Float64, strict=False).cast(pl.Int32),
                pl.lit(True).alias("_matched"),
            )
            .drop("size_range", "country_code", "country_note")
            .filter(pl.col("domain").is_not_null())
            .sort("employees", descending=True, nulls_last=True)
            .unique("domain", keep="first", maintain_order=True)
            .select("domain", *OUTPUT, "_matched")
        )


def _domains(frame: pl.DataFrame) -> pl.DataFrame:
    host = pl.col("domain").str.to_lowercase().str.replace(r"^[a-z]+://", "").str.split("/").list.first()
    frame = frame.with_columns(host.alias("host"))
    hosts = frame["host"].unique().drop_nulls()
    lookup = pl.DataFrame({"host": hosts, "registrable": registrable_domains(hosts)})
    return (
        frame.join(lookup, on="host", how="left")
        .with_columns(pl.col("registrable").alias("domain"))
        .drop("host", "registrable")
    )


def _size_midpoint() -> pl.Expr:
    """'51-200' → 125, '10001+' → 10001: a number for files that only give a size band."""
    bounds = pl.col("size_range").str.extract_all(r"\d+").list.eval(pl.element().cast(pl.Int64))
    return ((bounds.list.first() + bounds.list.last()) // 2).alias("employees")
