"""The waterfall's choices as polars plans: which answer wins per field, and how it merges with the store.

Answers arrive long, one row per (domain, provider, field) found, in `ANSWERS` form:

    domain | provider | field | value (text) | confidence | method | fetched_at

`pick` keeps, per (domain, field), the first answer in the field's provider order that is at
least `min_confidence` sure, else the most confident one. `merge` lays the picks out one row
per domain, applies each field's write policy against the company row the store holds (a
field a person edited is never overwritten) and writes provenance, sources and notes as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from connectors.enrichment.base import FIELDS

ANSWERS = {
    "domain": pl.String,
    "provider": pl.String,
    "field": pl.String,
    "value": pl.String,
    "confidence": pl.Float64,
    "method": pl.String,
    "fetched_at": pl.String,
    "url": pl.String,
}
NOTES = {"domain": pl.String, "provider": pl.String, "note": pl.String}
# enrichment field -> column of the companies table, where the names differ
STORE_COLUMN = {"company_legal_name": "name", "company_country": "country"}
NUMBER_FIELDS = frozenset({"employees", "founded_year"})
# what the store's companies table holds, as merge reads it
STORED = {
    "domain": pl.String,
    **{STORE_COLUMN.get(f, f): (pl.Int64 if f in NUMBER_FIELDS else pl.String) for f in FIELDS},
    "sources": pl.String,
    "provenance": pl.String,
    "enrichment_notes": pl.String,
    "edited_fields": pl.String,
}


def ranks(
    orders: Mapping[str, Sequence[str]], default_order: Sequence[str], fields_of: Mapping[str, frozenset[str]]
) -> pl.DataFrame:
    """(field, provider, rank): where each provider stands in each field's order."""
    rows = [
        (name, provider, rank)
        for name in FIELDS
        for rank, provider in enumerate(orders.get(name, default_order))
        if name in fields_of.get(provider, frozenset())
    ]
    return pl.DataFrame(rows, schema={"field": pl.String, "provider": pl.String, "rank": pl.Int64}, orient="row")


def pick(answers: pl.DataFrame, field_ranks: pl.DataFrame, min_confidence: float) -> pl.DataFrame:
    """Per (domain, field): the first sure answer in the field's order, else the most confident."""
    sure = pl.col("confidence") >= min_confidence
    return (
        answers.join(field_ranks, on=["field", "provider"], how="inner")
        .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
        .sort(by=["domain", "field", sure.not_(), pl.when(sure).then(0.0).otherwise(-pl.col("confidence")), "rank"])
        .unique(["domain", "field"], keep="first", maintain_order=True)
        .drop("rank")
    )


def typed(value: pl.Expr, name: str) -> pl.Expr:
    """A provider's text as the field's type: '1,200' employees → 1200; what does not parse → null."""
    if name in NUMBER_FIELDS:
        return value.str.replace_all(",", "").str.strip_chars().cast(pl.Float64, strict=False).cast(pl.Int64)
    return value


