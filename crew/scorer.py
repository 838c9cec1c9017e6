"""The deterministic ICP scorer: one polars expression per criterion, no Python per row.

Per lead: `score` 0-100, `tier`, `confidence` 0-1, `reasons` (the largest contributions,
readable), `disqualified_by`, and the `icp_version` that produced them.
"""

from __future__ import annotations

import polars as pl

from connectors.domain import Tier
from crew.icp import Criterion, Icp


def score_leads(leads: pl.DataFrame, icp: Icp, top_reasons: int = 3, keep_points: bool = False) -> pl.DataFrame:
    """Add the assessment columns to a batch of enriched leads (`keep_points`: and `points_<criterion>`)."""
    names = list(icp.criteria)
    missing = _placeholders(icp)
    parts = [_criterion(leads, name, c, missing) for name, c in icp.criteria.items()]
    frame = leads.with_columns(col for part in parts for col in part)
    total = sum(c.weight for c in icp.criteria.values())
    span = icp.points_range or total
    points = pl.sum_horizontal(f"_pts_{n}" for n in names)
    known = pl.sum_horizontal(pl.col(f"_known_{n}").cast(pl.Float64) * icp.criteria[n].weight for n in names)
    disq = _disqualified_by(frame, icp)
    frame = frame.with_columns(
        ((points - icp.points_floor) * 100 / span).clip(0, 100).round(0).cast(pl.Int32).alias("score"),
        (known / total).round(2).alias("confidence"),
        disq.alias("disqualified_by"),
    )
    if keep_points:
        frame = frame.with_columns(pl.col(f"_pts_{n}").alias(f"points_{n}") for n in names)
    frame = _with_top_reasons(frame, names, top_reasons)
    return frame.with_columns(
        _tier(icp),
        _reasons(icp),
        pl.lit(icp.version).alias("icp_version"),
    ).drop([f"_{kind}_{n}" for n in names for kind in ("pts", "known", "why")] + ["_top"])


def criterion_values(frame: pl.DataFrame, icp: Icp) -> list[pl.Expr]:
    """Each criterion's value as the scorer reads it (lower-case text for `match`, a number for `bands`)."""
    missing = _placeholders(icp)
    return [_value(frame, c, missing).alias(name) for name, c in icp.criteria.items()]


def _placeholders(icp: Icp) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in icp.missing_values)


def _value(frame: pl.DataFrame, c: Criterion, missing: frozenset[str] = frozenset()) -> pl.Expr:
    value = _field(frame, c, missing)
    return value.cast(pl.String).str.to_lowercase() if c.match is not None else value.cast(pl.Float64, strict=False)


def _criterion(frame: pl.DataFrame, name: str, c: Criterion, missing: frozenset[str]) -> list[pl.Expr]:
    """Points, whether the evidence was there, and a reason text for one criterion."""
    value = _field(frame, c, missing)
    if c.match is not None:
        lookup = {k.lower(): v for k, v in c.match.items()}
        text = _value(frame, c, missing)
        fraction = text.replace_strict(list(lookup), list(lookup.values()), default=c.default, return_dtype=pl.Float64)
    else:
        number = _value(frame, c, missing)
        fraction = pl.lit(0.0)
        for band in reversed(c.bands or []):
            inside = pl.lit(True)
            if band.min is not None:
                inside = inside & (number >= band.min)
            if band.max is not None:
                inside = inside & (number <= band.max)
            fraction = pl.when(inside).then(pl.lit(band.fraction)).otherwise(fraction)
        value = number
    known = value.is_not_null()
    pts = pl.when(known).then(fraction * c.weight).otherwise(c.missing * c.weight)
    shown = value.cast(pl.String).str.strip_suffix(".0").fill_null("missing")
    why = pl.when(pts != 0).then(pl.format(f"{name} {{}}: {{}} of {c.weight:g}", shown, _signed(pts)))
    return [pts.alias(f"_pts_{name}"), known.alias(f"_known_{name}"), why.alias(f"_why_{name}")]


def _signed(points: pl.Expr) -> pl.Expr:
    """12.0 → '+12', -7.5 → '-7.5'."""
    rounded = points.round(1)
    text = rounded.cast(pl.String).str.strip_suffix(".0")
    return pl.when(rounded > 0).then(pl.lit("+") + text).otherwise(text)


