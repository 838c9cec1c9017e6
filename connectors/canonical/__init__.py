"""Canonical values: every provider's industry onto one list, every country spelling onto ISO codes."""

from __future__ import annotations

import polars as pl

from connectors.canonical.countries import country_codes
from connectors.canonical.industries import Industries, load_industries

__all__ = ["Industries", "canonical_answers", "country_codes", "load_industries"]


def canonical_answers(
    answers: pl.DataFrame, industries: Industries | None, country_aliases: dict[str, str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Picked answers (domain, provider, field, value, ...) with industry and country values made canonical.

    A value that changed keeps what the provider said in `raw` (and how it was mapped in
    `mapped_by`); a value that cannot be mapped is dropped from the answers and explained in
    the second frame, (domain, provider, note), under the field's name."""
    frame = answers.with_columns(
        pl.lit(None, dtype=pl.String).alias("raw"), pl.lit(None, dtype=pl.String).alias("mapped_by")
    )
    is_industry, is_country = pl.col("field") == "industry", pl.col("field") == "company_country"
    tables = [
        (
            is_country,
            country_codes(frame.filter(is_country)["value"], country_aliases).select(
                pl.col("country_in").alias("_in"),
                pl.col("country_code").alias("_out"),
                pl.lit("iso 3166").alias("_how"),
                pl.col("country_note").alias("_note"),
            ),
            "country",
        ),
    ]
    if industries is not None:
        tables.append(
            (
                is_industry,
                industries.mapped(frame.filter(is_industry)["value"]).select(
                    pl.col("industry_in").alias("_in"),
                    pl.col("industry").alias("_out"),
                    pl.col("industry_method").alias("_how"),
                    pl.col("industry_note").alias("_note"),
                ),
                "industry",
            )
        )
    notes = [pl.DataFrame(schema={"domain": pl.String, "provider": pl.String, "note": pl.String})]
    for selects, table, key in tables:
        joined = frame.join(table, left_on="value", right_on="_in", how="left")
        mine = selects.fill_null(False)
        notes.append(
            joined.filter(mine & pl.col("_note").is_not_null()).select(
                "domain", pl.lit(key).alias("provider"), pl.col("_note").alias("note")
            )
        )
        changed = mine & (pl.col("_out") != pl.col("value")).fill_null(False)
        frame = (
            joined.filter(~mine | pl.col("_out").is_not_null())
            .with_columns(
                pl.when(changed).then(pl.col("value")).otherwise(pl.col("raw")).alias("raw"),
                pl.when(changed & (pl.col("_how") != "exact"))
                .then(pl.col("_how"))
                .otherwise(pl.col("mapped_by"))
                .alias("mapped_by"),
                pl.when(mine).then(pl.col("_out")).otherwise(pl.col("value")).alias("value"),
            )
            .drop("_out", "_how", "_note")
        )
    return frame, pl.concat(notes)