def json_value(value: pl.Expr) -> pl.Expr:
    """A value as JSON text (a string quoted and escaped), null stays null."""
    encoded = pl.struct(value.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")
    return pl.when(value.is_not_null()).then(encoded)


def json_object(members: Mapping[str, pl.Expr]) -> pl.Expr:
    """`{"key": <json>, ...}` from expressions that give each member's JSON text; null members are
    left out, and no members at all is null."""
    parts = [
        pl.when(text.is_not_null()).then(pl.format('"{}": {}', pl.lit(key), text)) for key, text in members.items()
    ]
    if not parts:
        return pl.lit(None, dtype=pl.String)
    joined = pl.concat_str(parts, separator=", ", ignore_nulls=True)
    return pl.when(joined != "").then(pl.concat_str([pl.lit("{"), joined, pl.lit("}")]))


def _origin(chosen: pl.DataFrame) -> pl.Expr:
    """Each picked answer's provenance as JSON text: {value, source, method, fetched_at, confidence}, and
    where they apply: the page it was read from (`url`), what the provider said before the value was
    made canonical (`raw`) and how it was mapped (`mapped_by`)."""
    extras = [c for c in ("url", "raw", "mapped_by") if c in chosen.columns]

    def origin(value: pl.Expr) -> pl.Expr:
        encoded = pl.struct(
            value.alias("value"), pl.col("provider").alias("source"), "method", "fetched_at", "confidence", *extras
        ).struct.json_encode()
        return encoded.str.replace_all(r',"(url|raw|mapped_by)":null', "") if extras else encoded

    number = pl.col("field").is_in(list(NUMBER_FIELDS))
    as_number = typed(pl.col("value"), "employees")
    return pl.when(number).then(origin(as_number)).otherwise(origin(pl.col("value")))


def wide(domains: pl.Series, chosen: pl.DataFrame) -> pl.DataFrame:
    """One row per domain: each field's picked value (`f`), its provenance (`f__origin`) and source."""
    long = chosen.with_columns(_origin(chosen).alias("origin"))
    frame = pl.DataFrame({"domain": domains})
    for name in FIELDS:
        one = long.filter(pl.col("field") == name).select(
            "domain",
            typed(pl.col("value"), name).alias(name),
            pl.col("origin").alias(f"{name}__origin"),
            pl.col("provider").alias(f"{name}__source"),
        )
        frame = frame.join(one, on="domain", how="left")
    return frame


def notes_json(domains: pl.Series, notes: pl.DataFrame, providers: Sequence[str]) -> pl.DataFrame:
    """(domain, notes): why each provider gave a domain nothing, as one JSON object per domain."""
    per_provider = notes.pivot(on="provider", index="domain", values="note", aggregate_function="first")
    frame = pl.DataFrame({"domain": domains}).join(per_provider, on="domain", how="left")
    present = [p for p in providers if p in frame.columns]
    return frame.select("domain", json_object({p: json_value(pl.col(p)) for p in present}).alias("notes"))


def merge(
    found: pl.DataFrame, notes: pl.DataFrame, existing: pl.DataFrame, write_policy: Mapping[str, str]
) -> pl.DataFrame:
    """The company rows a batch writes: picked values merged with the stored ones under the policy.

    `found` is `wide`'s frame, `notes` is `notes_json`'s, `existing` the store's rows (`STORED`).
    `company_changed` is false when the store already says all of it, so sync can skip the row."""
    old_columns = existing.select(list(STORED)).with_columns(pl.lit(True).alias("stored"))
    frame = found.join(notes, on="domain", how="left").join(
        old_columns.rename(lambda c: c if c == "domain" else f"old__{c}"), on="domain", how="left"
    )
    # in stages, each step a column the next reads: one nested expression per field costs ten times as much
    edited = pl.col("old__edited_fields").str.json_decode(pl.List(pl.String)).fill_null([])
    frame = frame.with_columns(edited.alias("_edited"))
    keeps = {}
    for name in FIELDS:
        column = STORE_COLUMN.get(name, name)
        old, new = pl.col(f"old__{column}"), pl.col(name)
        policy = write_policy.get(name, "fill_if_empty")
        keeps[name] = (
            new.is_null()
            | pl.col("_edited").list.contains(column)
            | pl.lit(policy == "never")
            | new.eq_missing(old)
            | (pl.lit(policy == "fill_if_empty") & old.is_not_null() & (old.cast(pl.String) != ""))
        )
    frame = frame.with_columns(
        *(keep.alias(f"_keep__{name}") for name, keep in keeps.items()),
        *(pl.col("old__provenance").str.json_path_match(f"$.{name}").alias(f"_old_origin__{name}") for name in FIELDS),
    )
    old_value = {name: pl.col(f"old__{STORE_COLUMN.get(name, name)}") for name in FIELDS}
    frame = frame.with_columns(
        pl.when(pl.col(f"_keep__{name}")).then(old_value[name]).otherwise(name).alias(name) for name in FIELDS
    )
    origins, sources = {}, []
    for name in FIELDS:
        keep, old_origin = pl.col(f"_keep__{name}"), pl.col(f"_old_origin__{name}")
        has_value = pl.col(name).is_not_null() & (pl.col(name).cast(pl.String) != "")
        origins[name] = pl.when(has_value).then(pl.when(keep).then(old_origin).otherwise(pl.col(f"{name}__origin")))
        old_source = old_origin.str.json_path_match("$.source")
        sources.append(pl.when(has_value).then(pl.when(keep).then(old_source).otherwise(pl.col(f"{name}__source"))))
    named = pl.concat_list(sources).list.drop_nulls().list.unique().list.sort()
    unchanged = (
        pl.col("old__stored").fill_null(False)
        & pl.any_horizontal(pl.col(f"_keep__{name}").not_() for name in FIELDS).not_()
        & pl.col("notes").eq_missing(pl.col("old__enrichment_notes"))
    )
    return frame.select(
        "domain",
        *FIELDS,
        pl.when(unchanged)
        .then(pl.col("old__sources"))
        .otherwise(pl.when(named.list.len() > 0).then(named.list.join(", ")))
        .alias("company_sources"),
        pl.when(unchanged).then(pl.col("old__provenance")).otherwise(json_object(origins)).alias("company_provenance"),
        pl.col("notes").alias("enrichment_notes"),
        unchanged.not_().alias("company_changed"),
    )