def _field(frame: pl.DataFrame, c: Criterion, missing: frozenset[str] = frozenset()) -> pl.Expr:
    """The criterion's field (or its fallback); a column the batch lacks counts as unknown, and so does a
    placeholder value of the ICP's `missing_values` (then the fallback field is read)."""
    present = [f for f in (c.field, c.fallback_field) if f and f in frame.columns]
    if not present:
        return pl.lit(None, dtype=pl.String)
    if missing:
        columns = [_unless_placeholder(pl.col(f), missing) for f in present]
        return pl.coalesce(col.cast(pl.String) for col in columns) if len(columns) > 1 else columns[0]
    return pl.coalesce(pl.col(f).cast(pl.String) for f in present) if len(present) > 1 else pl.col(present[0])


def _unless_placeholder(value: pl.Expr, missing: frozenset[str]) -> pl.Expr:
    placeholder = value.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(list(missing))
    return pl.when(placeholder.fill_null(False).not_()).then(value)


def _disqualified_by(frame: pl.DataFrame, icp: Icp) -> pl.Expr:
    hits = [
        pl.when(pl.col(d.field).cast(pl.String).str.to_lowercase().is_in([v.lower() for v in d.in_])).then(
            pl.lit(d.name)
        )
        for d in icp.disqualifiers
        if d.field in frame.columns
    ]
    return pl.coalesce(hits) if hits else pl.lit(None, dtype=pl.String)


def tier_expr(icp: Icp) -> pl.Expr:
    """The tier a score earns under the ICP's thresholds (a disqualification always wins)."""
    return _tier(icp)


def _tier(icp: Icp) -> pl.Expr:
    return (
        pl.when(pl.col("disqualified_by").is_not_null())
        .then(pl.lit(Tier.DISQUALIFIED.value))
        .when(_held_back(icp))
        .then(pl.lit(icp.gated_tier))
        .otherwise(_tier_by_score(icp))
        .alias("tier")
    )


def _tier_by_score(icp: Icp) -> pl.Expr:
    score = pl.col("score")
    return (
        pl.when(score >= icp.tiers[Tier.A.value])
        .then(pl.lit(Tier.A.value))
        .when(score >= icp.tiers[Tier.B.value])
        .then(pl.lit(Tier.B.value))
        .when(score >= icp.tiers[Tier.C.value])
        .then(pl.lit(Tier.C.value))
        .otherwise(pl.lit(Tier.D.value))
    )


def _held_back(icp: Icp) -> pl.Expr:
    """The evidence gate: a qualifying score whose confidence is too thin to qualify the lead."""
    thin = pl.col("confidence") < icp.min_confidence_to_qualify
    return thin & _tier_by_score(icp).is_in(icp.qualified_tiers)


def _gate_reason(icp: Icp) -> pl.Expr:
    """'not enough evidence (confidence 0.1 < 0.3)' where the gate held a lead back."""
    text = f"not enough evidence (confidence {{}} < {icp.min_confidence_to_qualify:g})"
    return pl.when(_held_back(icp)).then(pl.format(text, pl.col("confidence")))


def _with_top_reasons(frame: pl.DataFrame, names: list[str], top: int) -> pl.DataFrame:
    """`_top`: the `top` largest contributions by size, '; '-joined, ties in criterion order.

    One long frame (a row per lead and criterion), sorted and cut per lead: a per-row list sort
    (list.eval) costs eight times as much."""
    contributions = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_lead"),
        *(
            pl.struct(
                pl.col(f"_pts_{n}").abs().cast(pl.Float64).alias("size"), pl.col(f"_why_{n}").alias("text")
            ).alias(n)
            for n in names
        ),
    )
    top_texts = (
        contributions.unpivot(index="_lead")
        .unnest("value")
        .drop_nulls("text")
        .sort(["_lead", "size"], descending=[False, True], maintain_order=True)
        .group_by("_lead", maintain_order=True)
        .head(top)
        .group_by("_lead")
        .agg(pl.col("text").str.join("; ").alias("_top"))
    )
    return (
        frame.with_row_index("_lead")
        .join(top_texts, on="_lead", how="left")
        .with_columns(pl.col("_top").fill_null(""))
        .drop("_lead")
    )


def _reasons(icp: Icp) -> pl.Expr:
    """The top contributions as text; a disqualifier, or else the evidence gate, comes first."""
    joined = pl.col("_top")
    disq = pl.format("disqualified: {}", pl.col("disqualified_by"))
    gate = _gate_reason(icp)
    return (
        pl.when(pl.col("disqualified_by").is_not_null())
        .then(pl.concat_str([disq, joined], separator="; "))
        .when(gate.is_not_null())
        .then(pl.concat_str([gate, joined], separator="; ").str.strip_suffix("; "))
        .otherwise(joined)
        .alias("reasons")
    )
